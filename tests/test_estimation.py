"""Weighted difference, its variance (vs statsmodels), planted effects, bootstrap and power."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from jdl.errors import JdlUserError
from jdl.estimation import estimate, naive_difference, people_needed, weighted_difference
from jdl.estimation.power import min_detectable_effect
from jdl.estimation.variance import weighted_regression
from jdl.matching import match
from jdl.spec.models import EstimatorSpec, MatchingSpec

TRUE_ATT = -0.06


def planted(seed: int, n: int = 40_000) -> pd.DataFrame:
    """Confounded selection on x and z; the treated reoffend 6 points less than they would have."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.integers(0, 2, n)
    treated = rng.random(n) < 1 / (1 + np.exp(-(-2.5 + 1.0 * x + 0.5 * z)))
    base = 0.1 + 0.6 / (1 + np.exp(-(-0.5 + 1.0 * x + 0.5 * z)))
    reoffended = rng.random(n) < np.where(treated, base + TRUE_ATT, base)
    return pd.DataFrame({"treat": treated, "x": x, "z": z, "y": reoffended.astype(float)})


@pytest.fixture(scope="module")
def matched() -> tuple[pd.DataFrame, object]:
    frame = planted(2013)
    result = match(frame, treatment="treat", covariates=["x", "z"], spec=MatchingSpec(caliper={"width": 0.2}))
    return frame, result


def test_planted_effect_is_recovered_and_naive_is_biased(matched) -> None:
    frame, result = matched
    estimate_ = estimate(frame["y"], result, EstimatorSpec(), kind="binary")
    assert estimate_.difference == pytest.approx(TRUE_ATT, abs=0.02)
    assert estimate_.ci_low <= TRUE_ATT <= estimate_.ci_high
    assert estimate_.significant and estimate_.p_value < 0.05
    assert estimate_.people_needed is None
    assert estimate_.estimand == "ATT" and estimate_.parameters["variance"] == "pair_cluster_robust"
    assert estimate_.n_treatment == result.n_treated_matched
    naive = naive_difference(frame["y"], frame["treat"], EstimatorSpec(), kind="binary")
    assert naive.difference > TRUE_ATT + 0.1  # selection on x makes the raw gap the wrong sign


def test_pair_cluster_se_matches_statsmodels_cluster_and_hc1(matched) -> None:
    frame, result = matched
    units = result.units
    keep = units["weight"] > 0
    y, t, w = frame["y"][keep], units["treated"][keep].astype(float), units["weight"][keep]
    groups = units["subclass"][keep].to_numpy(dtype=np.int64)
    X = sm.add_constant(t.to_numpy())
    clustered = sm.WLS(y.to_numpy(), X, weights=w.to_numpy()).fit(
        cov_type="cluster", cov_kwds={"groups": groups}
    )
    ours = estimate(frame["y"], result, EstimatorSpec(), kind="binary")
    assert ours.difference == pytest.approx(clustered.params[1], abs=1e-12)
    assert ours.se == pytest.approx(clustered.bse[1], rel=1e-10)
    hc1 = sm.WLS(y.to_numpy(), X, weights=w.to_numpy()).fit(cov_type="HC1")
    robust = estimate(frame["y"], result, EstimatorSpec(variance="robust"), kind="binary")
    assert robust.se == pytest.approx(hc1.bse[1], rel=1e-10)
    df = len(y) - 2
    half_width = stats.t.ppf(0.975, df) * ours.se
    assert ours.ci_high - ours.difference == pytest.approx(half_width)


def test_hc3_equals_statsmodels_weighted_hc3_with_covariates() -> None:
    rng = np.random.default_rng(11)
    n = 250
    X = sm.add_constant(np.column_stack([rng.random(n) < 0.3, rng.normal(size=(n, 2))]).astype(float))
    y = X @ np.array([1.0, -0.5, 0.3, 2.0]) + rng.normal(size=n) * (1 + X[:, 2] ** 2)
    weights = rng.choice([1.0, 0.25, 2.0], n)
    expected = sm.WLS(y, X, weights=weights).fit(cov_type="HC3")
    ours = weighted_regression(y, X, weights, robust_type="HC3")
    np.testing.assert_allclose(ours.beta, expected.params, rtol=1e-10)
    np.testing.assert_allclose(ours.vcov, expected.cov_params(), rtol=1e-9)
    hc1 = weighted_regression(y, X, weights)
    assert not np.allclose(hc1.vcov, ours.vcov)  # HC3 inflates high-leverage residuals


