"""Covariates and outcomes as window aggregates of events around the index date."""

from jdl.measures.covariates import (
    COVARIATES,
    Covariate,
    CovariateContext,
    compute_covariates,
    covariate_column,
)
from jdl.measures.outcomes import (
    MEASURES,
    Measure,
    OutcomeColumn,
    compute_outcomes,
    follow_up_complete,
    proven_reoffences,
)
from jdl.measures.windows import window_column_name, windowed_columns, windowed_outcomes

__all__ = [
    "COVARIATES",
    "MEASURES",
    "Covariate",
    "CovariateContext",
    "Measure",
    "OutcomeColumn",
    "compute_covariates",
    "compute_outcomes",
    "covariate_column",
    "follow_up_complete",
    "proven_reoffences",
    "window_column_name",
    "windowed_columns",
    "windowed_outcomes",
]
