"""Propensity scores, matchers and balance diagnostics (pure functions on in-memory data).

Conventions follow R's MatchIt 4.x (checked unit by unit against MatchIt on the
Lalonde data: tests/test_matchit_reference.py); see the module docstrings for each rule.
"""

from jdl.matching.balance import balance_table, love_plot_data, overlap_plot_data
from jdl.matching.design import design_matrix
from jdl.matching.matchers import MATCHERS, Assignment, MatchingProblem
from jdl.matching.nearest import Caliper, GeneralCriteria, heap_select, nearest_neighbour_pairs
from jdl.matching.pipeline import common_support, match
from jdl.matching.propensity import (
    PROPENSITY_MODELS,
    PropensityResult,
    fit_propensity,
    propensity_from_column,
)
from jdl.matching.result import DiscardCounts, MatchingResult
from jdl.registry import Registry

__all__ = [
    "MATCHERS",
    "PROPENSITY_MODELS",
    "Assignment",
    "Caliper",
    "DiscardCounts",
    "GeneralCriteria",
    "MatchingProblem",
    "MatchingResult",
    "PropensityResult",
    "Registry",
    "balance_table",
    "common_support",
    "design_matrix",
    "fit_propensity",
    "heap_select",
    "love_plot_data",
    "match",
    "nearest_neighbour_pairs",
    "overlap_plot_data",
    "propensity_from_column",
]
