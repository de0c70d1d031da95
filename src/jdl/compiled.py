"""Compiled loops (numba) for the per-person passes at national scale.

A kernel is `numba.njit(cache=True, nogil=True)`: compiled on first use and
kept on disk, next to its module in `__pycache__` or, when that folder is not
writable (an installed package in a read-only site-packages), in numba's
per-user cache or under NUMBA_CACHE_DIR; it releases the GIL, so blocks
computed on Dask's threads run in parallel. When no cache folder is writable
at all the kernel is compiled in memory on first use in each process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

NAT = np.iinfo(np.int64).min  # NaT as int64 nanoseconds: every comparison masks it first


def kernel(function: Callable[..., Any]) -> Any:
    """`numba.njit(cache=True, nogil=True)`, without the disk cache when no cache folder is writable."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # numba finds no writable cache location ("no locator available")
        return numba.njit(cache=False, nogil=True)(function)


__all__ = ["NAT", "kernel"]
