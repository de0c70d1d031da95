"""Canonical JSON: the same values always give the same bytes.

Floats are written with 12 significant digits, which keeps every published
figure exact while making results immune to the last-bit noise of summation
order (partitioning, threads) that would otherwise break byte-identity.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

SIGNIFICANT_DIGITS = 12


def normalise(value: Any) -> Any:
    """Plain JSON types with rounded floats; NaN and infinities become null."""
    if isinstance(value, Mapping):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return None
        rounded = float(f"{number:.{SIGNIFICANT_DIGITS}g}")
        return 0.0 if rounded == 0 else rounded
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if value is None or isinstance(value, str):
        return value
    if hasattr(value, "item"):
        return normalise(value.item())
    return str(value)


def canonical_json(value: Any, *, indent: int | None = 2) -> str:
    return json.dumps(normalise(value), sort_keys=True, indent=indent, ensure_ascii=False) + "\n"