def test_stratified_matchers_use_hc3_and_pairs_are_clustered(matched) -> None:
    frame, _ = matched
    for method, expected in (("subclass", "HC3"), ("coarsened_exact", "HC3"), ("nearest_neighbour", "clustered")):
        result = match(frame, treatment="treat", covariates=["x", "z"], spec=MatchingSpec(method=method))
        fit = estimate(frame["y"], result, EstimatorSpec(), kind="binary")
        assert expected in fit.parameters["standard_error"], (method, fit.parameters["standard_error"])


def test_two_way_clustering_is_sum_of_one_way_minus_intersection() -> None:
    rng = np.random.default_rng(4)
    n = 300
    y = rng.normal(size=n)
    treated = rng.random(n) < 0.4
    weights = rng.choice([1.0, 0.5, 1 / 3], n)
    a = rng.integers(0, 40, n)
    b = rng.integers(0, 70, n)
    X = sm.add_constant(treated.astype(float))

    def one_way(groups: np.ndarray) -> float:
        fit = sm.WLS(y, X, weights=weights).fit(cov_type="cluster", cov_kwds={"groups": groups})
        return float(fit.cov_params()[1, 1])

    both = pd.factorize(pd.MultiIndex.from_arrays([a, b]))[0]
    expected = math.sqrt(one_way(a) + one_way(b) - one_way(both))
    assert weighted_difference(y, treated, weights, [a, b]).se == pytest.approx(expected, rel=1e-10)


def test_with_replacement_uses_pairs_and_gives_the_units_estimate() -> None:
    frame = planted(7, n=8000)
    spec = MatchingSpec(ratio=3, replace=True)
    result = match(frame, treatment="treat", covariates=["x", "z"], spec=spec)
    est = estimate(frame["y"], result, EstimatorSpec(), kind="binary")
    units = result.units
    w, t, y = units["weight"], units["treated"], frame["y"]
    by_units = y[t].mean() - np.average(y[~t], weights=w[~t])
    assert est.difference == pytest.approx(by_units, abs=1e-12)
    assert "two-way" in est.parameters["standard_error"]
    assert est.parameters["clusters"][0] == result.n_treated_matched


def test_missing_outcomes_are_left_out_keeping_weights(matched) -> None:
    frame, result = matched
    days = frame["y"].where(frame["y"] == 1)  # defined for reoffenders only
    est = estimate(days, result, EstimatorSpec(), kind="continuous")
    units = result.units
    reoffender = (frame["y"] == 1) & (units["weight"] > 0)
    assert est.n_treatment == int((reoffender & units["treated"]).sum())
    assert est.n_comparison == int((reoffender & ~units["treated"]).sum())
    assert est.difference == pytest.approx(0.0, abs=1e-12)
    assert est.people_needed is None  # no difference to detect


def test_binary_outcome_must_be_zero_or_one(matched) -> None:
    frame, result = matched
    with pytest.raises(JdlUserError, match="not 0 or 1"):
        estimate(frame["y"] * 2, result, EstimatorSpec(), kind="binary")


def test_bootstrap_same_seed_same_result_different_seed_different(matched) -> None:
    frame, result = matched

    def run(seed: int):
        spec = EstimatorSpec(variance={"method": "bootstrap", "reps": 200, "seed": seed})
        return estimate(frame["y"], result, spec, kind="binary")

    first, again, other = run(1), run(1), run(2)
    assert (first.se, first.ci_low, first.ci_high) == (again.se, again.ci_low, again.ci_high)
    assert (first.se, first.ci_low) != (other.se, other.ci_low)
    analytic = estimate(frame["y"], result, EstimatorSpec(), kind="binary")
    assert first.difference == analytic.difference
    assert first.se == pytest.approx(analytic.se, rel=0.25)
    assert first.ci_low < TRUE_ATT < first.ci_high
    assert first.parameters["reps"] == 200 and first.parameters["interval"] == "percentile"


def test_people_needed_binary_matches_statsmodels_and_hand_formula() -> None:
    needed = people_needed(
        binary=True, treatment_mean=0.40, comparison_mean=0.45, sd=float("nan"), alpha=0.05
    )
    h = proportion_effectsize(0.40, 0.45)
    reference = NormalIndPower().solve_power(abs(h), alpha=0.05, power=0.8, ratio=1.0)
    assert needed == math.ceil(reference)
    z_alpha, z_power = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    hand = 2 * ((z_alpha + z_power) / abs(h)) ** 2
    assert abs(needed - hand) <= 1
    # the classic two-proportion formula gives about the same (1,533 per group)
    p1, p2 = 0.40, 0.45
    bar = (p1 + p2) / 2
    classic = (
        z_alpha * math.sqrt(2 * bar * (1 - bar)) + z_power * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    ) ** 2 / (p1 - p2) ** 2
    assert abs(needed - classic) <= 3


