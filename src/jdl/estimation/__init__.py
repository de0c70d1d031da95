"""Estimators, variance and power for matched comparisons (pure functions on in-memory data)."""

from jdl.estimation.estimators import ESTIMATORS, estimate, naive_difference
from jdl.estimation.power import min_detectable_effect, people_needed
from jdl.estimation.result import EstimateResult
from jdl.estimation.variance import cluster_bootstrap, weighted_difference

__all__ = [
    "ESTIMATORS",
    "EstimateResult",
    "cluster_bootstrap",
    "estimate",
    "min_detectable_effect",
    "naive_difference",
    "people_needed",
    "weighted_difference",
]
