"""One evaluation: the stages in order (only this package and `batch` know the order).

Names are imported on first use: Dask workers unpickle tasks from
`jdl.engine.pool` and `jdl.engine.records`, and should not pay for importing
the report, audit and estimation layers they never call.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "check_spec": "jdl.engine.checks",
    "load_and_check": "jdl.engine.checks",
    "RunOutcome": "jdl.engine.run",
    "dask_context": "jdl.engine.run",
    "run_evaluation": "jdl.engine.run",
}

__all__ = ["RunOutcome", "check_spec", "dask_context", "load_and_check", "run_evaluation"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'jdl.engine' has no attribute {name!r}")
