"""Choosing, partition by partition, the national people who could link to a cohort."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from jdl.linkage.normalise import (
    MISSING_DAYS,
    SEX_CODES,
    block_codes,
    days_since_epoch,
    pnc_in_keys,
    pnc_match_keys,
    sex_codes,
)


@dataclass(frozen=True)
class CandidateKeys:
    """What a national person must share with some cohort row to be worth comparing.

    `pnc_ids` are PNC match keys (see `normalise.pnc_match_keys`); `blocks` are
    (date of birth as days since 1970-01-01, sex "M"/"F").
    """

    pnc_ids: frozenset[str]
    blocks: frozenset[tuple[int, str]]


def candidate_keys(cohort_rows: pd.DataFrame) -> CandidateKeys:
    if "pnc_id" in cohort_rows.columns:
        pnc_keys = pnc_match_keys(cohort_rows["pnc_id"]).dropna()
        pnc_ids = frozenset(str(key) for key in pnc_keys)
    else:
        pnc_ids = frozenset()
    days = days_since_epoch(cohort_rows["date_of_birth"])
    codes = sex_codes(cohort_rows["sex"])
    sex_by_code = {code: sex for sex, code in SEX_CODES.items()}
    blocks = frozenset(
        (int(day), sex_by_code[int(code)])
        for day, code in zip(days, codes, strict=True)
        if int(code) in sex_by_code and int(day) != MISSING_DAYS
    )
    return CandidateKeys(pnc_ids=pnc_ids, blocks=blocks)


def wanted_block_codes(keys: CandidateKeys) -> np.ndarray:
    """The packed (date of birth, sex) codes of the keys' blocks (see `normalise.block_codes`)."""
    if not keys.blocks:
        return np.empty(0, dtype=np.int64)
    days = np.fromiter((day for day, _ in keys.blocks), dtype=np.int64, count=len(keys.blocks))
    sexes = np.fromiter(
        (SEX_CODES[sex] for _, sex in keys.blocks), dtype=np.int64, count=len(keys.blocks)
    )
    return block_codes(days, sexes)


def select_candidates(people: pd.DataFrame, keys: CandidateKeys) -> pd.DataFrame:
    """The rows of one people partition sharing a PNC ID or a (date of birth, sex) block."""
    return people.loc[candidate_mask(people, keys)]


def candidate_mask(people: pd.DataFrame, keys: CandidateKeys) -> np.ndarray:
    """Whether each row shares a PNC ID or a (date of birth, sex) block (needs pnc_id, date_of_birth, sex)."""
    keep = np.zeros(len(people), dtype=bool)
    if keys.pnc_ids and "pnc_id" in people.columns:
        keep |= pnc_in_keys(people["pnc_id"], keys.pnc_ids)
    wanted = wanted_block_codes(keys)
    if len(wanted):
        codes = block_codes(days_since_epoch(people["date_of_birth"]), sex_codes(people["sex"]))
        keep |= pd.Index(wanted).get_indexer(codes) >= 0
    return keep
