"""Who joins each programme, when they start, and what the programme does to their offending.

Selection depends only on covariates observed in the records at the index date (age,
prior proven offences, custodial index disposal, sex) and on region, so matching on the
observed covariates removes the selection bias. The planted effect thins each offence
after the index date with common random numbers: Y(0) is the full stream, Y(1) keeps an
offence when its uniform draw is below the effect multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jdl.synth import params as P
from jdl.synth.careers import Events
from jdl.synth.outcomes import IndexEvents, prior_counts
from jdl.synth.population import People


@dataclass(frozen=True)
class Participants:
    """Planted participants of one organisation (positions into IndexEvents)."""

    name: str
    index_position: np.ndarray  # into IndexEvents arrays
    person: np.ndarray  # person positions
    intervention_start: np.ndarray  # int64 day numbers


def selection_log_weight(
    events: Events, people: People, index: IndexEvents, p: P.SynthParameters
) -> np.ndarray:
    """Log-odds of joining a programme, from observed covariates at the index date only."""
    age = (index.index_date - people.date_of_birth[index.person]) / P.DAYS_PER_YEAR
    priors = prior_counts(events, index, len(people), events.proven)
    custody_index = events.custody[index.row]
    region_effect = np.zeros(len(P.REGIONS))
    for region, effect in p.selection_region:
        region_effect[P.REGIONS.index(region)] = effect
    # JDL programmes are evaluated for adults: a margin past the 18th birthday keeps day-count
    # ages and the pipeline's birthday arithmetic from disagreeing at the boundary
    adult = np.where(age >= 18.05, 0.0, -np.inf)
    return adult + (
        p.selection_age_under_21 * (age < 21)
        + p.selection_age_21_to_25 * ((age >= 21) & (age < 25))
        + p.selection_log_prior_offences * np.log1p(priors)
        + p.selection_custody_index * custody_index
        + p.selection_male * people.male[index.person]
        + region_effect[people.region[index.person]]
    )


def choose_participants(
    rng: np.random.Generator,
    events: Events,
    people: People,
    index: IndexEvents,
    sizes: dict[str, int],
    p: P.SynthParameters,
) -> list[Participants]:
    """Disjoint participant sets, drawn with probability proportional to the selection odds."""
    log_weight = selection_log_weight(events, people, index, p)
    # Efraimidis-Spirakis: the k largest log(U) / w form a weighted sample without replacement.
    with np.errstate(divide="ignore"):  # weight 0 (not eligible) gives key -inf: never drawn
        keys = np.log(rng.random(len(log_weight))) / np.exp(log_weight)
    total = sum(sizes.values())
    chosen = np.argsort(-keys, kind="stable")[:total]
    chosen = chosen[rng.permutation(len(chosen))]
    groups: list[Participants] = []
    start = 0
    for name, size in sizes.items():
        positions = np.sort(chosen[start : start + size])
        start += size
        groups.append(
            Participants(
                name=name,
                index_position=positions,
                person=index.person[positions],
                intervention_start=_intervention_start(rng, events, index, positions, p),
            )
        )
    return groups


def _intervention_start(
    rng: np.random.Generator,
    events: Events,
    index: IndexEvents,
    positions: np.ndarray,
    p: P.SynthParameters,
) -> np.ndarray:
    """A start date after any earlier index date and no later than the planted index date.

    In-prison programmes start between conviction and release; community ones up to
    `intervention_lead_days` before the conviction or caution.
    """
    index_date = index.index_date[positions]
    rows = index.row[positions]
    previous = _previous_index_date(events, index.person[positions], index_date)
    custody = events.custody[rows]
    earliest = np.where(
        custody,
        np.maximum(events.outcome[rows] + 1, index_date - p.in_prison_lead_days),
        index_date - p.intervention_lead_days,
    )
    earliest = np.minimum(np.maximum(earliest, previous + 1), index_date)
    latest = np.where(custody & (index_date - 1 >= earliest), index_date - 1, index_date)
    return earliest + np.floor(rng.random(len(positions)) * (latest - earliest + 1)).astype(
        np.int64
    )


def _previous_index_date(events: Events, persons: np.ndarray, index_date: np.ndarray) -> np.ndarray:
    """Latest index date before the given one for each person (a very early day if none)."""
    none = np.int64(-(10**9))
    starts = np.searchsorted(events.person, persons, side="left")
    ends = np.searchsorted(events.person, persons, side="right")
    lengths = ends - starts
    owner = np.repeat(np.arange(len(persons)), lengths)
    rows = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    candidate = np.where(
        events.proven[rows] & (events.index_date[rows] < index_date[owner]),
        events.index_date[rows],
        none,
    )
    previous = np.full(len(persons), none)
    np.maximum.at(previous, owner, candidate)
    return previous


def treated_keep_mask(
    events: Events,
    people_count: int,
    groups: list[Participants],
    index: IndexEvents,
    thinning_draw: np.ndarray,
    p: P.SynthParameters,
) -> np.ndarray:
    """Rows kept in Y(1): participants lose offences after their index date with prob 1 - multiplier."""
    index_day = np.full(people_count, np.iinfo(np.int64).max)
    for group in groups:
        index_day[group.person] = index.index_date[group.index_position]
    after_index = events.offence > index_day[events.person]
    return ~after_index | (thinning_draw < p.effect_multiplier)
