"""Linking a cohort submission to national person ids (see DESIGN.md §1-2)."""

from jdl.linkage.candidates import CandidateKeys, candidate_keys, candidate_mask, select_candidates
from jdl.linkage.link import (
    FUZZY_MARGIN,
    LinkageResult,
    link_cohort,
    link_prepared,
    people_keys,
    people_keys_of,
)
from jdl.linkage.rules import LINKAGE_RULES, register_rule

__all__ = [
    "FUZZY_MARGIN",
    "LINKAGE_RULES",
    "CandidateKeys",
    "LinkageResult",
    "candidate_keys",
    "candidate_mask",
    "link_cohort",
    "link_prepared",
    "people_keys",
    "people_keys_of",
    "register_rule",
    "select_candidates",
]
