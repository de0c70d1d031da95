"""regression_adjustment, ipw, aipw and the causalml meta-learners on data with a planted effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit

from jdl.errors import JdlUserError
from jdl.estimation import ESTIMATORS, estimate
from jdl.matching import match
from jdl.spec.models import EstimatorSpec, MatchingSpec

EFFECT = 0.5
COVARIATES = ["x", "z", "group"]


def continuous(seed: int, n: int = 6000) -> pd.DataFrame:
    """Selection on x, z and a category; y linear in them; a constant effect of EFFECT."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.integers(0, 2, n)
    group = rng.choice(np.array(["a", "b", "c"]), n)
    treated = rng.random(n) < expit(-1.8 + 0.8 * x + 0.5 * z + 0.4 * (group == "b"))
    y = 1.0 + 1.0 * x + 0.7 * z + 0.5 * (group == "c") + EFFECT * treated + rng.normal(size=n)
    return pd.DataFrame({"treat": treated, "x": x, "z": z, "group": group, "y": y})


@pytest.fixture(scope="module")
def matched() -> tuple[pd.DataFrame, object]:
    frame = continuous(11)
    spec = MatchingSpec(ratio=3, replace=True, caliper={"width": 0.2})
    return frame, match(frame, treatment="treat", covariates=COVARIATES, spec=spec)


def run(frame: pd.DataFrame, result: object, method: str, **spec: object):
    return estimate(
        frame["y"], result, EstimatorSpec(method=method, **spec), kind="continuous",
        covariates=frame[COVARIATES],
    )


def test_registry_has_every_estimator_and_rejects_duplicates() -> None:
    assert ESTIMATORS.names() == sorted(
        ["aipw", "dr_learner", "ipw", "regression_adjustment", "s_learner", "t_learner",
         "weighted_difference", "x_learner"]
    )
    with pytest.raises(ValueError, match="already registered"):
        ESTIMATORS.register("ipw", ESTIMATORS["ipw"])


@pytest.mark.parametrize("method", ["weighted_difference", "regression_adjustment", "ipw", "aipw"])
def test_planted_effect_recovered(matched, method: str) -> None:
    frame, result = matched
    est = run(frame, result, method)
    assert est.difference == pytest.approx(EFFECT, abs=0.12)
    assert est.ci_low < EFFECT < est.ci_high
    assert est.method == method and est.estimand == "ATT"
    assert est.treatment_mean - est.comparison_mean == pytest.approx(est.difference)
    assert 0.02 < est.se < 0.1


def test_regression_adjustment_is_the_wls_coefficient_with_cluster_se() -> None:
    frame = continuous(5, n=3000)
    result = match(frame, treatment="treat", covariates=COVARIATES, spec=MatchingSpec(ratio=2))
    est = run(frame, result, "regression_adjustment")
    units = result.units
    keep = units["weight"].to_numpy() > 0
    X = pd.get_dummies(frame[COVARIATES], columns=["group"], drop_first=True, dtype=float)
    X.insert(0, "treat", units["treated"].astype(float))
    fit = sm.WLS(frame["y"][keep], sm.add_constant(X[keep]), weights=units["weight"][keep]).fit(
        cov_type="cluster", cov_kwds={"groups": units["subclass"][keep].to_numpy(dtype=np.int64)}
    )
    assert est.difference == pytest.approx(fit.params["treat"], abs=1e-10)
    assert est.se == pytest.approx(fit.bse["treat"], rel=1e-8)
    assert est.parameters["adjusted_for"] == ["x", "z", "groupb", "groupc"]


def test_regression_adjustment_drops_covariates_constant_in_the_matched_sample(matched) -> None:
    frame, result = matched
    covariates = frame[COVARIATES].assign(constant_after=np.where(result.units["weight"] > 0, 1.0, 0.0))
    est = estimate(frame["y"], result, EstimatorSpec(method="regression_adjustment"),
                   kind="continuous", covariates=covariates)
    assert est.parameters["dropped_constant_or_collinear"] == ["constant_after"]


def test_estimators_needing_covariates_say_so(matched) -> None:
    frame, result = matched
    for method in ("regression_adjustment", "aipw", "s_learner"):
        with pytest.raises(JdlUserError, match="needs the covariates"):
            estimate(frame["y"], result, EstimatorSpec(method=method), kind="continuous")


