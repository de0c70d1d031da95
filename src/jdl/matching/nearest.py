"""Greedy nearest-neighbour matching on a scalar distance, as MatchIt's method = "nearest".

Pure array code: rows are positions 0..n-1 in the caller's (deterministic) order.
The rules are those of MatchIt's general nearest-neighbour routine (nn_matchC):
each focal unit, in the given order, takes the eligible comparison unit with the
smallest |distance difference|; among equal differences the one that comes
first in the data (lowest row) wins. A comparison unit is eligible when it is
in the focal unit's exact stratum, within the caliper(s) and, without
replacement, not yet used.

Without replacement the comparison pool is sorted by (stratum, distance, row)
and "next available" pointers with path compression find the nearest unused
unit on either side (amortised O(α(n)) a step); with ratio k this runs in k
passes (every focal unit gets its first match before any gets its second).
With replacement each focal unit takes its k nearest units independently
(vectorised over a window of k units each side, with an exact per-unit
fallback when ties reach past the window).

Calipers on covariates and Mahalanobis distances (`GeneralCriteria`) use a
per-focal scan of the units within the distance caliper (or of the whole
stratum when there is none): O(window) per focal unit.
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
class GeneralCriteria:
    """Per-pair rules that need a scan: covariate calipers and a Mahalanobis metric.

    covariate_values: (n, c) matrix, covariate_widths: (c,) absolute widths;
    mahalanobis: (n, p) matrix already transformed so that Euclidean distance
    between rows is the Mahalanobis distance (None: match on |distance diff|).
    """

    covariate_values: np.ndarray | None = None
    covariate_widths: np.ndarray | None = None
    mahalanobis: np.ndarray | None = None


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
    run_start: np.ndarray  # per pool index: first index with the same (stratum, distance)
    run_end: np.ndarray  # per pool index: one past the last index with the same (stratum, distance)
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


def _runs(distance: np.ndarray, strata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For sorted values: the start and end of each index's run of equal (stratum, distance)."""
    n = len(distance)
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (distance[1:] != distance[:-1]) | (strata[1:] != strata[:-1])
    starts = np.flatnonzero(new_run)
    run_id = np.cumsum(new_run) - 1
    ends = np.append(starts[1:], n)
    return starts[run_id], ends[run_id]


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
    pool_distance = distance[pool_rows]
    run_start, run_end = _runs(pool_distance, pool_strata)
    return _SortedPool(
        rows=pool_rows,
        distance=pool_distance,
        caliper_values=None if caliper is None else caliper.values[pool_rows],
        run_start=run_start,
        run_end=run_end,
        focal_rows=focal_rows,
        position=position,
        start=np.searchsorted(pool_strata, focal_strata, side="left"),
        end=np.searchsorted(pool_strata, focal_strata, side="right"),
    )


