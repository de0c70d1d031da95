"""Estimators, effect measures, variance, power, multiplicity, sensitivity and disclosure control.

Pure functions on in-memory data. Importing the package registers every
estimator in ESTIMATORS (weighted_difference, regression_adjustment, ipw,
aipw, s_learner, t_learner, x_learner, dr_learner).
"""

from jdl.estimation import meta_learners, weighting  # noqa: F401  (registers estimators)
from jdl.estimation.estimators import ESTIMATORS, estimate, naive_difference
from jdl.estimation.power import min_detectable_effect, people_needed
from jdl.estimation.result import EstimateResult
from jdl.estimation.variance import (
    bootstrap_interval,
    cluster_bootstrap,
    cluster_bootstrap_wls,
    weighted_difference,
    weighted_regression,
)

__all__ = [
    "ESTIMATORS",
    "EstimateResult",
    "bootstrap_interval",
    "cluster_bootstrap",
    "cluster_bootstrap_wls",
    "estimate",
    "min_detectable_effect",
    "naive_difference",
    "people_needed",
    "weighted_difference",
    "weighted_regression",
]
