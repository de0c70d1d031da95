"""Greedy nearest-neighbour matching on a scalar distance, as MatchIt's method = "nearest".

Pure array code: rows are positions 0..n-1 in the caller's (deterministic) order.
Ties follow MatchIt: units are sorted stably by distance, so equal distances keep
input order; a focal unit equidistant from its nearest left and right neighbours
takes the left one (the smaller distance value).

Without replacement each focal unit, in the given order, takes the nearest
control still available ("next available" pointers with path compression, so a
step is amortised O(α(n))); with ratio k this runs in k passes (every focal unit
gets its first match before any gets its second). With replacement each focal
unit takes its k nearest controls independently (vectorised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Caliper:
    """Match only when |values[focal] - values[control]| <= width.

    `values` must be a non-decreasing function of the distance (the distance
    itself or the logit of the score), so the units within the caliper of a
    focal unit form one contiguous run in distance order.
    """

    values: np.ndarray
    width: float


@dataclass(frozen=True)
class PairedRows:
    """Matched pairs as row positions; `rank` is 0 for a focal unit's first match, 1 for its second, ..."""

    focal: np.ndarray
    control: np.ndarray
    rank: np.ndarray


@dataclass(frozen=True)
class _SortedPool:
    rows: np.ndarray  # control rows sorted by (stratum, distance, row)
    distance: np.ndarray
    caliper_values: np.ndarray | None
    focal_rows: np.ndarray  # focal rows, ascending
    position: np.ndarray  # per focal row: number of pool units sorted before it (global index)
    start: np.ndarray  # per focal row: first pool index of its stratum
    end: np.ndarray  # per focal row: one past the last pool index of its stratum


