"""causalml meta-learners (S, T, X and DR learners) as estimators.

Each learner is trained on the analysis sample (every unit inside common
support with an outcome, as for ipw/aipw) with the covariates' design matrix
and the scikit-learn model named by estimator.learner.model, seeded by
estimator.learner.seed. The X and DR learners are given the matching's
propensity score rather than fitting their own (the DR learner's clipped to
DR_SCORE_BOUNDS, see below).

Estimand and uncertainty:
- ATE: causalml's estimate_ate(), which returns (ate, lower, upper) at
  ate_alpha = 1 - confidence; SE = (upper - lower) / (2 z) with z the normal
  quantile, so the interval is exactly causalml's.
- ATT (the JDL estimand) and ATC: the average of the learner's conditional
  effects over the treated (comparison) units. causalml has no ATT interval, so
  the SE is the empirical variance of the efficient influence function for
  the ATT (Hahn 1998) evaluated at the learner's own outcome model and the
  propensity score:
      ψ = [T (Y - μ0(X) - τ) - (1 - T) e/(1-e) (Y - μ0(X))] / P(T = 1),
  mirrored for the ATC. This is the analogue of causalml's own ATE formula; it
  ignores the learner's regularisation bias and the variance of the effect
  model itself. In the coverage study (JDL design, gradient boosting) the S, T
  and X learners covered 94-96%, but the DR learner's SE was about half its
  empirical SD (67% coverage) even with clipped scores: its effect model is fitted
  to high-variance pseudo-outcomes. Do not use dr_learner intervals for a
  headline; prefer aipw for a doubly robust estimate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from jdl.estimation.estimators import (
    ESTIMATORS,
    OutcomeKind,
    PowerInputs,
    normal_result,
    reject_bootstrap,
    require_both_groups,
    require_covariates,
    significance_level,
)
from jdl.estimation.result import EstimateResult
from jdl.estimation.weighting import analysis_sample
from jdl.matching import MatchingResult
from jdl.spec.models import EstimatorSpec, LearnerSpec

CONTROL = 0
TREATED = 1
# The DR-learner divides by e and 1 - e in its pseudo-outcome; with the weak overlap of a JDL
# comparison pool (treated people with scores below 0.01) single pseudo-outcomes reach hundreds
# and the ATT swings by several times its SE (coverage study). Its score is clipped to these
# bounds, a common stabilisation of doubly robust pseudo-outcomes; the bounds are recorded.
DR_SCORE_BOUNDS = (0.05, 0.95)


def _causalml_meta() -> Any:
    """causalml.inference.meta, imported on first use (it takes seconds and pulls in shap)."""
    with warnings.catch_warnings():
        # shap, imported by causalml, calls matplotlib APIs that are pending deprecation
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import causalml.inference.meta as meta
    return meta


def make_learner(spec: LearnerSpec) -> Any:
    """The scikit-learn regressor the spec names, seeded."""
    if spec.model == "gradient_boosting":
        from sklearn.ensemble import GradientBoostingRegressor

        return GradientBoostingRegressor(
            n_estimators=100, max_depth=3, learning_rate=0.1, subsample=0.8, random_state=spec.seed
        )
    if spec.model == "random_forest":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=200, min_samples_leaf=20, random_state=spec.seed, n_jobs=1
        )
    from sklearn.linear_model import LinearRegression

    return LinearRegression()


@dataclass(frozen=True)
class FittedLearner:
    effects: np.ndarray  # conditional effect per unit
    mu0: np.ndarray  # predicted outcome without treatment
    mu1: np.ndarray  # predicted outcome with treatment


def _components(model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    te, yhat_c, yhat_t = model.predict(X, return_components=True, verbose=False)
    return te[:, 0], np.asarray(yhat_c[TREATED]), np.asarray(yhat_t[TREATED])


def _fit_s(learner: Any, X: np.ndarray, t: np.ndarray, y: np.ndarray, p: np.ndarray,
           seed: int) -> tuple[Any, FittedLearner]:
    model = _causalml_meta().BaseSRegressor(learner=learner, control_name=CONTROL)
    model.fit(X, treatment=t, y=y)
    return model, FittedLearner(*_components(model, X))


def _fit_t(learner: Any, X: np.ndarray, t: np.ndarray, y: np.ndarray, p: np.ndarray,
           seed: int) -> tuple[Any, FittedLearner]:
    model = _causalml_meta().BaseTRegressor(learner=learner, control_name=CONTROL)
    model.fit(X, treatment=t, y=y)
    return model, FittedLearner(*_components(model, X))


def _fit_x(learner: Any, X: np.ndarray, t: np.ndarray, y: np.ndarray, p: np.ndarray,
           seed: int) -> tuple[Any, FittedLearner]:
    model = _causalml_meta().BaseXRegressor(learner=learner, control_name=CONTROL)
    model.fit(X, treatment=t, y=y, p=p)
    effects = model.predict(X, p=p, verbose=False)[:, 0]
    mu0 = model.models_mu_c[TREATED].predict(X)
    mu1 = model.models_mu_t[TREATED].predict(X)
    return model, FittedLearner(effects, mu0, mu1)


def _fit_dr(learner: Any, X: np.ndarray, t: np.ndarray, y: np.ndarray, p: np.ndarray,
            seed: int) -> tuple[Any, FittedLearner]:
    model = _causalml_meta().BaseDRRegressor(learner=learner, control_name=CONTROL)
    model.fit(X, treatment=t, y=y, p=np.clip(p, *DR_SCORE_BOUNDS), seed=seed)
    return model, FittedLearner(*_components(model, X))


Fitter = Callable[[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int], tuple[Any, FittedLearner]]

LEARNERS: dict[str, tuple[str, Fitter]] = {
    "s_learner": ("BaseSRegressor", _fit_s),
    "t_learner": ("BaseTRegressor", _fit_t),
    "x_learner": ("BaseXRegressor", _fit_x),
    "dr_learner": ("BaseDRRegressor", _fit_dr),
}


def _causalml_ate(
    name: str, learner: Any, X: np.ndarray, t: np.ndarray, y: np.ndarray, p: np.ndarray,
    seed: int, alpha: float,
) -> tuple[float, float, float]:
    causalml_class = getattr(_causalml_meta(), LEARNERS[name][0])
    model = causalml_class(learner=learner, ate_alpha=alpha, control_name=CONTROL)
    if name == "dr_learner":
        ate, low, high = model.estimate_ate(
            X, treatment=t, y=y, p=np.clip(p, *DR_SCORE_BOUNDS), seed=seed
        )
    elif name == "x_learner":
        ate, low, high = model.estimate_ate(X, treatment=t, y=y, p=p)
    else:
        ate, low, high = model.estimate_ate(X, treatment=t, y=y)
    return float(np.ravel(ate)[0]), float(np.ravel(low)[0]), float(np.ravel(high)[0])


def _treated_effect(
    fitted: FittedLearner, y: np.ndarray, treated: np.ndarray, e: np.ndarray, estimand: str
) -> tuple[float, float]:
    """(ATT or ATC, its influence-function SE) from the learner's effects and outcome model."""
    if estimand == "ATC":
        # the ATC is minus the ATT with the roles of the groups swapped
        effect, se = _treated_effect(
            FittedLearner(-fitted.effects, fitted.mu1, fitted.mu0), y, ~treated, 1 - e, "ATT"
        )
        return -effect, se
    n = len(y)
    share = treated.mean()
    effect = float(fitted.effects[treated].mean())
    t = treated.astype(float)
    residual = y - fitted.mu0
    influence = (t * (residual - effect) - (1 - t) * e / (1 - e) * residual) / share
    return effect, float(np.sqrt(np.sum(influence**2)) / n)


