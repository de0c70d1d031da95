"""The linkage rules, in a registry keyed by the name used in the spec's `linkage.rules`.

Each rule sees only the cohort rows not linked by an earlier rule and returns the links
it is sure of plus, for rows it could not link, a reason worth telling the user
(ambiguity, a PNC conflict, a near miss). Reasons never contain names or dates of birth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from jdl.errors import JdlUserError
from jdl.linkage.normalise import MISSING_DAYS

# Prepared frames (see link.py) carry these columns.
ROW = "row_number"
PERSON = "person_id"
PNC = "pnc_key"
DAYS = "dob_days"
SEX = "sex_code"
BLOCK = "block"
FORENAME = "forename_key"
SURNAME = "surname_key"
SCORE = "score"

LINK_COLUMNS = [ROW, PERSON, SCORE]


@dataclass(frozen=True)
class RuleContext:
    fuzzy_threshold: float
    fuzzy_margin: float


@dataclass(frozen=True)
class RuleOutcome:
    links: pd.DataFrame  # row_number, person_id, score: at most one link per row
    reasons: dict[int, str] = field(default_factory=dict)  # rows not linked, worth explaining
    ambiguous: frozenset[int] = frozenset()


RuleFunction = Callable[[pd.DataFrame, pd.DataFrame, RuleContext], RuleOutcome]
LINKAGE_RULES: dict[str, RuleFunction] = {}


def register_rule(name: str) -> Callable[[RuleFunction], RuleFunction]:
    def register(function: RuleFunction) -> RuleFunction:
        if name in LINKAGE_RULES:
            raise ValueError(f"linkage rule {name!r} is already registered")
        LINKAGE_RULES[name] = function
        return function

    return register


def get_rule(name: str) -> RuleFunction:
    try:
        return LINKAGE_RULES[name]
    except KeyError:
        raise JdlUserError.single(
            "linkage.rules",
            "unknown linkage rule",
            value=name,
            allowed=", ".join(LINKAGE_RULES),
        ) from None


def _empty_links() -> pd.DataFrame:
    return pd.DataFrame(
        {
            ROW: pd.Series(dtype="int64"),
            PERSON: pd.Series(dtype="int64"),
            SCORE: pd.Series(dtype="float64"),
        }
    )


def _links_from(pairs: pd.DataFrame) -> pd.DataFrame:
    links = pairs[[ROW, PERSON]].copy()
    links[SCORE] = pairs[SCORE].to_numpy(dtype="float64") if SCORE in pairs else 1.0
    return links.astype({ROW: "int64", PERSON: "int64", SCORE: "float64"}).reset_index(drop=True)


def _identity_usable(frame: pd.DataFrame) -> pd.Series:
    return (
        (frame[FORENAME] != "")
        & (frame[SURNAME] != "")
        & (frame[DAYS] != MISSING_DAYS)
        & (frame[SEX] != 0)
    )


def _no_letters_reasons(pending: pd.DataFrame) -> dict[int, str]:
    lacking = pending.loc[(pending[FORENAME] == "") | (pending[SURNAME] == ""), ROW]
    return {
        int(row): "forename or surname has no letters to compare, so names cannot be matched"
        for row in lacking
    }


def _in_blocks_of(people: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """People in the (date of birth, sex) block of some row: the only ones a same-DOB-and-sex rule can pair.

    Filtering before a merge keeps the pairs and their order; it spares hashing every candidate's keys.
    """
    return people[BLOCK].isin(rows[BLOCK].unique()).to_numpy(dtype=bool)


@register_rule("pnc_id")
def link_by_pnc_id(pending: pd.DataFrame, people: pd.DataFrame, _: RuleContext) -> RuleOutcome:
    """Same PNC ID, unless the person's sex and date of birth both disagree (a likely typo)."""
    with_pnc = pending.loc[pending[PNC].notna(), [ROW, PNC, DAYS, SEX]]
    # only people whose key some pending row has can pair up (the merge keeps their order)
    wanted = people[PNC].notna() & people[PNC].isin(with_pnc[PNC].unique())
    pairs = with_pnc.merge(
        people.loc[wanted.to_numpy(dtype=bool), [PERSON, PNC, DAYS, SEX]],
        on=PNC,
        suffixes=("", "_person"),
    )
    if pairs.empty:
        return RuleOutcome(_empty_links())
    consistent = (pairs[DAYS] == pairs[f"{DAYS}_person"]) | (pairs[SEX] == pairs[f"{SEX}_person"])
    agreeing = pairs.loc[consistent]
    n_agreeing = agreeing.groupby(ROW)[PERSON].transform("size")
    links = _links_from(agreeing.loc[n_agreeing == 1])
    reasons: dict[int, str] = {}
    ambiguous: set[int] = set()
    for row, n_people in agreeing.loc[n_agreeing > 1].groupby(ROW)[PERSON].size().items():
        reasons[int(row)] = f"ambiguous: pnc_id matches {n_people} people in national records"
        ambiguous.add(int(row))
    conflicting_rows = set(pairs.loc[~consistent, ROW]) - set(agreeing[ROW])
    for row in conflicting_rows:
        reasons[int(row)] = (
            "pnc_id conflict: the national record with this pnc_id has a different sex and "
            "date of birth, so it was not used"
        )
    return RuleOutcome(links, reasons, frozenset(ambiguous))