def _focal_sequence(pool: _SortedPool, order: np.ndarray) -> list[int]:
    """Indices into pool.focal_rows in processing order (rows not in the pool are skipped)."""
    index_of_row = np.full(int(max(order.max(initial=-1), pool.focal_rows.max(initial=-1))) + 1, -1)
    index_of_row[pool.focal_rows] = np.arange(len(pool.focal_rows))
    sequence = index_of_row[order] if len(order) else np.empty(0, dtype=np.int64)
    return sequence[sequence >= 0].tolist()


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

    focal_order = _focal_sequence(pool, order)
    pool_distance = pool.distance.tolist()
    pool_row = pool.rows.tolist()
    pool_cal = None if caliper is None else pool.caliper_values.tolist()  # type: ignore[union-attr]
    width = None if caliper is None else caliper.width
    run_start = pool.run_start.tolist()
    run_end = pool.run_end.tolist()
    position = pool.position.tolist()
    start = pool.start.tolist()
    end = pool.end.tolist()
    focal_rows = pool.focal_rows.tolist()
    focal_distance = distance[pool.focal_rows].tolist()
    focal_cal = None if caliper is None else caliper.values[pool.focal_rows].tolist()
    matched_count = [0] * len(focal_rows)

    out_focal: list[int] = []
    out_control: list[int] = []
    out_rank: list[int] = []
    for rank in range(ratio):
        for i in focal_order:
            if matched_count[i] < rank:
                continue  # found nothing in an earlier pass; the pool only shrinks
            p = position[i]
            lo, hi = start[i], end[i]
            if lo == hi:
                continue
            d = focal_distance[i]
            c = None if focal_cal is None else focal_cal[i]
            best = -1
            best_gap = 0.0
            # nearest available on the left, then every further run at the same gap
            k = find(left, p) - 1
            gap = abs(d - pool_distance[k]) if k >= lo else 0.0
            while k >= lo:
                if best >= 0 and gap != best_gap:
                    break
                candidate = find(right, run_start[k])  # lowest row still available in this run
                if c is None or abs(c - pool_cal[candidate]) <= width:  # type: ignore[index, operator]
                    if best < 0 or pool_row[candidate] < pool_row[best]:
                        best, best_gap = candidate, gap
                elif best < 0:
                    break  # the nearest on this side is outside the caliper
                k = find(left, run_start[k]) - 1
                if k < lo:
                    break
                gap = abs(d - pool_distance[k])
            k = find(right, p)
            while k < hi:
                gap = abs(pool_distance[k] - d)
                if best >= 0 and gap > best_gap:
                    break
                if c is None or abs(c - pool_cal[k]) <= width:  # type: ignore[index, operator]
                    if best < 0 or gap < best_gap or pool_row[k] < pool_row[best]:
                        best, best_gap = k, gap
                else:
                    break
                k = find(right, run_end[k])
            if best < 0:
                continue
            right[best] = best + 1
            left[best + 1] = best
            matched_count[i] += 1
            out_focal.append(focal_rows[i])
            out_control.append(best)
            out_rank.append(rank)
    control_index = np.asarray(out_control, dtype=np.int64)
    return PairedRows(
        focal=np.asarray(out_focal, dtype=np.int64),
        control=pool.rows[control_index] if len(control_index) else control_index,
        rank=np.asarray(out_rank, dtype=np.int64),
    )


HEAP_CHUNK = 4096


def heap_select(values: list[float] | np.ndarray, k: int) -> list[int]:
    """Positions of the k elements std::partial_sort (libstdc++) puts first, by `values`.

    MatchIt takes a focal unit's k matches with replacement this way, so among
    units tied at the k-th distance the heap's history, not the row order,
    decides which are kept; replaying the same heap operations on the units in
    data order gives the same choice. `values` may be a float array: only the few
    values the heap compares are read one by one.
    """
    n = len(values)
    if n <= k:
        return list(range(n))
    heap = list(range(k))

    def less(a: int, b: int) -> bool:
        return values[a] < values[b]

    def push(hole: int, top: int, value: int) -> None:
        parent = (hole - 1) // 2
        while hole > top and less(heap[parent], value):
            heap[hole] = heap[parent]
            hole = parent
            parent = (hole - 1) // 2
        heap[hole] = value

    def adjust(hole: int, length: int, value: int) -> None:
        top = hole
        child = hole
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if less(heap[child], heap[child - 1]):
                child -= 1
            heap[hole] = heap[child]
            hole = child
        if length % 2 == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            heap[hole] = heap[child - 1]
            hole = child - 1
        push(hole, top, value)

    if k >= 2:
        parent = (k - 2) // 2
        while True:
            adjust(parent, k, heap[parent])
            if parent == 0:
                break
            parent -= 1
    # only a value below the heap's top enters, and the top never grows: each chunk of the rest is
    # screened against the top at its start (a superset of what enters), then replayed one by one
    array = np.asarray(values, dtype=float)
    for chunk_start in range(k, n, HEAP_CHUNK):
        chunk = array[chunk_start:chunk_start + HEAP_CHUNK]
        for offset in np.flatnonzero(chunk < values[heap[0]]).tolist():
            i = chunk_start + offset
            if less(i, heap[0]):
                adjust(0, k, i)
    return heap


class _StratumInDataOrder:
    """One stratum's pool units as data rows in ascending order, with their distances and
    caliper values: computed once for every focal unit of the stratum that takes the exact path."""

    def __init__(self, pool: _SortedPool, lo: int, hi: int, distance: np.ndarray,
                 caliper: Caliper | None) -> None:
        # rows are distinct: marking them and reading the marks back sorts them without a sort
        marks = np.zeros(len(distance), dtype=bool)
        marks[pool.rows[lo:hi]] = True
        self.rows = np.flatnonzero(marks)
        self.distance = distance[self.rows]
        self.caliper_values = None if caliper is None else caliper.values[self.rows]