def test_people_needed_continuous_uses_pooled_sd_t_test() -> None:
    needed = people_needed(binary=False, treatment_mean=1.0, comparison_mean=1.5, sd=2.0, alpha=0.05)
    reference = TTestIndPower().solve_power(0.25, alpha=0.05, power=0.8, ratio=1.0)
    assert needed == math.ceil(reference) == 253


def test_not_significant_result_reports_people_needed_and_mde() -> None:
    rng = np.random.default_rng(9)
    n = 400
    frame = pd.DataFrame({"treat": rng.random(n) < 0.3, "x": rng.normal(size=n)})
    frame["y"] = (rng.random(n) < 0.45).astype(float)
    result = match(frame, treatment="treat", covariates=["x"], spec=MatchingSpec())
    est = estimate(frame["y"], result, EstimatorSpec(), kind="binary")
    assert not est.significant
    assert est.people_needed is not None and est.people_needed > est.n_treatment
    assert est.min_detectable_effect is not None and est.min_detectable_effect > abs(est.difference)
    # MDE converts the detectable Cohen's h back to a change from the comparison rate
    n_t, n_c = est.n_treatment, est.effective_n_comparison
    h = NormalIndPower().solve_power(None, nobs1=n_t, alpha=0.05, power=0.8, ratio=n_c / n_t)
    phi = math.asin(math.sqrt(est.comparison_mean))
    options = [abs(math.sin(phi + s * h / 2) ** 2 - est.comparison_mean) for s in (1, -1)]
    assert est.min_detectable_effect == pytest.approx(min(options))


def test_min_detectable_effect_continuous() -> None:
    mde = min_detectable_effect(
        binary=False, comparison_mean=0.0, sd=3.0, n_treatment=100, n_comparison=200, alpha=0.05
    )
    d = TTestIndPower().solve_power(None, nobs1=100, alpha=0.05, power=0.8, ratio=2.0)
    assert mde == pytest.approx(3.0 * d)


def test_unknown_estimator_lists_choices(matched) -> None:
    frame, result = matched
    with pytest.raises(JdlUserError, match="weighted_difference"):
        estimate(frame["y"], result, EstimatorSpec(method="propensity_magic"), kind="binary")


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_coverage_sanity_over_seeds(seed: int) -> None:
    frame = planted(100 + seed, n=20_000)
    result = match(frame, treatment="treat", covariates=["x", "z"], spec=MatchingSpec(caliper={"width": 0.2}))
    est = estimate(frame["y"], result, EstimatorSpec(), kind="binary")
    assert abs(est.difference - TRUE_ATT) < 4 * est.se


@pytest.mark.parametrize("missing", [False, True])
def test_naive_difference_without_power_is_the_same_estimate(missing: bool) -> None:
    frame = planted(7, n=5_000)
    y = frame["y"].copy()
    if missing:
        y.iloc[::7] = np.nan
    full = naive_difference(y, frame["treat"], EstimatorSpec(), kind="binary")
    lean = naive_difference(y, frame["treat"], EstimatorSpec(), kind="binary", power=False)
    assert lean.people_needed is None and lean.min_detectable_effect is None
    assert full.min_detectable_effect is not None
    for name in ("treatment_mean", "comparison_mean", "difference", "se", "ci_low", "ci_high", "p_value",
                 "significant", "n_treatment", "n_comparison", "parameters"):
        assert getattr(lean, name) == getattr(full, name), name
    kept = y.notna().to_numpy()
    treated = frame["treat"].to_numpy()
    assert full.n_treatment == int((kept & treated).sum())
    assert full.n_comparison == int((kept & ~treated).sum())
    # the plain formulation: WLS of the present outcomes on [1, treated] with HC1
    fit = sm.OLS(y[kept].to_numpy(), sm.add_constant(treated[kept].astype(float))).fit(cov_type="HC1")
    assert full.difference == pytest.approx(fit.params[1], abs=1e-12)
    assert full.se == pytest.approx(fit.bse[1], rel=1e-10)
