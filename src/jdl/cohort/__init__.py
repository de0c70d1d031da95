"""Index events, participants' index rules, the comparison pool and eligibility."""

from jdl.cohort.first_index import first_index_events
from jdl.cohort.index_events import (
    EVENT_COLUMNS_FOR_INDEX,
    INDEX_COLUMNS,
    as_text,
    candidate_index_rows,
    resolve_occasions,
    sort_key,
    stable_order,
    text_in,
)
from jdl.cohort.selection import (
    INDEX_RULES,
    TreatmentIndex,
    choose_pool_index,
    choose_treatment_index,
    eligibility_reasons,
    get_index_rule,
    whole_years_between,
)

__all__ = [
    "EVENT_COLUMNS_FOR_INDEX",
    "INDEX_COLUMNS",
    "INDEX_RULES",
    "TreatmentIndex",
    "as_text",
    "candidate_index_rows",
    "choose_pool_index",
    "choose_treatment_index",
    "eligibility_reasons",
    "first_index_events",
    "get_index_rule",
    "resolve_occasions",
    "sort_key",
    "stable_order",
    "text_in",
    "whole_years_between",
]