def _k_nearest_exact(
    stratum: _StratumInDataOrder, d: float, c: float | None, width: float | None, ratio: int
) -> np.ndarray:
    """Rows of the k nearest units to one focal unit, ties as MatchIt's heap (slow path): the
    stratum's units within the caliper, in data order as MatchIt scans them."""
    rows, distance = stratum.rows, stratum.distance
    if c is not None:
        inside = np.abs(c - stratum.caliper_values) <= width  # type: ignore[operator]
        rows, distance = rows[inside], distance[inside]
    return rows[heap_select(np.abs(d - distance), ratio)]


def _with_replacement(
    pool: _SortedPool, distance: np.ndarray, caliper: Caliper | None, ratio: int
) -> PairedRows:
    if len(pool.focal_rows) == 0 or len(pool.rows) == 0:
        empty = np.empty(0, dtype=np.int64)
        return PairedRows(empty, empty, empty)
    steps = np.arange(1, ratio + 2)
    position = pool.position[:, None]
    # a window of k + 1 units each side: the k nearest are inside it unless ties reach
    # past it, which the extra unit detects
    candidates = np.hstack([position - steps, position + steps - 1])
    valid = (candidates >= pool.start[:, None]) & (candidates < pool.end[:, None])
    safe = np.where(valid, candidates, 0)
    focal_distance = distance[pool.focal_rows]
    gap = np.abs(focal_distance[:, None] - pool.distance[safe])
    if caliper is not None:
        cal_gap = np.abs(caliper.values[pool.focal_rows][:, None] - pool.caliper_values[safe])  # type: ignore[index]
        valid &= cal_gap <= caliper.width
    gap = np.where(valid, gap, np.inf)
    inner = np.hstack([np.arange(ratio), ratio + 1 + np.arange(ratio)])
    inner_gap = gap[:, inner]
    inner_rows = np.where(valid, pool.rows[safe], -1)[:, inner]
    order = _order_by_gap_then_row(inner_gap, inner_rows)[:, :ratio]
    chosen_gap = np.take_along_axis(inner_gap, order, axis=1)
    chosen = np.take_along_axis(safe[:, inner], order, axis=1)
    kth = chosen_gap[:, -1]
    # a unit left out at the k-th gap (inside the window or just past it) is a tie that
    # MatchIt's heap decides (for k = 1: the first minimum in data order, which may sit
    # past the window in a long run of equal scores): those focal units take the exact path
    tied_all = (gap == kth[:, None]).sum(axis=1)
    tied_chosen = (chosen_gap == kth[:, None]).sum(axis=1)
    outside_tie = (tied_all > tied_chosen) & np.isfinite(kth)
    found = np.isfinite(chosen_gap)
    focal_index, rank = np.nonzero(found & ~outside_tie[:, None])
    focal_out = [pool.focal_rows[focal_index]]
    control_out = [pool.rows[chosen[focal_index, rank]]]
    rank_out = [rank.astype(np.int64)]
    width = None if caliper is None else caliper.width
    strata: dict[tuple[int, int], _StratumInDataOrder] = {}
    for i in np.flatnonzero(outside_tie):
        c = None if caliper is None else float(caliper.values[pool.focal_rows[i]])
        bounds = int(pool.start[i]), int(pool.end[i])
        if bounds not in strata:
            strata[bounds] = _StratumInDataOrder(pool, *bounds, distance, caliper)
        nearest = _k_nearest_exact(strata[bounds], float(focal_distance[i]), c, width, ratio)
        focal_out.append(np.full(len(nearest), pool.focal_rows[i], dtype=np.int64))
        control_out.append(nearest)
        rank_out.append(np.arange(len(nearest), dtype=np.int64))
    return PairedRows(
        focal=np.concatenate(focal_out),
        control=np.concatenate(control_out),
        rank=np.concatenate(rank_out),
    )


