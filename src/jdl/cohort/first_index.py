"""The comparison pool's index events in one compiled pass over each person's events.

`choose_pool_index(resolve_occasions(candidate_index_rows(events)))` finds
every occasion of every person, orders them and keeps each person's first in
the period: several vectorised passes and takes over a block's million event
rows, most of them for occasions that are then dropped. The first occasion
in the period needs less: per person, the candidate rows grouped by outcome
date (an occasion), each occasion's index date (its latest custodial release
when it has a custodial row, else its outcome date), the earliest by index
date then outcome date, and only that occasion's lead row. This module
computes exactly that in one walk over each person's rows and builds the
index table from the lead rows with the same column conversions, so the
table is the one the three steps give (tests/test_first_index.py checks it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from jdl.cohort.index_events import (
    DISPOSAL_ORDER,
    PROVEN_OUTCOMES,
    SEVERITY_ORDER,
    _group,
    _rank,
    _text,
    as_text,
    text_in,
)
from jdl.compiled import NAT, helper, kernel

LATEST = np.iinfo(np.int64).max  # a missing offence date sorts last


def _ns(dates: pd.Series) -> np.ndarray:
    return dates.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _coded(values: pd.Series, per_value: Callable[[pd.Series], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A text column as (codes, table): row i's value is table[codes[i]], code -1 (missing) the table's
    last entry. A Categorical keeps its own codes (no per-row array is made); other text is coded by
    `per_value` itself, with the identity table."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categories = pd.Series(pd.Categorical([*values.cat.categories, None]))
        return values.cat.codes.to_numpy(), per_value(categories).astype(np.int64)
    places = per_value(values).astype(np.int64)
    return places, np.arange(int(places.max(initial=0)) + 2, dtype=np.int64)


def _place_in(order: tuple[str, ...]) -> Callable[[pd.Series], np.ndarray]:
    return lambda values: _rank(values, order)


def _proven(values: pd.Series) -> np.ndarray:
    return text_in(values, PROVEN_OUTCOMES).astype(np.int64)


def _text_rank(values: pd.Series) -> np.ndarray:
    """A rank that orders as the text does ("" for missing), as `pd.factorize(sort=True)` codes."""
    codes, _ = pd.factorize(as_text(values).fillna(""), sort=True)
    return codes


@helper
def _at(table: np.ndarray, code: int) -> int:  # pragma: no cover - compiled
    return table[code] if code >= 0 else table[len(table) - 1]


@helper
def _days(sentence: float) -> float:  # pragma: no cover - compiled
    return 0.0 if np.isnan(sentence) else sentence


@helper
def _last_if_missing(date: int) -> int:  # pragma: no cover - compiled
    return LATEST if date == NAT else date


@kernel
def _first_occasions(person, proven_codes, proven_table, outcome, release, disposal_codes, disposal_table,
                     severity_codes, severity_table, sentence_days, offence_date, group_codes, group_table,
                     period_from, period_to):  # pragma: no cover - compiled
    """Per person with an index event in the period (in person order): the lead row, index date and
    outcome date of their first occasion by index date then outcome date.

    Rows are grouped by person (`person` non-decreasing); within a person, row order decides ties.
    Text columns come as codes into tables (`_coded`); a missing sentence counts as 0 days and a missing
    offence date sorts last.
    """
    rows = len(person)
    # outputs and the candidates' buffer: written only as far as used, so their pages are barely touched
    lead_rows = np.empty(rows, dtype=np.int64)
    index_dates = np.empty(rows, dtype=np.int64)
    outcome_dates = np.empty(rows, dtype=np.int64)
    candidates = np.empty(rows, dtype=np.int64)
    found = 0
    start = 0
    while start < rows:
        end = start + 1
        while end < rows and person[end] == person[start]:
            end += 1
        # the candidate rows: proven, outcome by the period's end, in reach of its start
        n = 0
        for j in range(start, end):
            date = outcome[j]
            if date == NAT or date > period_to or _at(proven_table, proven_codes[j]) == 0:
                continue
            if date >= period_from or (_at(disposal_table, disposal_codes[j]) == 0 and release[j] != NAT
                                       and release[j] >= period_from):
                candidates[n] = j
                n += 1
        if n > 0:
            # occasions: candidate rows by outcome date, row order kept within one
            members = candidates[:n]
            # a stable insertion sort: a person has few rows, and numba's library sorts take seconds to compile
            for k in range(1, n):
                row = members[k]
                at = k
                while at > 0 and outcome[members[at - 1]] > outcome[row]:
                    members[at] = members[at - 1]
                    at -= 1
                members[at] = row
            best_index = NAT
            best_first = -1
            best_last = -1
            first = 0
            while first < n:
                last = first + 1
                while last < n and outcome[members[last]] == outcome[members[first]]:
                    last += 1
                custodial = False
                latest = NAT
                for k in range(first, last):
                    j = members[k]
                    if _at(disposal_table, disposal_codes[j]) == 0:
                        custodial = True
                        if release[j] != NAT and release[j] > latest:
                            latest = release[j]
                index_date = latest if custodial else outcome[members[first]]
                in_period = index_date != NAT and period_from <= index_date <= period_to
                # occasions come by outcome date, so on an index-date tie the earlier one stays
                if in_period and (best_first < 0 or index_date < best_index):
                    best_index, best_first, best_last = index_date, first, last
                first = last
            if best_first >= 0:
                lead = members[best_first]
                for k in range(best_first + 1, best_last):
                    j = members[k]
                    disposal_j = _at(disposal_table, disposal_codes[j])
                    disposal_lead = _at(disposal_table, disposal_codes[lead])
                    severity_j = _at(severity_table, severity_codes[j])
                    severity_lead = _at(severity_table, severity_codes[lead])
                    sentence_j = _days(sentence_days[j])
                    sentence_lead = _days(sentence_days[lead])
                    offence_j = _last_if_missing(offence_date[j])
                    offence_lead = _last_if_missing(offence_date[lead])
                    if disposal_j != disposal_lead:
                        better = disposal_j < disposal_lead
                    elif severity_j != severity_lead:
                        better = severity_j < severity_lead
                    elif sentence_j != sentence_lead:
                        better = sentence_j > sentence_lead
                    elif offence_j != offence_lead:
                        better = offence_j < offence_lead
                    else:
                        better = _at(group_table, group_codes[j]) < _at(group_table, group_codes[lead])
                    if better:
                        lead = j
                lead_rows[found] = lead
                index_dates[found] = best_index
                outcome_dates[found] = outcome[lead]
                found += 1
        start = end
    return lead_rows[:found], index_dates[:found], outcome_dates[:found]


def first_index_events(events: pd.DataFrame, period_from: dt.date, period_to: dt.date) -> pd.DataFrame | None:
    """Each person's first index event in the period, as `choose_pool_index` gives it from
    `resolve_occasions(candidate_index_rows(events, ...))` with no one excluded.

    None when no person has one (the three steps then give the empty table with its dtypes).
    """
    if len(events) == 0:
        return None
    person = events["person_id"].to_numpy(dtype=np.int64)
    order = None
    if len(person) > 1 and not bool((person[1:] >= person[:-1]).all()):
        order = np.argsort(person, kind="stable")

    def grouped(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    coded = [_coded(events[column], per_value) for column, per_value in (
        ("outcome_type", _proven), ("disposal", _place_in(DISPOSAL_ORDER)), ("severity", _place_in(SEVERITY_ORDER)),
        ("offence_group", _text_rank))]
    lead, index_date, outcome_date = _first_occasions(
        grouped(person), grouped(coded[0][0]), coded[0][1], grouped(_ns(events["outcome_date"])),
        grouped(_ns(events["release_date"])), grouped(coded[1][0]), coded[1][1], grouped(coded[2][0]), coded[2][1],
        grouped(events["sentence_days"].to_numpy(dtype="float64")), grouped(_ns(events["offence_date"])),
        grouped(coded[3][0]), coded[3][1],
        pd.Timestamp(period_from).as_unit("ns").value, pd.Timestamp(period_to).as_unit("ns").value,
    )
    if len(lead) == 0:
        return None
    rows = lead if order is None else order[lead]
    return pd.DataFrame({
        "person_id": person[rows],
        "index_date": index_date.view("datetime64[ns]"),
        "index_outcome_date": outcome_date.view("datetime64[ns]"),
        "index_offence_group": _group(events["offence_group"].iloc[rows]).reset_index(drop=True),
        "index_severity": _text(events["severity"], rows),
        "index_disposal": _text(events["disposal"], rows),
        "index_sentence_days": np.nan_to_num(events["sentence_days"].to_numpy(dtype="float64")[rows], nan=0.0),
    })


__all__ = ["first_index_events"]
