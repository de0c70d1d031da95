"""Compiled loops (numba) for the per-person passes at national scale.

A kernel is `numba.njit(cache=True, nogil=True)`: compiled on first use and
kept on disk, next to its module in `__pycache__` or, when that folder is not
writable (an installed package in a read-only site-packages), in numba's
per-user cache or under NUMBA_CACHE_DIR; it releases the GIL, so blocks
computed on Dask's threads run in parallel. When no cache folder is writable
at all the kernel is compiled in memory on first use in each process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

NAT = np.iinfo(np.int64).min  # NaT as int64 nanoseconds: every comparison masks it first


def _njit(function: Callable[..., Any]) -> Any:
    """`numba.njit(cache=True, nogil=True)`, without the disk cache when no cache folder is writable."""
    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError:  # numba finds no writable cache location ("no locator available")
        return numba.njit(cache=False, nogil=True)(function)


def helper(function: Callable[..., Any]) -> Any:
    """A compiled function called only from kernels."""
    return _njit(function)


def kernel(function: Callable[..., Any]) -> Callable[..., Any]:
    """A compiled function called from Python.

    numba compiles one version per combination of argument types, and a writable array is another
    type than a read-only one (pandas hands out read-only views): every array argument is passed as a
    read-only, contiguous view, so that each kernel is compiled once, whoever calls it.
    """
    compiled = _njit(function)

    @functools.wraps(function)
    def call(*args: Any) -> Any:
        return compiled(*(_frozen(arg) for arg in args))

    call.compiled = compiled  # type: ignore[attr-defined]
    return call


def _frozen(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        view = np.ascontiguousarray(value).view()
        view.flags.writeable = False
        return view
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


__all__ = ["NAT", "helper", "kernel"]