def _order_by_gap_then_row(gap: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per row of the matrices: column order by (gap, row id); a small, fixed number of columns."""
    order = np.argsort(rows, axis=1, kind="stable")
    by_gap = np.argsort(np.take_along_axis(gap, order, axis=1), axis=1, kind="stable")
    return np.take_along_axis(order, by_gap, axis=1)


def _scan(
    pool: _SortedPool,
    order: np.ndarray,
    distance: np.ndarray,
    caliper: Caliper | None,
    criteria: GeneralCriteria,
    ratio: int,
    replace: bool,
) -> PairedRows:
    """Covariate calipers and/or a Mahalanobis metric: scan the eligible units per focal unit."""
    available = np.ones(len(pool.rows), dtype=bool)
    focal_order = _focal_sequence(pool, order)
    passes = 1 if replace else ratio
    per_focal = ratio if replace else 1
    matched: dict[int, list[int]] = {}
    out_focal: list[int] = []
    out_control: list[int] = []
    out_rank: list[int] = []
    for rank in range(passes):
        for i in focal_order:
            lo, hi = int(pool.start[i]), int(pool.end[i])
            if lo == hi or len(matched.get(i, ())) < rank:
                continue
            row = int(pool.focal_rows[i])
            if caliper is not None:
                values = pool.caliper_values[lo:hi]  # type: ignore[index]
                c = caliper.values[row]
                lo, hi = (
                    lo + int(np.searchsorted(values, c - caliper.width, side="left")),
                    lo + int(np.searchsorted(values, c + caliper.width, side="right")),
                )
                # searchsorted on the rounded bounds can admit or drop a unit at the edge
                while lo < hi and abs(c - pool.caliper_values[lo]) > caliper.width:  # type: ignore[index]
                    lo += 1
                while lo < hi and abs(c - pool.caliper_values[hi - 1]) > caliper.width:  # type: ignore[index]
                    hi -= 1
            window = np.arange(lo, hi)
            if not replace:
                window = window[available[lo:hi]]
                used = matched.get(i)
                if used:
                    window = window[~np.isin(window, used)]
            if criteria.covariate_values is not None:
                gaps = np.abs(
                    criteria.covariate_values[pool.rows[window]] - criteria.covariate_values[row]
                )
                window = window[(gaps <= criteria.covariate_widths).all(axis=1)]
            if len(window) == 0:
                continue
            if criteria.mahalanobis is not None:
                difference = criteria.mahalanobis[pool.rows[window]] - criteria.mahalanobis[row]
                metric = np.sqrt(np.square(difference).sum(axis=1))
            else:
                metric = np.abs(pool.distance[window] - distance[row])
            if replace and per_focal > 1:
                by_row = np.argsort(pool.rows[window], kind="stable")
                window, metric = window[by_row], metric[by_row]
                best = window[heap_select(metric.tolist(), per_focal)]
            else:
                best = window[np.lexsort((pool.rows[window], metric))[:per_focal]]
            for offset, k in enumerate(best.tolist()):
                out_focal.append(row)
                out_control.append(k)
                out_rank.append(rank + offset)
                matched.setdefault(i, []).append(k)
                if not replace:
                    available[k] = False
    control_index = np.asarray(out_control, dtype=np.int64)
    return PairedRows(
        focal=np.asarray(out_focal, dtype=np.int64),
        control=pool.rows[control_index] if len(control_index) else control_index,
        rank=np.asarray(out_rank, dtype=np.int64),
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
    criteria: GeneralCriteria | None = None,
) -> PairedRows:
    """Pairs of (focal row, control row) from greedy nearest-neighbour matching.

    focal: bool per row (treated for ATT); eligible: bool per row (not discarded);
    strata: int code per row (exact matching: controls only from the same code);
    order: focal rows in the order they choose (ignored with replacement);
    criteria: covariate calipers and/or a Mahalanobis metric (slower scan).
    Pairs are returned sorted by focal row then rank.
    """
    pool = _sort_pool(focal, eligible, distance, strata, caliper)
    if criteria is not None and (
        criteria.covariate_values is not None or criteria.mahalanobis is not None
    ):
        pairs = _scan(pool, order, distance, caliper, criteria, ratio, replace)
    elif replace:
        pairs = _with_replacement(pool, distance, caliper, ratio)
    else:
        pairs = _without_replacement(pool, order, distance, caliper, ratio)
    ordering = np.lexsort((pairs.rank, pairs.focal))
    return PairedRows(pairs.focal[ordering], pairs.control[ordering], pairs.rank[ordering])
