"""Inverse probability weighting (ipw) and augmented IPW (aipw) from the matching's propensity score.

Both use the analysis sample: every unit inside common support (not discarded
by the matching) with an outcome. Weights for the estimand (e = propensity):

  ATT: treated 1, comparison e/(1-e);  ATC: treated (1-e)/e, comparison 1;
  ATE: treated 1/e, comparison 1/(1-e)

and each group's weights are normalised to sum to one (Hajek), so the effect
is a difference of two weighted means.

ipw's standard error is the M-estimation sandwich (Lunceford & Davidian 2004;
Stefanski & Boos 2002) stacking the two weighted-mean equations with the
logistic propensity model's score equations, so it accounts for the score
having been estimated. That needs the propensity design: when the covariates
are given and the matching's logistic coefficients reproduce its linear
predictor from them, the full sandwich is used; otherwise (a score read from a
column, another propensity model, no covariates) the score is treated as
known and `parameters["propensity_estimation"]` says so.

aipw (doubly robust) adds outcome models fitted in each group on the
covariates (a GLM: logistic for binary, Poisson for counts, Gaussian for
continuous outcomes). ATE is the classic AIPW estimator (Robins, Rotnitzky &
Zhao 1994); ATT and ATC are the normalised doubly robust estimators of
Moodie et al. (2018) / Hahn (1998). The standard error is the empirical
variance of the efficient influence function with the nuisance models held
fixed, the usual plug-in for doubly robust estimators.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jdl.estimation.estimators import (
    ESTIMATORS,
    OutcomeKind,
    PowerInputs,
    check_outcome,
    covariate_design,
    full_rank_columns,
    normal_result,
    reject_bootstrap,
    require_both_groups,
    require_covariates,
)
from jdl.estimation.result import EstimateResult
from jdl.matching import MatchingResult
from jdl.matching.propensity import INTERCEPT
from jdl.spec.models import EstimatorSpec

if TYPE_CHECKING:
    import statsmodels.api as sm

SCORE_BOUNDS = (1e-6, 1 - 1e-6)


@dataclass(frozen=True)
class AnalysisSample:
    """All units in the order of matching.units; `included` marks the analysis sample."""

    y: np.ndarray  # 0 where not included
    treated: np.ndarray
    included: np.ndarray
    score: np.ndarray
    linear_predictor: np.ndarray
    propensity_design: np.ndarray | None  # [1, X] reproducing the linear predictor, if known
    covariates: np.ndarray | None  # covariate design of the included units (aipw)
    covariate_names: list[str]


def _propensity_design(
    matching: MatchingResult, design: pd.DataFrame | None
) -> np.ndarray | None:
    """[1, X] whose product with the fitted coefficients is the propensity linear predictor."""
    propensity = matching.propensity
    if design is None or propensity.model != "logistic":
        return None
    names = [n for n in propensity.coefficients if n != INTERCEPT]
    if set(names) != {str(c) for c in design.columns}:
        return None
    X = np.column_stack([np.ones(len(design)), design[names].to_numpy(float)])
    beta = np.array([propensity.coefficients[INTERCEPT], *(propensity.coefficients[n] for n in names)])
    if not np.allclose(X @ beta, propensity.linear_predictor, atol=1e-6, rtol=1e-8):
        return None
    return X


def analysis_sample(
    outcome: pd.Series,
    matching: MatchingResult,
    kind: OutcomeKind,
    covariates: pd.DataFrame | None,
) -> AnalysisSample:
    y = check_outcome(outcome, kind, "outcome")
    units = matching.units
    included = ~units["discarded"].to_numpy(bool) & ~np.isnan(y)
    design = None if covariates is None else covariate_design(covariates)
    score = np.clip(matching.propensity.score.astype(float), *SCORE_BOUNDS)
    return AnalysisSample(
        y=np.where(included, y, 0.0),
        treated=units["treated"].to_numpy(bool),
        included=included,
        score=score,
        linear_predictor=np.log(score / (1 - score)),
        propensity_design=_propensity_design(matching, design),
        covariates=None if design is None else design.to_numpy(float),
        covariate_names=[] if design is None else [str(c) for c in design.columns],
    )


def _weight_functions(estimand: str, e: np.ndarray) -> tuple[np.ndarray, ...]:
    """(treated weight, its derivative in the linear predictor, comparison weight, derivative)."""
    odds = e / (1 - e)
    if estimand == "ATT":
        return np.ones_like(e), np.zeros_like(e), odds, odds
    if estimand == "ATC":
        return 1 / odds, -1 / odds, np.ones_like(e), np.zeros_like(e)
    return 1 / e, -(1 - e) / e, 1 / (1 - e), odds


def _counts(sample: AnalysisSample) -> tuple[int, int]:
    n_t = int((sample.included & sample.treated).sum())
    n_c = int((sample.included & ~sample.treated).sum())
    require_both_groups(n_t, n_c)
    return n_t, n_c


def _sandwich_variance(
    sample: AnalysisSample, estimand: str, mu1: float, mu0: float
) -> tuple[float, bool]:
    """Var(mu1 - mu0) from stacked estimating equations; True when the score's estimation counts."""
    e = sample.score
    f1, d1, f0, d0 = _weight_functions(estimand, e)
    t = (sample.included & sample.treated).astype(float)
    c = (sample.included & ~sample.treated).astype(float)
    r1 = t * (sample.y - mu1)
    r0 = c * (sample.y - mu0)
    psi_means = np.column_stack([f1 * r1, f0 * r0])
    jac_means = np.diag([-(t * f1).mean(), -(c * f0).mean()])
    X = sample.propensity_design
    n = len(e)
    if X is None:
        psi, jacobian = psi_means, jac_means
    else:
        p = X.shape[1]
        psi = np.column_stack([X * (sample.treated.astype(float) - e)[:, None], psi_means])
        jacobian = np.zeros((p + 2, p + 2))
        jacobian[:p, :p] = -(X * (e * (1 - e))[:, None]).T @ X / n
        jacobian[p, :p] = (d1 * r1) @ X / n
        jacobian[p + 1, :p] = (d0 * r0) @ X / n
        jacobian[p:, p:] = jac_means
    meat = psi.T @ psi / n
    bread = np.linalg.inv(jacobian)
    vcov = bread @ meat @ bread.T / n
    contrast = np.zeros(psi.shape[1])
    contrast[-2:] = (1.0, -1.0)
    return float(contrast @ vcov @ contrast), X is not None