def stable_order(units: np.ndarray, distance: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """`units` (ascending rows) sorted by (stratum, distance, row), as R's stable order() would.

    A quicksort on the distance and a fix-up of tied runs is several times faster
    than a stable sort on a million floats; strata are few, so their stable sort
    runs as a radix sort on a small integer type.
    """
    values = distance[units]
    order = np.argsort(values)
    ordered = values[order]
    tied_with_previous = ordered[1:] == ordered[:-1]
    if tied_with_previous.any():
        run = np.concatenate(([0], np.cumsum(~tied_with_previous)))
        in_tie = np.concatenate(([False], tied_with_previous)) | np.concatenate(
            (tied_with_previous, [False])
        )
        positions = np.flatnonzero(in_tie)
        block = order[positions]
        order[positions] = block[np.lexsort((block, run[positions]))]
    result = units[order]
    codes = strata[result]
    if len(codes) and codes.min() != codes.max():
        small = codes.astype(np.int16) if codes.max() < np.iinfo(np.int16).max else codes
        result = result[np.argsort(small, kind="stable")]
    return result


def _sort_pool(
    focal: np.ndarray,
    eligible: np.ndarray,
    distance: np.ndarray,
    strata: np.ndarray,
    caliper: Caliper | None,
) -> _SortedPool:
    merged = stable_order(np.flatnonzero(eligible), distance, strata)
    is_pool = ~focal[merged]
    pool_before = np.cumsum(is_pool) - is_pool
    pool_rows = merged[is_pool]
    focal_in_merged = ~is_pool
    focal_rows_merged = merged[focal_in_merged]
    ordering = np.argsort(focal_rows_merged, kind="stable")
    focal_rows = focal_rows_merged[ordering]
    position = pool_before[focal_in_merged][ordering]
    pool_strata = strata[pool_rows]
    focal_strata = strata[focal_rows]
    return _SortedPool(
        rows=pool_rows,
        distance=distance[pool_rows],
        caliper_values=None if caliper is None else caliper.values[pool_rows],
        focal_rows=focal_rows,
        position=position,
        start=np.searchsorted(pool_strata, focal_strata, side="left"),
        end=np.searchsorted(pool_strata, focal_strata, side="right"),
    )


def _without_replacement(
    pool: _SortedPool,
    order: np.ndarray,
    distance: np.ndarray,
    caliper: Caliper | None,
    ratio: int,
) -> PairedRows:
    n_pool = len(pool.rows)
    # right[i]: a pool index >= i that leads to the next available one (n_pool = none).
    # left[i + 1] likewise for the previous available index <= i (left[0] = none).
    right = list(range(n_pool + 1))
    left = list(range(n_pool + 1))

    def find(parent: list[int], i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    row_to_focal_index = {int(r): i for i, r in enumerate(pool.focal_rows)}
    focal_order = [row_to_focal_index[int(r)] for r in order if int(r) in row_to_focal_index]
    pool_distance = pool.distance.tolist()
    pool_cal = None if caliper is None else pool.caliper_values.tolist()  # type: ignore[union-attr]
    width = None if caliper is None else caliper.width
    position = pool.position.tolist()
    start = pool.start.tolist()
    end = pool.end.tolist()
    focal_rows = pool.focal_rows.tolist()
    focal_distance = distance[pool.focal_rows].tolist()
    focal_cal = None if caliper is None else caliper.values[pool.focal_rows].tolist()

    out_focal: list[int] = []
    out_control: list[int] = []
    out_rank: list[int] = []
    matched_count = [0] * len(focal_rows)
    for rank in range(ratio):
        for i in focal_order:
            if matched_count[i] < rank:
                continue  # found nothing in an earlier pass; the pool only shrinks
            p = position[i]
            lo, hi = start[i], end[i]
            if lo == hi:
                continue
            r = find(right, p)
            if r >= hi:
                r = -1
            left_index = find(left, p) - 1
            if left_index < lo:
                left_index = -1
            if width is not None:
                c = focal_cal[i]  # type: ignore[index]
                if r >= 0 and abs(c - pool_cal[r]) > width:  # type: ignore[index]
                    r = -1
                if left_index >= 0 and abs(c - pool_cal[left_index]) > width:  # type: ignore[index]
                    left_index = -1
            if r < 0 and left_index < 0:
                continue
            d = focal_distance[i]
            if left_index >= 0 and (
                r < 0 or abs(pool_distance[left_index] - d) <= abs(pool_distance[r] - d)
            ):
                chosen = left_index
            else:
                chosen = r
            right[chosen] = chosen + 1
            left[chosen + 1] = chosen
            matched_count[i] += 1
            out_focal.append(focal_rows[i])
            out_control.append(chosen)
            out_rank.append(rank)
    control_index = np.asarray(out_control, dtype=np.int64)
    return PairedRows(
        focal=np.asarray(out_focal, dtype=np.int64),
        control=pool.rows[control_index] if len(control_index) else control_index,
        rank=np.asarray(out_rank, dtype=np.int64),
    )


def _with_replacement(
    pool: _SortedPool, distance: np.ndarray, caliper: Caliper | None, ratio: int
) -> PairedRows:
    if len(pool.focal_rows) == 0 or len(pool.rows) == 0:
        empty = np.empty(0, dtype=np.int64)
        return PairedRows(empty, empty, empty)
    steps = np.arange(1, ratio + 1)
    position = pool.position[:, None]
    # the k nearest in sorted order lie among the k to the left and the k to the right;
    # left candidates first, so a tie goes to the left as in MatchIt
    candidates = np.hstack([position - steps, position + steps - 1])
    valid = (candidates >= pool.start[:, None]) & (candidates < pool.end[:, None])
    safe = np.where(valid, candidates, 0)
    gap = np.abs(distance[pool.focal_rows][:, None] - pool.distance[safe])
    if caliper is not None:
        cal_gap = np.abs(caliper.values[pool.focal_rows][:, None] - pool.caliper_values[safe])  # type: ignore[index]
        valid &= cal_gap <= caliper.width
    gap = np.where(valid, gap, np.inf)
    best = np.argsort(gap, axis=1, kind="stable")[:, :ratio]
    chosen = np.take_along_axis(safe, best, axis=1)
    found = np.isfinite(np.take_along_axis(gap, best, axis=1))
    focal_index, rank = np.nonzero(found)
    return PairedRows(
        focal=pool.focal_rows[focal_index],
        control=pool.rows[chosen[focal_index, rank]],
        rank=rank.astype(np.int64),
    )


def nearest_neighbour_pairs(
    *,
    focal: np.ndarray,
    eligible: np.ndarray,
    distance: np.ndarray,
    strata: np.ndarray,
    order: np.ndarray,
    ratio: int,
    replace: bool,
    caliper: Caliper | None = None,
) -> PairedRows:
    """Pairs of (focal row, control row) from greedy nearest-neighbour matching.

    focal: bool per row (treated for ATT); eligible: bool per row (not discarded);
    strata: int code per row (exact matching: controls only from the same code);
    order: focal rows in the order they choose (ignored with replacement).
    Pairs are returned sorted by focal row then rank.
    """
    pool = _sort_pool(focal, eligible, distance, strata, caliper)
    if replace:
        pairs = _with_replacement(pool, distance, caliper, ratio)
    else:
        pairs = _without_replacement(pool, order, distance, caliper, ratio)
    ordering = np.lexsort((pairs.rank, pairs.focal))
    return PairedRows(pairs.focal[ordering], pairs.control[ordering], pairs.rank[ordering])
