"""The people with a record: careers truncated to the record span, plus identities.

Careers are simulated for batches of candidates until enough of them have at least one
event inside the record span (everyone in the people table has a record).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from jdl.synth import names
from jdl.synth import params as P
from jdl.synth.careers import Events, draw_candidates, simulate_careers

PNC_CHECK_LETTERS = "ZABCDEFGHJKLMNPQRTUVWXY"


@dataclass(frozen=True)
class People:
    """Everyone with a record; position i has person_id i + 1."""

    date_of_birth: np.ndarray  # int64 day numbers
    male: np.ndarray  # bool
    ethnicity: np.ndarray  # int8 code into params.ETHNICITIES
    region: np.ndarray  # int8 code into params.REGIONS
    forename: np.ndarray  # int32 code into FORENAMES
    surname: np.ndarray  # int32 code into names.SURNAMES
    pnc_year: np.ndarray  # int32
    pnc_number: np.ndarray  # int64, seven digits
    has_pnc: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.date_of_birth)

    @property
    def person_id(self) -> np.ndarray:
        return np.arange(1, len(self) + 1, dtype=np.int64)


FORENAMES: tuple[str, ...] = names.MALE_FORENAMES + names.FEMALE_FORENAMES


def pnc_check_letter(year: np.ndarray, number: np.ndarray) -> np.ndarray:
    """The PNC check character: (two-digit year and serial number) modulo 23."""
    return ((year % 100).astype(np.int64) * 10_000_000 + number) % 23


def simulate_records(
    rng: np.random.Generator,
    people: int,
    p: P.SynthParameters,
    on_progress: Callable[[str], None],
) -> tuple[People, Events]:
    """People and their events inside the record span, sorted by person and offence date."""
    records_from, extraction = P.day_number(p.records_from), P.day_number(p.extraction_date)
    kept_parts: list[Events] = []
    dob_parts: list[np.ndarray] = []
    male_parts: list[np.ndarray] = []
    onset_parts: list[np.ndarray] = []
    found = 0
    yield_estimate = 0.6
    while found < people:
        batch = int((people - found) / yield_estimate * 1.05) + 1_000
        candidates = draw_candidates(rng, batch, p)
        events = simulate_careers(rng, candidates, p)
        in_span = (events.offence >= records_from) & (events.outcome <= extraction)
        with_record = np.flatnonzero(np.bincount(events.person[in_span], minlength=batch) > 0)
        yield_estimate = max(len(with_record) / batch, 0.05)
        chosen = with_record[: people - found]
        position = np.full(batch, -1, dtype=np.int64)
        position[chosen] = np.arange(found, found + len(chosen))
        events = events.take(np.flatnonzero(in_span & (position[events.person] >= 0)))
        kept_parts.append(Events(**{**_fields(events), "person": position[events.person]}))
        dob_parts.append(candidates.date_of_birth[chosen])
        male_parts.append(candidates.male[chosen])
        onset_parts.append(np.floor(candidates.onset[chosen]).astype(np.int64))
        found += len(chosen)
        on_progress(f"simulated careers: {found:,} of {people:,} people with a record")

    events = Events.concatenate(kept_parts)
    # Batches are sorted by person and offence, and positions grow with candidates: so is this.
    events = _separate_same_day_index_dates(events, extraction)
    date_of_birth = np.concatenate(dob_parts)
    male = np.concatenate(male_parts)
    first_offence = np.concatenate(onset_parts)
    return _identities(rng, date_of_birth, male, first_offence, p), events


def _fields(events: Events) -> dict[str, np.ndarray]:
    return {name: getattr(events, name) for name in Events.__dataclass_fields__}


def _separate_same_day_index_dates(events: Events, extraction: int) -> Events:
    """Move outcomes or releases by a day until no person has two index events on one day.

    Two index events on the same day would make "the first index event" ambiguous.
    Within a tie a custodial event sorts first; each other event moves: a conviction or
    caution a day later (earlier at the extraction date), a release a day earlier (a
    shorter stay inside never puts an offence inside a custodial term).
    """
    outcome = events.outcome.copy()
    release = events.release.copy()
    custody = events.custody
    rows = np.flatnonzero(events.proven)
    for _ in range(1_000):
        index_date = np.where(custody[rows], release[rows], outcome[rows])
        order = np.lexsort((~custody[rows], index_date, events.person[rows]))
        sorted_rows = rows[order]
        same = (events.person[sorted_rows][1:] == events.person[sorted_rows][:-1]) & (
            index_date[order][1:] == index_date[order][:-1]
        )
        movers = sorted_rows[1:][same]
        if movers.size == 0:
            break
        # Only people with a tie need another look.
        rows = rows[np.isin(events.person[rows], events.person[movers])]
        moved_custody = movers[custody[movers] & (release[movers] - 1 > outcome[movers])]
        release[moved_custody] -= 1
        moved = movers[~custody[movers]]
        later = outcome[moved] + 1
        outcome[moved] = np.where(
            later <= extraction, later, np.maximum(outcome[moved] - 1, events.offence[moved])
        )
        release[moved] = outcome[moved]
    return Events(**{**_fields(events), "outcome": outcome, "release": release})


def _identities(
    rng: np.random.Generator,
    date_of_birth: np.ndarray,
    male: np.ndarray,
    first_offence: np.ndarray,
    p: P.SynthParameters,
) -> People:
    count = len(date_of_birth)
    male_names = names.draw_name_codes(rng, count, len(names.MALE_FORENAMES))
    female_names = names.draw_name_codes(rng, count, len(names.FEMALE_FORENAMES))
    forename = np.where(male, male_names, female_names + len(names.MALE_FORENAMES)).astype(np.int32)
    surname = names.draw_name_codes(rng, count, len(names.SURNAMES))
    first_year = (
        first_offence.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    )
    pnc_year = np.clip(first_year, 1990, p.extraction_date.year).astype(np.int32)
    pnc_number = rng.choice(10_000_000, size=count, replace=False).astype(np.int64)
    return People(
        date_of_birth=date_of_birth,
        male=male,
        ethnicity=_draw(rng, P.ETHNICITY_SHARES, count),
        region=_draw(rng, P.REGION_SHARES, count),
        forename=forename,
        surname=surname,
        pnc_year=pnc_year,
        pnc_number=pnc_number,
        has_pnc=rng.random(count) >= 0.05,
    )


def _draw(rng: np.random.Generator, shares: tuple[float, ...], count: int) -> np.ndarray:
    cumulative = np.cumsum(shares)
    codes = np.searchsorted(cumulative / cumulative[-1], rng.random(count), side="right")
    return np.minimum(codes, len(shares) - 1).astype(np.int8)
