"""Index events and proven reoffending, by the definitions the pipeline uses (DESIGN §1).

Used by the generator to choose participants and to measure the truth it records; the
tests recompute the same quantities independently from the written files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jdl.synth import params as P
from jdl.synth.careers import Events


@dataclass(frozen=True)
class IndexEvents:
    """Each person's first index event with an index date inside the cohort period."""

    person: np.ndarray  # person positions, ascending
    row: np.ndarray  # event row of the index event
    index_date: np.ndarray  # int64 day numbers


def first_index_in_period(events: Events, period_from: int, period_to: int) -> IndexEvents:
    index_date = events.index_date
    rows = np.flatnonzero(events.proven & (index_date >= period_from) & (index_date <= period_to))
    order = np.lexsort((index_date[rows], events.person[rows]))
    rows = rows[order]
    persons = events.person[rows]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = persons[1:] != persons[:-1]
    rows = rows[first]
    return IndexEvents(person=events.person[rows], row=rows, index_date=index_date[rows])


def per_person(index: IndexEvents, people: int, values: np.ndarray, missing: int) -> np.ndarray:
    """Spread one value per indexed person over all person positions."""
    spread = np.full(people, missing, dtype=values.dtype)
    spread[index.person] = values
    return spread


def prior_counts(events: Events, index: IndexEvents, people: int, which: np.ndarray) -> np.ndarray:
    """Events flagged `which` with an outcome before the index date, the index event excluded."""
    no_index = np.iinfo(np.int64).min
    index_date = per_person(index, people, index.index_date, no_index)[events.person]
    counted = which & (events.outcome < index_date)
    counted[index.row] = False
    return np.bincount(events.person[counted], minlength=people)[index.person]


def proven_reoffences(
    events: Events,
    index: IndexEvents,
    people: int,
    keep: np.ndarray | None = None,
    follow_up_months: int = 12,
    waiting_months: int = 6,
) -> np.ndarray:
    """Proven reoffences per indexed person: offence in (d, d + 1y], proven by d + 1y + 6m."""
    window_end = add_months_per_person(index, people, follow_up_months)
    proven_by = add_months_per_person(index, people, follow_up_months + waiting_months)
    no_index = np.iinfo(np.int64).max
    index_date = per_person(index, people, index.index_date, no_index)[events.person]
    counted = (
        events.proven
        & (events.offence > index_date)
        & (events.offence <= window_end[events.person])
        & (events.outcome <= proven_by[events.person])
    )
    if keep is not None:
        counted &= keep
    return np.bincount(events.person[counted], minlength=people)[index.person]


def add_months_per_person(index: IndexEvents, people: int, months: int) -> np.ndarray:
    shifted = P.add_months(index.index_date, months)
    return per_person(index, people, shifted, np.iinfo(np.int64).min)
