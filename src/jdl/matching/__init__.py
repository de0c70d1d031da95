"""Propensity scores, matchers and balance diagnostics (pure functions on in-memory data).

Conventions follow R's MatchIt 4.x; see the module docstrings for each rule.
"""

from jdl.matching.balance import balance_table
from jdl.matching.design import design_matrix
from jdl.matching.matchers import MATCHERS, Assignment, MatchingProblem
from jdl.matching.nearest import Caliper, nearest_neighbour_pairs
from jdl.matching.pipeline import common_support, match
from jdl.matching.propensity import (
    PROPENSITY_MODELS,
    PropensityResult,
    fit_propensity,
    propensity_from_column,
)
from jdl.matching.registry import Registry
from jdl.matching.result import DiscardCounts, MatchingResult

__all__ = [
    "MATCHERS",
    "PROPENSITY_MODELS",
    "Assignment",
    "Caliper",
    "DiscardCounts",
    "MatchingProblem",
    "MatchingResult",
    "PropensityResult",
    "Registry",
    "balance_table",
    "common_support",
    "design_matrix",
    "fit_propensity",
    "match",
    "nearest_neighbour_pairs",
    "propensity_from_column",
]