def _weight_summary(weights: np.ndarray, members: np.ndarray) -> dict[str, float]:
    w = weights[members]
    return {
        "max_normalised_weight": float(w.max() / w.sum()),
        "effective_n": float(w.sum() ** 2 / np.square(w).sum()),
    }


def ipw_estimator(
    outcome: pd.Series,
    matching: MatchingResult,
    spec: EstimatorSpec,
    kind: OutcomeKind,
    covariates: pd.DataFrame | None = None,
) -> EstimateResult:
    """Hajek-normalised inverse probability weighting with an M-estimation sandwich SE."""
    reject_bootstrap(spec, "ipw")
    sample = analysis_sample(outcome, matching, kind, covariates)
    n_t, n_c = _counts(sample)
    estimand = matching.estimand
    f1, _, f0, _ = _weight_functions(estimand, sample.score)
    t = sample.included & sample.treated
    c = sample.included & ~sample.treated
    mu1 = float(np.average(sample.y[t], weights=f1[t]))
    mu0 = float(np.average(sample.y[c], weights=f0[c]))
    variance, estimated = _sandwich_variance(sample, estimand, mu1, mu0)
    weights = np.where(sample.treated, f1, f0)
    included = sample.included
    return normal_result(
        spec=spec,
        kind=kind,
        estimand=estimand,
        method="ipw",
        difference=mu1 - mu0,
        se=float(np.sqrt(max(variance, 0.0))),
        treatment_mean=mu1,
        power_sample=PowerInputs(sample.y[included], sample.treated[included], weights[included]),
        n_treatment=n_t,
        n_comparison=n_c,
        parameters={
            "weights": f"{estimand} inverse probability weights, normalised within each group (Hajek)",
            "standard_error": "M-estimation sandwich",
            "propensity_estimation": (
                "accounted for (stacked logistic score equations)" if estimated
                else "ignored: the score is treated as known"
            ),
            "propensity_model": matching.propensity.model,
            "treated_weights": _weight_summary(f1, t),
            "comparison_weights": _weight_summary(f0, c),
        },
    )


