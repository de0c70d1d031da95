"""Cohort submissions as organisations send them: missing PNC IDs, typos, odd formatting,
people who are not in the records, a few unusable rows and one duplicated row.

Cohorts hold at most a few thousand rows, so the per-row string noise is plain Python.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jdl.synth import names
from jdl.synth import params as P
from jdl.synth.population import FORENAMES, PNC_CHECK_LETTERS, People

COLUMNS = (
    "forename",
    "surname",
    "date_of_birth",
    "sex",
    "pnc_id",
    "intervention_start",
    "attendance",
    "strand",
)
UNUSABLE_KINDS = ("blank_date_of_birth", "unparseable_intervention_start", "invalid_sex")


@dataclass(frozen=True)
class CohortFile:
    """A shuffled submission and what kinds of rows it holds (for truth.json)."""

    frame: pd.DataFrame
    planted_rows: int
    missing_pnc_rows: int
    typo_rows: int
    formatting_rows: int
    fabricated_rows: int
    unusable_rows: int
    duplicate_rows: int


def iso(days: np.ndarray) -> list[str]:
    return [str(value) for value in np.asarray(days, dtype=np.int64).astype("datetime64[D]")]


def pnc_strings(people: People, positions: np.ndarray) -> list[str]:
    year = people.pnc_year[positions]
    number = people.pnc_number[positions]
    letters = np.array(list(PNC_CHECK_LETTERS))[
        ((year % 100).astype(np.int64) * 10_000_000 + number) % 23
    ]
    return [f"{y}/{n:07d}{c}" for y, n, c in zip(year, number, letters, strict=True)]


def build_cohort_file(
    rng: np.random.Generator,
    people: People,
    persons: np.ndarray,
    intervention_start: np.ndarray,
    fabricated: int,
    strands: tuple[str, ...],
    p: P.SynthParameters,
) -> CohortFile:
    planted = len(persons)
    forename = [FORENAMES[code] for code in people.forename[persons]]
    surname = [names.SURNAMES[code] for code in people.surname[persons]]
    pnc = pnc_strings(people, persons)
    has_pnc = people.has_pnc[persons] & (rng.random(planted) >= p.missing_pnc_share)
    pnc = [value if keep else "" for value, keep in zip(pnc, has_pnc, strict=True)]

    typo_rows = rng.choice(planted, size=round(p.typo_share * planted), replace=False)
    for row in typo_rows:
        if rng.random() < 0.5:
            forename[row] = _typo(rng, forename[row])
        else:
            surname[row] = _typo(rng, surname[row])
    free = np.setdiff1d(np.arange(planted), typo_rows)
    formatting_rows = rng.choice(
        free, size=min(len(free), round(p.formatting_share * planted)), replace=False
    )
    for row in formatting_rows:
        forename[row], surname[row] = _reformat(rng, forename[row], surname[row])

    frame = pd.DataFrame(
        {
            "forename": forename,
            "surname": surname,
            "date_of_birth": iso(people.date_of_birth[persons]),
            "sex": np.where(people.male[persons], "M", "F").tolist(),
            "pnc_id": pnc,
            "intervention_start": iso(intervention_start),
        }
    )
    outsiders = _fabricated_identities(rng, people, fabricated + len(UNUSABLE_KINDS), p)
    for row, kind in enumerate(UNUSABLE_KINDS, start=fabricated):
        column, value = {
            "blank_date_of_birth": ("date_of_birth", ""),
            "unparseable_intervention_start": (
                "intervention_start",
                f"31/02/{p.period_from.year + 1}",
            ),
            "invalid_sex": ("sex", "X"),
        }[kind]
        outsiders.loc[row, column] = value
    frame = pd.concat([frame, outsiders], ignore_index=True)
    frame["attendance"] = 1 + rng.negative_binomial(2, 0.25, size=len(frame))
    frame["strand"] = [strands[code] for code in rng.integers(0, len(strands), size=len(frame))]
    duplicate = frame.iloc[[int(rng.integers(0, planted))]]
    frame = pd.concat([frame, duplicate], ignore_index=True)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    return CohortFile(
        frame=frame.loc[:, list(COLUMNS)],
        planted_rows=planted,
        missing_pnc_rows=int((~has_pnc).sum()),
        typo_rows=len(typo_rows),
        formatting_rows=len(formatting_rows),
        fabricated_rows=fabricated,
        unusable_rows=len(UNUSABLE_KINDS),
        duplicate_rows=1,
    )


def _typo(rng: np.random.Generator, name: str) -> str:
    """One keying error: substitute, transpose or drop one letter."""
    if len(name) < 3:
        return name + "e"
    at = int(rng.integers(1, len(name) - 1))
    kind = int(rng.integers(0, 3))
    if kind == 0:
        letters = "aeioulnrst".replace(name[at].lower(), "")
        return name[:at] + letters[int(rng.integers(0, len(letters)))] + name[at + 1 :]
    swapped = name[:at] + name[at + 1] + name[at] + name[at + 2 :]
    if kind == 1 and swapped != name:
        return swapped
    return name[:at] + name[at + 1 :]


def _reformat(rng: np.random.Generator, forename: str, surname: str) -> tuple[str, str]:
    """Same name, different presentation: case, stray whitespace or a hyphen written as a space."""
    kind = int(rng.integers(0, 3))
    if "-" in surname and kind != 0:
        return forename, surname.replace("-", " ")
    if kind == 0:
        return forename.upper(), surname.upper()
    if kind == 1:
        return f" {forename}", f"{surname}  "
    return forename.lower(), surname.lower()


def _fabricated_identities(
    rng: np.random.Generator, people: People, count: int, p: P.SynthParameters
) -> pd.DataFrame:
    """People who are not in the national records (no identical name, birth date and sex)."""
    male = rng.random(count) < p.male_share
    forename = np.where(
        male,
        rng.integers(0, len(names.MALE_FORENAMES), size=count),
        len(names.MALE_FORENAMES) + rng.integers(0, len(names.FEMALE_FORENAMES), size=count),
    )
    surname = rng.integers(0, len(names.SURNAMES), size=count)
    date_of_birth = rng.integers(
        P.day_number(dt.date(1960, 1, 1)), P.day_number(dt.date(2000, 12, 31)), size=count
    )
    known = np.sort(
        _identity_key(people.forename, people.surname, people.date_of_birth, people.male)
    )
    taken = _contains(known, _identity_key(forename, surname, date_of_birth, male))
    while taken.any():
        date_of_birth[taken] += 1
        taken = _contains(known, _identity_key(forename, surname, date_of_birth, male))
    period_from, period_to = P.day_number(p.period_from), P.day_number(p.period_to)
    return pd.DataFrame(
        {
            "forename": [FORENAMES[code] for code in forename],
            "surname": [names.SURNAMES[code] for code in surname],
            "date_of_birth": iso(date_of_birth),
            "sex": np.where(male, "M", "F").tolist(),
            "pnc_id": [""] * count,
            "intervention_start": iso(rng.integers(period_from, period_to - 365, size=count)),
        }
    )


def _identity_key(
    forename: np.ndarray, surname: np.ndarray, date_of_birth: np.ndarray, male: np.ndarray
) -> np.ndarray:
    """One integer per (forename, surname, date of birth, sex) combination."""
    name = forename.astype(np.int64) * len(names.SURNAMES) + surname.astype(np.int64)
    return (name * 2 + male.astype(np.int64)) * 200_000 + (date_of_birth.astype(np.int64) + 100_000)


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys
