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
from jdl.compiled import NAT, kernel

LATEST = np.iinfo(np.int64).max  # a missing offence date sorts last


def _ns(dates: pd.Series) -> np.ndarray:
    return dates.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _text_rank(values: pd.Series) -> np.ndarray:
    """Per row, a rank that orders as the text does ("" for missing), as `pd.factorize(sort=True)` codes."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        names = ["" if pd.isna(c) else str(c) for c in values.cat.categories]
        ordered = sorted(set(names) | {""})
        place = {name: i for i, name in enumerate(ordered)}
        per_code = np.array([place[name] for name in names] + [place[""]], dtype=np.int64)
        return per_code[values.cat.codes.to_numpy()]
    codes, _ = pd.factorize(as_text(values).fillna(""), sort=True)
    return codes.astype(np.int64)


@kernel
def _first_occasions(person, proven, outcome, release, disposal, severity, sentence, offence, group,
                     period_from, period_to):  # pragma: no cover - compiled
    """Per person with an index event in the period (in person order): the lead row, index date and
    outcome date of their first occasion by index date then outcome date.

    Rows are grouped by person (`person` non-decreasing); within a person, row order decides ties.
    """
    rows = len(person)
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
            if not proven[j] or date == NAT or date > period_to:
                continue
            if date >= period_from or (disposal[j] == 0 and release[j] != NAT and release[j] >= period_from):
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
                    if disposal[j] == 0:
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
                    if disposal[j] != disposal[lead]:
                        better = disposal[j] < disposal[lead]
                    elif severity[j] != severity[lead]:
                        better = severity[j] < severity[lead]
                    elif sentence[j] != sentence[lead]:
                        better = sentence[j] > sentence[lead]
                    elif offence[j] != offence[lead]:
                        better = offence[j] < offence[lead]
                    else:
                        better = group[j] < group[lead]
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

    sentence = events["sentence_days"].fillna(0.0).to_numpy(dtype="float64")
    offence = _ns(events["offence_date"])
    lead, index_date, outcome_date = _first_occasions(
        grouped(person), grouped(text_in(events["outcome_type"], PROVEN_OUTCOMES)), grouped(_ns(events["outcome_date"])),
        grouped(_ns(events["release_date"])), grouped(_rank(events["disposal"], DISPOSAL_ORDER)),
        grouped(_rank(events["severity"], SEVERITY_ORDER)), grouped(sentence),
        grouped(np.where(offence == NAT, LATEST, offence)), grouped(_text_rank(events["offence_group"])),
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
        "index_sentence_days": sentence[rows],
    })


__all__ = ["first_index_events"]