def _meta_learner(name: str) -> Any:
    causalml_class, fit = LEARNERS[name]

    def estimator(
        outcome: pd.Series,
        matching: MatchingResult,
        spec: EstimatorSpec,
        kind: OutcomeKind,
        covariates: pd.DataFrame | None = None,
    ) -> EstimateResult:
        from scipy import stats

        reject_bootstrap(spec, name)
        require_covariates(covariates, name)
        sample = analysis_sample(outcome, matching, kind, covariates)
        assert sample.covariates is not None
        inc = sample.included
        X, y, e = sample.covariates[inc], sample.y[inc], sample.score[inc]
        treated = sample.treated[inc]
        n_t, n_c = int(treated.sum()), int((~treated).sum())
        require_both_groups(n_t, n_c)
        t = treated.astype(np.int64)
        estimand = matching.estimand
        alpha = significance_level(spec)
        learner = make_learner(spec.learner)
        parameters: dict[str, Any] = {
            "causalml": f"causalml.inference.meta.{causalml_class}",
            "learner": spec.learner.model,
            "learner_seed": spec.learner.seed,
            "propensity": "the matching's score" if name in ("x_learner", "dr_learner") else "not used",
            "covariates": sample.covariate_names,
            "trained_on": "all units inside common support with an outcome",
        }
        if name == "dr_learner":
            parameters["score_bounds"] = list(DR_SCORE_BOUNDS)
        if estimand == "ATE":
            ate, low, high = _causalml_ate(name, learner, X, t, y, e, spec.learner.seed, alpha)
            z = float(stats.norm.ppf(1 - alpha / 2))
            difference, se = ate, (high - low) / (2 * z)
            # an imputation estimate of the mean under treatment, consistent with the ATE
            treatment_mean = float(np.mean(np.where(treated, y, y + ate)))
            parameters["standard_error"] = "causalml estimate_ate interval: (upper - lower) / (2 z)"
        else:
            _, fitted = fit(learner, X, t, y, e, spec.learner.seed)
            difference, se = _treated_effect(fitted, y, treated, e, estimand)
            focal = treated if estimand == "ATT" else ~treated
            observed = float(y[focal].mean())
            treatment_mean = observed if estimand == "ATT" else observed + difference
            parameters["standard_error"] = (
                f"efficient influence function of the {estimand} at the learner's outcome model"
            )
        odds = e / (1 - e)
        weights = np.where(treated, 1.0, odds) if estimand == "ATT" else (
            np.where(treated, 1 / odds, 1.0) if estimand == "ATC"
            else np.where(treated, 1 / e, 1 / (1 - e))
        )
        return normal_result(
            spec=spec,
            kind=kind,
            estimand=estimand,
            method=name,
            difference=difference,
            se=se,
            treatment_mean=treatment_mean,
            power_sample=PowerInputs(y, treated, weights),
            n_treatment=n_t,
            n_comparison=n_c,
            parameters=parameters,
        )

    estimator.__name__ = f"{name}_estimator"
    estimator.__doc__ = f"causalml {causalml_class} with a scikit-learn learner (see module docstring)."
    return estimator


for _name in LEARNERS:
    ESTIMATORS.register(_name, _meta_learner(_name))
