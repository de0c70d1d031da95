"""Linking cohort rows to national person ids by applying the spec's rules in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jdl.errors import JdlUserError
from jdl.linkage.normalise import (
    block_codes,
    days_since_epoch,
    normalise_names,
    pnc_match_keys,
    sex_codes,
)
from jdl.linkage.rules import (
    BLOCK,
    DAYS,
    FORENAME,
    LINKAGE_RULES,
    PERSON,
    PNC,
    ROW,
    SCORE,
    SEX,
    SURNAME,
    RuleContext,
    get_rule,
)

# Two fuzzy candidates whose scores differ by no more than this are treated as a tie.
FUZZY_MARGIN = 0.01
START = "intervention_start"
RULE = "rule"
REASON = "reason"
AMBIGUOUS = "ambiguous"
DUPLICATE_PERSON = "duplicate_person"
UNLINKED = "unlinked"


@dataclass(frozen=True)
class LinkageResult:
    """Which cohort rows linked to which national person, by which rule, and why not.

    `counts` holds the number of rows linked by each registered rule (0 when unused)
    and "unlinked" (all rows not linked); "ambiguous" and "duplicate_person" count the
    unlinked rows for those reasons, so they are part of "unlinked", not extra to it.
    """

    links: pd.DataFrame  # row_number, person_id (int64), rule, score
    unlinked: pd.DataFrame  # row_number, reason
    counts: dict[str, int]
    rules: tuple[str, ...]
    fuzzy_threshold: float
    fuzzy_margin: float = FUZZY_MARGIN
    method: str = "deterministic rules then Jaro-Winkler within (date of birth, sex) blocks"


def _checked_rules(rules: Sequence[str]) -> tuple[str, ...]:
    if isinstance(rules, str) or not rules:
        raise JdlUserError.single(
            "linkage.rules",
            "give a non-empty list of rules",
            value=rules,
            allowed=", ".join(LINKAGE_RULES),
        )
    repeated = sorted({rule for rule in rules if list(rules).count(rule) > 1})
    if repeated:
        raise JdlUserError.single(
            "linkage.rules", "each linkage rule may appear once", value=repeated
        )
    for rule in rules:
        get_rule(rule)
    return tuple(rules)


def _checked_threshold(threshold: float) -> float:
    if not 0 < threshold <= 1:
        raise JdlUserError.single(
            "linkage.fuzzy_threshold",
            "out of range",
            value=threshold,
            allowed="a number above 0 and at most 1",
        )
    return float(threshold)


def _keys(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """Comparison keys of each row of cohort rows or national people (each row's from its values alone)."""
    days = days_since_epoch(frame["date_of_birth"])
    sexes = sex_codes(frame["sex"])
    pnc = frame["pnc_id"] if "pnc_id" in frame.columns else pd.Series(pd.NA, index=frame.index)
    def text(values: pd.Series) -> pd.Series:
        # kept as strings end to end (a round trip through object arrays costs a Python string per row)
        return values.astype("string").reset_index(drop=True)

    prepared = _assembled(id_column, frame[id_column].to_numpy(dtype="int64"), text(pnc_match_keys(pnc)), days,
                          sexes, text(normalise_names(frame["forename"])), text(normalise_names(frame["surname"])))
    if id_column == ROW:
        start = frame[START] if START in frame.columns else pd.Series(pd.NaT, index=frame.index)
        prepared[START] = pd.to_datetime(start).to_numpy(dtype="datetime64[ns]")
    return prepared


def _assembled(id_column: str, ids: np.ndarray, pnc_keys: pd.Series, days: np.ndarray, sexes: np.ndarray,
               forename_keys: pd.Series, surname_keys: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            id_column: ids,
            PNC: pnc_keys,
            DAYS: days,
            SEX: sexes,
            BLOCK: block_codes(days, sexes),
            FORENAME: forename_keys,
            SURNAME: surname_keys,
        }
    )


def people_keys_of(person_ids: np.ndarray, pnc_keys: pd.Series, days: np.ndarray, sexes: np.ndarray,
                   forename_keys: pd.Series, surname_keys: pd.Series) -> pd.DataFrame:
    """`people_keys` assembled from keys computed elsewhere (say, from a column's dictionary).

    `pnc_keys` as `normalise.pnc_match_keys` gives them, `days` as `days_since_epoch`, `sexes` as
    `sex_codes`, the names as `normalise_names`; Series with a default index.
    """
    def text(values: pd.Series) -> pd.Series:
        return values.astype("string").reset_index(drop=True)

    return _assembled(PERSON, np.asarray(person_ids, dtype="int64"), text(pnc_keys), np.asarray(days, dtype=np.int64),
                      np.asarray(sexes, dtype=np.int64), text(forename_keys), text(surname_keys))