ESTIMATORS.register("ipw", ipw_estimator)


def _glm_family(kind: OutcomeKind) -> sm.families.Family:
    import statsmodels.api as sm  # only the outcome-model estimators need it (0.4 s to import)

    if kind == "binary":
        return sm.families.Binomial()
    if kind == "count":
        return sm.families.Poisson()
    return sm.families.Gaussian()


def outcome_model_predictions(
    X: np.ndarray, y: np.ndarray, fit_rows: np.ndarray, kind: OutcomeKind
) -> tuple[np.ndarray, str]:
    """Predictions for every row from a GLM fitted on `fit_rows` (Gaussian if the GLM fails)."""
    keep = full_rank_columns(X[fit_rows])
    design = np.column_stack([np.ones(len(X)), X[:, keep]])
    import statsmodels.api as sm

    family = _glm_family(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.GLM(y[fit_rows], design[fit_rows], family=family).fit(maxiter=100)
            if fit.converged and np.all(np.isfinite(fit.params)):
                return np.asarray(fit.predict(design)), type(family).__name__
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            pass
        fit = sm.OLS(y[fit_rows], design[fit_rows]).fit()
    return np.asarray(fit.predict(design)), "Gaussian (fallback: the GLM did not converge)"


def _normalised_correction(
    weights: np.ndarray, residual: np.ndarray, members: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted mean of residuals over members and its influence function (per unit, all rows)."""
    w = np.where(members, weights, 0.0)
    mean = float(np.sum(w * residual) / np.sum(w))
    influence = w * (residual - mean) / w.mean()
    return mean, influence


def aipw_estimator(
    outcome: pd.Series,
    matching: MatchingResult,
    spec: EstimatorSpec,
    kind: OutcomeKind,
    covariates: pd.DataFrame | None = None,
) -> EstimateResult:
    """Augmented IPW (doubly robust) with an influence-function standard error."""
    reject_bootstrap(spec, "aipw")
    require_covariates(covariates, "aipw")
    sample = analysis_sample(outcome, matching, kind, covariates)
    n_t, n_c = _counts(sample)
    assert sample.covariates is not None
    inc = sample.included
    X, y, e = sample.covariates[inc], sample.y[inc], sample.score[inc]
    treated = sample.treated[inc]
    m1, family1 = outcome_model_predictions(X, y, treated, kind)
    m0, family0 = outcome_model_predictions(X, y, ~treated, kind)
    estimand = matching.estimand
    n = len(y)
    if estimand == "ATT":
        observed = float(y[treated].mean())
        a, influence_a = _normalised_correction(np.ones(n), y - m0, treated)
        b, influence_b = _normalised_correction(e / (1 - e), y - m0, ~treated)
        difference, influence = a - b, influence_a - influence_b
        treatment_mean = observed
    elif estimand == "ATC":
        observed = float(y[~treated].mean())
        a, influence_a = _normalised_correction(np.ones(n), m1 - y, ~treated)
        b, influence_b = _normalised_correction((1 - e) / e, y - m1, treated)
        difference, influence = a + b, influence_a + influence_b
        treatment_mean = observed + difference
    else:
        t = treated.astype(float)
        phi1 = m1 + t * (y - m1) / e
        phi0 = m0 + (1 - t) * (y - m0) / (1 - e)
        difference = float(phi1.mean() - phi0.mean())
        influence = phi1 - phi0 - difference
        treatment_mean = float(phi1.mean())
    se = float(np.sqrt(np.sum(influence**2)) / n)
    f1, _, f0, _ = _weight_functions(estimand, e)
    parameters: dict[str, Any] = {
        "standard_error": "influence function (nuisance models held fixed)",
        "outcome_model": {"treated": family1, "comparison": family0},
        "propensity_model": matching.propensity.model,
        "covariates": sample.covariate_names,
    }
    return normal_result(
        spec=spec,
        kind=kind,
        estimand=estimand,
        method="aipw",
        difference=difference,
        se=se,
        treatment_mean=treatment_mean,
        power_sample=PowerInputs(y, treated, np.where(treated, f1, f0)),
        n_treatment=n_t,
        n_comparison=n_c,
        parameters=parameters,
    )


ESTIMATORS.register("aipw", aipw_estimator)
