"""Radius and kernel matching: every comparison unit near a focal unit, with a pair weight.

Pure array code on a pool sorted by (stratum, distance, row), so the units
within a bound of a focal unit form one contiguous window (found by binary
search). Memory is O(number of pairs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from jdl.matching.nearest import stable_order

KERNELS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "epanechnikov": lambda u: 1.0 - u * u,
    "uniform": lambda u: np.ones_like(u),
    "triangular": lambda u: 1.0 - np.abs(u),
    "biweight": lambda u: np.square(1.0 - u * u),
    "gaussian": lambda u: np.exp(-0.5 * u * u),
}
# Gaussian weights beyond 6 bandwidths are below 1.6e-8 of the peak: they are left out so
# that the pairs stay a window rather than the whole pool.
SUPPORT = {"gaussian": 6.0}


@dataclass(frozen=True)
class WeightedPairs:
    """Focal row, control row and the pair's weight (the control's share of the focal unit)."""

    focal: np.ndarray
    control: np.ndarray
    weight: np.ndarray


def _windows(
    focal: np.ndarray, eligible: np.ndarray, values: np.ndarray, strata: np.ndarray, width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pool rows sorted by (stratum, value) and per focal row the window [lo, hi) within width."""
    pool_rows = stable_order(np.flatnonzero(eligible & ~focal), values, strata)
    focal_rows = np.flatnonzero(eligible & focal)
    # a stratum's units sit together: search (stratum, value) as one key
    pool_key_stratum = strata[pool_rows]
    pool_values = values[pool_rows]
    stratum_start = np.searchsorted(pool_key_stratum, strata[focal_rows], side="left")
    stratum_end = np.searchsorted(pool_key_stratum, strata[focal_rows], side="right")
    lo = np.empty(len(focal_rows), dtype=np.int64)
    hi = np.empty(len(focal_rows), dtype=np.int64)
    for code in np.unique(strata[focal_rows]):
        members = strata[focal_rows] == code
        start, end = stratum_start[members][0], stratum_end[members][0]
        segment = pool_values[start:end]
        centre = values[focal_rows[members]]
        lo[members] = start + np.searchsorted(segment, centre - width, side="left")
        hi[members] = start + np.searchsorted(segment, centre + width, side="right")
    return pool_rows, focal_rows, lo, hi


def _expand(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(focal index, pool index) for every pool index in each focal unit's window."""
    counts = np.maximum(hi - lo, 0)
    focal_index = np.repeat(np.arange(len(lo)), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return focal_index, np.repeat(lo, counts) + offsets


def radius_pairs(
    focal: np.ndarray, eligible: np.ndarray, values: np.ndarray, strata: np.ndarray, width: float
) -> WeightedPairs:
    """Every eligible comparison unit with |values difference| <= width; weight 1/k per pair."""
    pool_rows, focal_rows, lo, hi = _windows(focal, eligible, values, strata, width)
    focal_index, pool_index = _expand(lo, hi)
    f, c = focal_rows[focal_index], pool_rows[pool_index]
    inside = np.abs(values[f] - values[c]) <= width  # the binary search bounds are rounded
    f, c = f[inside], c[inside]
    k = np.bincount(f, minlength=len(focal))
    return WeightedPairs(f, c, 1.0 / k[f] if len(f) else np.empty(0))


def kernel_pairs(
    focal: np.ndarray,
    eligible: np.ndarray,
    values: np.ndarray,
    strata: np.ndarray,
    bandwidth: float,
    kernel: str,
) -> WeightedPairs:
    """Kernel matching: pair weight K(u) / sum of K over the focal unit's pairs, u = diff / bandwidth."""
    support = SUPPORT.get(kernel, 1.0)
    pool_rows, focal_rows, lo, hi = _windows(focal, eligible, values, strata, support * bandwidth)
    focal_index, pool_index = _expand(lo, hi)
    f, c = focal_rows[focal_index], pool_rows[pool_index]
    u = (values[c] - values[f]) / bandwidth
    weight = np.where(np.abs(u) <= support, KERNELS[kernel](u), 0.0)
    positive = weight > 0
    f, c, weight = f[positive], c[positive], weight[positive]
    totals = np.bincount(f, weights=weight, minlength=len(focal))
    return WeightedPairs(f, c, weight / totals[f] if len(f) else np.empty(0))