@register_rule("exact_identity")
def link_by_exact_identity(
    pending: pd.DataFrame, people: pd.DataFrame, _: RuleContext
) -> RuleOutcome:
    """Same normalised forename, surname, date of birth and sex, and only one such person."""
    keys = [FORENAME, SURNAME, DAYS, SEX]
    usable = pending.loc[_identity_usable(pending)]
    pairs = usable[[ROW, *keys]].merge(
        people.loc[_identity_usable(people) & _in_blocks_of(people, usable), [PERSON, *keys]], on=keys
    )
    n_people = pairs.groupby(ROW)[PERSON].transform("size")
    links = _links_from(pairs.loc[n_people == 1]) if len(pairs) else _empty_links()
    reasons = _no_letters_reasons(pending)
    ambiguous: set[int] = set()
    for row, count in pairs.loc[n_people > 1].groupby(ROW)[PERSON].size().items():
        reasons[int(row)] = (
            f"ambiguous: {count} people in national records have the same name, "
            "date of birth and sex"
        )
        ambiguous.add(int(row))
    return RuleOutcome(links, reasons, frozenset(ambiguous))


def _pair_similarity(left: list[str], right: list[str]) -> np.ndarray:
    # each pair's score is computed on its own, so spreading the pairs over threads changes no score
    return process.cpdist(
        left, right, scorer=JaroWinkler.normalized_similarity, workers=-1
    ).astype("float64")


def name_similarity(pairs: pd.DataFrame) -> np.ndarray:
    """Mean Jaro-Winkler of forenames and of surnames, the better of as-given and swapped."""
    cohort_forename, cohort_surname = pairs[FORENAME].tolist(), pairs[SURNAME].tolist()
    person_forename, person_surname = pairs[f"{FORENAME}_person"].tolist(), pairs[f"{SURNAME}_person"].tolist()
    as_given = (
        _pair_similarity(cohort_forename, person_forename)
        + _pair_similarity(cohort_surname, person_surname)
    ) / 2
    swapped = (
        _pair_similarity(cohort_forename, person_surname)
        + _pair_similarity(cohort_surname, person_forename)
    ) / 2
    return np.maximum(as_given, swapped)


@register_rule("fuzzy_identity")
def link_by_fuzzy_identity(
    pending: pd.DataFrame, people: pd.DataFrame, context: RuleContext
) -> RuleOutcome:
    """Best name similarity within the same (date of birth, sex), if high and clearly best."""
    usable = pending.loc[_identity_usable(pending)]
    pairs = usable[[ROW, BLOCK, FORENAME, SURNAME]].merge(
        people.loc[_identity_usable(people) & _in_blocks_of(people, usable), [PERSON, BLOCK, FORENAME, SURNAME]],
        on=BLOCK,
        suffixes=("", "_person"),
    )
    reasons = _no_letters_reasons(pending)
    if pairs.empty:
        return RuleOutcome(_empty_links(), reasons)
    pairs[SCORE] = name_similarity(pairs)
    ranked = pairs.sort_values([ROW, SCORE, PERSON], ascending=[True, False, True], kind="stable")
    best_score = ranked.groupby(ROW)[SCORE].transform("max")
    near_best = (ranked[SCORE] >= best_score - context.fuzzy_margin).astype("int64")
    ranked["n_near_best"] = near_best.groupby(ranked[ROW]).transform("sum")
    best = ranked.loc[~ranked[ROW].duplicated()]  # one row per cohort row: its best candidate
    clears = best[SCORE] >= context.fuzzy_threshold
    links = _links_from(best.loc[clears & (best["n_near_best"] == 1)])
    ambiguous: set[int] = set()
    for row, count in best.loc[clears & (best["n_near_best"] > 1), [ROW, "n_near_best"]].itertuples(
        index=False
    ):
        reasons[int(row)] = (
            f"ambiguous: {count} people with the same date of birth and sex have names "
            f"within {context.fuzzy_margin:g} of the best similarity"
        )
        ambiguous.add(int(row))
    for row, score in best.loc[~clears, [ROW, SCORE]].itertuples(index=False):
        reasons[int(row)] = (
            f"closest name similarity {score:.3f} is below fuzzy_threshold "
            f"{context.fuzzy_threshold:g}"
        )
    return RuleOutcome(links, reasons, frozenset(ambiguous))
