"""The built-in covariates and outcomes in one compiled loop over each person's history rows.

`jdl.measures.kernels` turns the merge / group-by formulation into vectorised
numpy passes; at national scale those passes (one per mask, per count, per
distinct count, each with its own temporary arrays) still cost more than the
arithmetic. Here the history is grouped by person once (a stable sort when it
is not already in person order: the order within a person is kept, which is
what decides "first" on a tie) and each kernel walks one person's rows at a
time, computing every per-person value it is asked for in that one walk.

The kernels return counts and int64 nanosecond dates only; the floating point
steps (days / 365.25, the Copas logarithm) stay in numpy, written as the
pandas formulation writes them, so each value is bit-for-bit what it was
(tests/test_fused_measures.py checks every built-in against the registry's
own implementation). Dates compare as int64 with NaT the smallest int64, so
every comparison masks missing dates first, as pandas' comparisons with NaT
are False.

The kernels are compiled by numba on first use and cached on disk (see
`jdl.compiled`); they release the GIL so that blocks computed on threads run
in parallel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from jdl.cohort import text_in
from jdl.compiled import NAT, helper, kernel

DAY_NS = 86_400_000_000_000


@dataclass(frozen=True)
class PersonRows:
    """History rows grouped by person: person i of the index table owns rows starts[i]:ends[i]."""

    starts: np.ndarray
    ends: np.ndarray
    order: np.ndarray | None  # history row of each grouped row (None: the history is in person order)

    @classmethod
    def of(cls, index_person_ids: np.ndarray, history_person_ids: np.ndarray) -> PersonRows:
        person = np.asarray(history_person_ids, dtype=np.int64)
        order = None
        if len(person) > 1 and not bool((person[1:] >= person[:-1]).all()):
            order = np.argsort(person, kind="stable")
            person = person[order]
        ids = np.asarray(index_person_ids, dtype=np.int64)
        starts, ends = _bounds(person, ids)
        return cls(starts, ends, order)

    def take(self, values: np.ndarray) -> np.ndarray:
        """A history column in grouped order."""
        return values if self.order is None else values[self.order]


@kernel
def _bounds(person: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """searchsorted(person, ids, "left") and (..., "right") for sorted `person` and increasing `ids`, in one
    merge of the two."""
    starts = np.empty(len(ids), dtype=np.int64)
    ends = np.empty(len(ids), dtype=np.int64)
    at = 0
    for i in range(len(ids)):
        while at < len(person) and person[at] < ids[i]:
            at += 1
        starts[i] = at
        end = at
        while end < len(person) and person[end] == ids[i]:
            end += 1
        ends[i] = end
        at = end
    return starts, ends


def in_person_order(person_ids: np.ndarray) -> bool:
    """Whether an index table's person_ids are strictly increasing (one row each, sorted): the fused path's
    precondition."""
    ids = np.asarray(person_ids)
    return len(ids) < 2 or bool((ids[1:] > ids[:-1]).all())


def nanoseconds(dates: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(dates, dtype="datetime64[ns]").view(np.int64)


def flag(values: pd.Series, text: str) -> np.ndarray:
    """`(values == text).fillna(False)` as a bool array."""
    return text_in(values, (text,))


@helper
def _distinct(values: np.ndarray, count: int) -> int:  # pragma: no cover - compiled
    """Distinct values among values[:count], which it sorts in place.

    An insertion sort: a person has few rows, and numba's library sorts take seconds to compile.
    """
    for k in range(1, count):
        value = values[k]
        at = k
        while at > 0 and values[at - 1] > value:
            values[at] = values[at - 1]
            at -= 1
        values[at] = value
    distinct = 1 if count > 0 else 0
    for j in range(1, count):
        if values[j] != values[j - 1]:
            distinct += 1
    return distinct


@kernel
def prior_counts(starts, ends, outcome, index_outcome, lower, use_lower, custody, caution):  # pragma: no cover
    """Per person, over the rows proven before the index occasion (and on or after `lower` when `use_lower`):
    rows, distinct outcome dates of custodial rows, of caution rows, and of all rows."""
    people = len(starts)
    rows = np.zeros(people, dtype=np.float64)
    custodial = np.zeros(people, dtype=np.float64)
    cautions = np.zeros(people, dtype=np.float64)
    occasions = np.zeros(people, dtype=np.float64)
    longest = 0
    for i in range(people):
        longest = max(longest, ends[i] - starts[i])
    buffer_custody = np.empty(longest, dtype=np.int64)
    buffer_caution = np.empty(longest, dtype=np.int64)
    buffer_all = np.empty(longest, dtype=np.int64)
    for i in range(people):
        before = index_outcome[i]
        if before == NAT:
            continue
        since = lower[i]
        if use_lower and since == NAT:
            continue
        kept = n_custody = n_caution = 0
        for j in range(starts[i], ends[i]):
            date = outcome[j]
            if date == NAT or date >= before or (use_lower and date < since):
                continue
            buffer_all[kept] = date
            kept += 1
            if custody[j]:
                buffer_custody[n_custody] = date
                n_custody += 1
            if caution[j]:
                buffer_caution[n_caution] = date
                n_caution += 1
        rows[i] = kept
        custodial[i] = _distinct(buffer_custody, n_custody)
        cautions[i] = _distinct(buffer_caution, n_caution)
        occasions[i] = _distinct(buffer_all, kept)
    return rows, custodial, cautions, occasions


@kernel
def earliest_up_to_index(starts, ends, values, outcome, index_outcome):  # pragma: no cover - compiled
    """Per person, the smallest present `values` among rows proven on or before the index occasion (NAT: none)."""
    people = len(starts)
    earliest = np.full(people, NAT, dtype=np.int64)
    for i in range(people):
        until = index_outcome[i]
        if until == NAT:
            continue
        best = NAT
        for j in range(starts[i], ends[i]):
            date = outcome[j]
            value = values[j]
            if date == NAT or date > until or value == NAT:
                continue
            if best == NAT or value < best:
                best = value
        earliest[i] = best
    return earliest


@kernel
def any_offence_since(starts, ends, offence, outcome, index_outcome, lower):  # pragma: no cover - compiled
    """Per person, 1.0 when a row proven before the index occasion has an offence on or after `lower`."""
    people = len(starts)
    found = np.zeros(people, dtype=np.float64)
    for i in range(people):
        before = index_outcome[i]
        since = lower[i]
        if before == NAT or since == NAT:
            continue
        for j in range(starts[i], ends[i]):
            date = outcome[j]
            committed = offence[j]
            if date != NAT and date < before and committed != NAT and committed >= since:
                found[i] = 1.0
                break
    return found


@kernel
def reoffences(starts, ends, offence, outcome, proven, index_at, end_at, proven_at, custody,
               severity):  # pragma: no cover - compiled
    """Per person, over the proven reoffences (offence after the index date and by the window's end,
    proven by the end plus the waiting period): their number, the distinct outcome dates of custodial
    ones, and the first one's offence date and severity rank (NAT and -1: none).

    The first is the earliest offence, then the lowest severity rank, then the earliest outcome; on a
    full tie the earlier row (a stable sort's first).
    """
    people = len(starts)
    count = np.zeros(people, dtype=np.float64)
    custodial = np.zeros(people, dtype=np.float64)
    first_offence = np.full(people, NAT, dtype=np.int64)
    first_severity = np.full(people, -1, dtype=np.int64)
    longest = 0
    for i in range(people):
        longest = max(longest, ends[i] - starts[i])
    buffer_custody = np.empty(longest, dtype=np.int64)
    for i in range(people):
        start, end, by = index_at[i], end_at[i], proven_at[i]
        if start == NAT or end == NAT or by == NAT:
            continue
        kept = n_custody = 0
        best_offence = best_outcome = NAT
        best_severity = -1
        for j in range(starts[i], ends[i]):
            committed = offence[j]
            date = outcome[j]
            if not proven[j] or committed == NAT or date == NAT:
                continue
            if committed <= start or committed > end or date > by:
                continue
            kept += 1
            if custody[j]:
                buffer_custody[n_custody] = date
                n_custody += 1
            rank = severity[j]
            if (best_severity < 0 or committed < best_offence
                    or (committed == best_offence and (rank < best_severity
                                                       or (rank == best_severity and date < best_outcome)))):
                best_offence, best_severity, best_outcome = committed, rank, date
        count[i] = kept
        custodial[i] = _distinct(buffer_custody, n_custody)
        first_offence[i] = best_offence
        first_severity[i] = best_severity
    return count, custodial, first_offence, first_severity


def whole_days(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """`(later - earlier).dt.days` of int64 nanosecond dates as float64 (NaN where either is missing)."""
    missing = (later == NAT) | (earlier == NAT)
    days = np.floor_divide(np.where(missing, 0, later) - np.where(missing, 0, earlier), DAY_NS).astype(np.float64)
    days[missing] = np.nan
    return days


__all__ = [
    "PersonRows",
    "any_offence_since",
    "earliest_up_to_index",
    "flag",
    "in_person_order",
    "nanoseconds",
    "prior_counts",
    "reoffences",
    "whole_days",
]