def test_ipw_weights_and_sandwich_se_match_a_refitting_bootstrap() -> None:
    frame = continuous(3, n=3000)
    result = match(frame, treatment="treat", covariates=COVARIATES, spec=MatchingSpec(ratio=1))
    est = run(frame, result, "ipw")
    e = result.propensity.score
    t = frame["treat"].to_numpy()
    y = frame["y"].to_numpy()
    odds = e / (1 - e)
    hand = y[t].mean() - np.sum(odds[~t] * y[~t]) / np.sum(odds[~t])
    assert est.difference == pytest.approx(hand, abs=1e-12)
    assert est.parameters["propensity_estimation"].startswith("accounted for")
    # the M-estimation SE accounts for the fitted score: compare with a bootstrap that refits it
    design = sm.add_constant(pd.get_dummies(frame[COVARIATES], columns=["group"], drop_first=True,
                                            dtype=float).to_numpy())
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(150):
        rows = rng.integers(0, len(y), len(y))
        score = sm.GLM(t[rows], design[rows], family=sm.families.Binomial()).fit().predict(design[rows])
        tb, yb, ob = t[rows], y[rows], score / (1 - score)
        draws.append(yb[tb].mean() - np.sum(ob[~tb] * yb[~tb]) / np.sum(ob[~tb]))
    assert est.se == pytest.approx(np.std(draws, ddof=1), rel=0.2)
    known = estimate(frame["y"], result, EstimatorSpec(method="ipw"), kind="continuous")
    assert known.difference == est.difference
    assert known.parameters["propensity_estimation"].startswith("ignored")


def test_aipw_is_doubly_robust_with_a_wrong_propensity_score() -> None:
    frame = continuous(8, n=6000)
    wrong = np.full(len(frame), frame["treat"].mean())
    result = match(frame, treatment="treat", covariates=COVARIATES, spec=MatchingSpec(ratio=1),
                   score=wrong + np.linspace(-1e-3, 1e-3, len(frame)))
    aipw = run(frame, result, "aipw")
    ipw = run(frame, result, "ipw")
    assert aipw.difference == pytest.approx(EFFECT, abs=0.1)  # outcome model is right
    assert abs(ipw.difference - EFFECT) > 0.5  # weighting alone is not


def test_aipw_ate_and_influence_function_se_on_subclasses() -> None:
    frame = continuous(9, n=6000)
    result = match(frame, treatment="treat", covariates=COVARIATES,
                   spec=MatchingSpec(method="subclass", estimand="ATE"))
    est = run(frame, result, "aipw")
    assert est.estimand == "ATE"
    assert est.difference == pytest.approx(EFFECT, abs=0.12)
    # with a correct linear outcome model the IF variance is about that of OLS with the treatment
    ols = sm.OLS(frame["y"], sm.add_constant(pd.get_dummies(
        frame[["treat", *COVARIATES]], columns=["group"], drop_first=True, dtype=float))).fit()
    assert est.se == pytest.approx(ols.bse["treat"], rel=0.5)


def test_bootstrap_is_refused_for_estimators_without_one(matched) -> None:
    frame, result = matched
    with pytest.raises(JdlUserError, match="not available for the ipw"):
        run(frame, result, "ipw", variance="bootstrap")


@pytest.mark.parametrize("method", ["s_learner", "t_learner", "x_learner", "dr_learner"])
def test_meta_learners_recover_the_att_with_a_linear_learner(matched, method: str) -> None:
    frame, result = matched
    est = run(frame, result, method, learner={"model": "linear"})
    assert est.difference == pytest.approx(EFFECT, abs=0.12)
    assert est.ci_low < EFFECT < est.ci_high
    assert est.parameters["causalml"].startswith("causalml.inference.meta.Base")
    assert 0.02 < est.se < 0.12


def test_meta_learner_ate_interval_is_causalmls() -> None:
    from causalml.inference.meta import BaseTRegressor
    from sklearn.linear_model import LinearRegression

    frame = continuous(12, n=3000)
    result = match(frame, treatment="treat", covariates=COVARIATES,
                   spec=MatchingSpec(method="subclass", estimand="ATE"))
    est = run(frame, result, "t_learner", learner={"model": "linear"}, confidence=0.9)
    X = pd.get_dummies(frame[COVARIATES], columns=["group"], drop_first=True, dtype=float).to_numpy()
    ate, low, high = BaseTRegressor(learner=LinearRegression(), ate_alpha=0.1).estimate_ate(
        X, treatment=frame["treat"].astype(int).to_numpy(), y=frame["y"].to_numpy()
    )
    assert est.difference == pytest.approx(float(ate[0]))
    assert est.se == pytest.approx(float(high[0] - low[0]) / (2 * stats.norm.ppf(0.95)))
    assert (est.ci_low, est.ci_high) == pytest.approx((float(low[0]), float(high[0])))


def test_meta_learner_seed_both_ways() -> None:
    frame = continuous(13, n=1200)
    result = match(frame, treatment="treat", covariates=COVARIATES, spec=MatchingSpec(ratio=1))

    def fit(seed: int) -> float:
        return run(frame, result, "dr_learner", learner={"model": "gradient_boosting", "seed": seed}).difference

    first = fit(1)
    assert first == fit(1)
    assert first != fit(2)