def _one_per_id(prepared: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """The first row of each id, sorted by id (a stable sort)."""
    ids = prepared[id_column].to_numpy(dtype="int64")
    if len(ids) and bool((ids[1:] >= ids[:-1]).all()):  # already in order (national records usually are)
        repeated = np.zeros(len(ids), dtype=bool)
        repeated[1:] = ids[1:] == ids[:-1]
        return prepared.loc[~repeated].reset_index(drop=True) if repeated.any() else prepared.reset_index(drop=True)
    prepared = prepared.sort_values(id_column, kind="stable")
    return prepared.drop_duplicates(id_column).reset_index(drop=True)


def _prepared(frame: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """Comparison keys for cohort rows or national people, one row per id, sorted by id."""
    return _one_per_id(_keys(frame, id_column), id_column)


def people_keys(candidates: pd.DataFrame) -> pd.DataFrame:
    """The comparison keys of national people rows, row by row (`link_prepared` takes them).

    Each row's keys depend on that row alone, so the keys of a table's parts,
    concatenated in order, are the keys of the whole table: parts can be
    prepared where they are read.
    """
    return _keys(candidates, PERSON)


def _resolve_duplicate_people(
    links: pd.DataFrame, starts: pd.DataFrame
) -> tuple[pd.DataFrame, dict[int, str]]:
    """Keep one cohort row per person: the earliest intervention_start, then the lowest row."""
    ordered = links.merge(starts, on=ROW).sort_values(
        [PERSON, START, ROW], kind="stable", na_position="last"
    )
    keeper = ordered.groupby(PERSON)[ROW].transform("first")
    repeats = ordered.loc[ordered[ROW] != keeper]
    reasons = {
        int(row): f"same person as row {int(kept)}"
        for row, kept in zip(repeats[ROW], keeper.loc[repeats.index], strict=True)
    }
    return links.loc[~links[ROW].isin(list(reasons))], reasons


def link_cohort(
    cohort_rows: pd.DataFrame,
    candidates: pd.DataFrame,
    *,
    rules: list[str],
    fuzzy_threshold: float,
    fuzzy_margin: float = FUZZY_MARGIN,
) -> LinkageResult:
    """Link each cohort row to at most one national person_id using `rules` in order."""
    _checked_rules(rules)
    _checked_threshold(fuzzy_threshold)
    return link_prepared(cohort_rows, people_keys(candidates), rules=rules, fuzzy_threshold=fuzzy_threshold,
                         fuzzy_margin=fuzzy_margin)


def link_prepared(
    cohort_rows: pd.DataFrame,
    candidate_keys: pd.DataFrame,
    *,
    rules: list[str],
    fuzzy_threshold: float,
    fuzzy_margin: float = FUZZY_MARGIN,
) -> LinkageResult:
    """`link_cohort` of candidates given by their `people_keys` (of all candidate rows, in their order)."""
    rule_names = _checked_rules(rules)
    context = RuleContext(_checked_threshold(fuzzy_threshold), float(fuzzy_margin))
    cohort = _prepared(cohort_rows, ROW)
    people = _one_per_id(candidate_keys, PERSON)

    pending = cohort
    linked: list[pd.DataFrame] = []
    reasons: dict[int, list[str]] = {}
    ambiguous: set[int] = set()
    for name in rule_names:
        outcome = get_rule(name)(pending, people, context)
        linked.append(outcome.links.assign(**{RULE: name}))
        for row, reason in outcome.reasons.items():
            if reason not in reasons.setdefault(row, []):
                reasons[row].append(reason)
        ambiguous |= outcome.ambiguous
        pending = pending.loc[~pending[ROW].isin(outcome.links[ROW])]

    all_links = pd.concat(linked, ignore_index=True)
    links, duplicate_reasons = _resolve_duplicate_people(all_links, cohort[[ROW, START]])
    links = (
        links[[ROW, PERSON, RULE, SCORE]]
        .astype({ROW: "int64", PERSON: "int64", RULE: "string", SCORE: "float64"})
        .sort_values(ROW, kind="stable")
        .reset_index(drop=True)
    )

    no_match = f"no match by {', '.join(rule_names)}"
    unlinked_rows = cohort.loc[~cohort[ROW].isin(links[ROW]), ROW].astype(int).tolist()
    unlinked = pd.DataFrame(
        {
            ROW: pd.Series(unlinked_rows, dtype="int64"),
            REASON: pd.Series(
                [
                    duplicate_reasons.get(row) or "; ".join(reasons.get(row, [])) or no_match
                    for row in unlinked_rows
                ],
                dtype="string",
            ),
        }
    )
    counts = {name: int((links[RULE] == name).sum()) for name in LINKAGE_RULES}
    counts[UNLINKED] = len(unlinked)
    counts[AMBIGUOUS] = len(ambiguous & (set(unlinked_rows) - set(duplicate_reasons)))
    counts[DUPLICATE_PERSON] = len(duplicate_reasons)
    return LinkageResult(
        links=links,
        unlinked=unlinked,
        counts=counts,
        rules=rule_names,
        fuzzy_threshold=context.fuzzy_threshold,
        fuzzy_margin=context.fuzzy_margin,
    )
