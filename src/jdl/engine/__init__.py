"""One evaluation: the stages in order (only this package and `batch` know the order)."""

from jdl.engine.checks import check_spec, load_and_check
from jdl.engine.run import RunOutcome, dask_context, run_evaluation

__all__ = ["RunOutcome", "check_spec", "dask_context", "load_and_check", "run_evaluation"]
