"""Covariates and outcomes as window aggregates of events around the index date."""

from jdl.measures.covariates import (
    COVARIATES,
    Covariate,
    CovariateContext,
    compute_covariates,
    covariate_column,
)
from jdl.measures.employment import (
    SpellContext,
    Spells,
    compute_spell_features,
    spell_feature_names,
    table_needed,
    tables_needed,
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
    "SpellContext",
    "Spells",
    "compute_covariates",
    "compute_outcomes",
    "compute_spell_features",
    "covariate_column",
    "follow_up_complete",
    "proven_reoffences",
    "spell_feature_names",
    "table_needed",
    "tables_needed",
    "window_column_name",
    "windowed_columns",
    "windowed_outcomes",
]
