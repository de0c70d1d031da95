"""Bootstrap intervals, multiplicity, Rosenbaum bounds, E-values, placebo and disclosure control."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from jdl.estimation import estimate
from jdl.estimation.disclosure import apply_disclosure
from jdl.estimation.multiplicity import adjust_p_values
from jdl.estimation.sensitivity import (
    e_value,
    placebo_estimate,
    poisson_binomial_upper_tail,
    rosenbaum_bounds,
)
from jdl.estimation.variance import bootstrap_interval
from jdl.matching import match
from jdl.spec.models import EstimatorSpec, MatchingSpec


def _binary(seed: int, n: int = 6000, effect: float = -0.08) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    treated = rng.random(n) < 1 / (1 + np.exp(-(-2.0 + x)))
    risk = 0.15 + 0.5 / (1 + np.exp(-x)) + effect * treated
    before = 0.1 + 0.4 / (1 + np.exp(-x))  # a pre-index outcome: depends on x, not on treatment
    return pd.DataFrame({
        "treat": treated, "x": x,
        "y": (rng.random(n) < risk).astype(float),
        "before": (rng.random(n) < before).astype(float),
    })


@pytest.fixture(scope="module")
def replaced():
    frame = _binary(1)
    return frame, match(frame, treatment="treat", covariates=["x"],
                        spec=MatchingSpec(ratio=5, replace=True, caliper={"width": 0.2}))


# ---------------------------------------------------------------- bootstrap


def test_bca_reduces_to_percentile_without_bias_or_skew() -> None:
    draws = stats.norm.ppf((np.arange(1, 2000) - 0.5) / 1999)  # symmetric about 0
    jackknife = np.array([-1.0, 1.0, -2.0, 2.0])  # no skew: acceleration 0
    bca = bootstrap_interval(draws + 3, 3.0, alpha=0.05, interval="bca", jackknife=jackknife)
    pct = bootstrap_interval(draws + 3, 3.0, alpha=0.05)
    assert bca.bias_correction == pytest.approx(0.0, abs=1e-3) and bca.acceleration == 0.0
    assert (bca.ci_low, bca.ci_high) == pytest.approx((pct.ci_low, pct.ci_high), abs=0.01)
    assert bca.p_value == pytest.approx(pct.p_value, abs=0.002)


def test_bca_acceleration_and_bias_correction_by_hand() -> None:
    rng = np.random.default_rng(0)
    draws = rng.normal(size=4000)
    jackknife = np.array([0.0, 0.1, 0.5, 1.4])
    result = bootstrap_interval(draws, 0.2, alpha=0.1, interval="bca", jackknife=jackknife)
    d = jackknife.mean() - jackknife
    a = np.sum(d**3) / (6 * np.sum(d**2) ** 1.5)
    z0 = stats.norm.ppf(np.mean(draws < 0.2))
    assert result.acceleration == pytest.approx(a)
    assert result.bias_correction == pytest.approx(z0)
    z = stats.norm.ppf(0.05)
    level = stats.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
    assert result.ci_low == pytest.approx(np.quantile(draws, level))


def test_bca_bootstrap_seeds_both_ways_and_pigeonhole_with_replacement(replaced) -> None:
    frame, result = replaced

    def run(seed: int, interval: str = "bca"):
        spec = EstimatorSpec(variance={"method": "bootstrap", "reps": 300, "seed": seed,
                                       "interval": interval})
        return estimate(frame["y"], result, spec, kind="binary")

    first, again, other = run(1), run(1), run(2)
    assert (first.ci_low, first.ci_high, first.p_value) == (again.ci_low, again.ci_high, again.p_value)
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)
    assert first.parameters["interval"] == "bca" and "pigeonhole" in first.parameters["resampled"]
    assert "acceleration" in first.parameters
    sandwich = estimate(frame["y"], result, EstimatorSpec(), kind="binary")
    # the pigeonhole bootstrap is slightly conservative relative to the two-way sandwich
    assert sandwich.se * 0.9 < first.se < sandwich.se * 1.35


def test_regression_adjustment_bootstrap_runs_with_bca(replaced) -> None:
    frame, result = replaced
    spec = EstimatorSpec(method="regression_adjustment",
                         variance={"method": "bootstrap", "reps": 200, "interval": "bca"})
    est = estimate(frame["y"], result, spec, kind="binary", covariates=frame[["x"]])
    analytic = estimate(frame["y"], result, EstimatorSpec(method="regression_adjustment"),
                        kind="binary", covariates=frame[["x"]])
    assert est.difference == analytic.difference
    assert est.se == pytest.approx(analytic.se, rel=0.35)


# ---------------------------------------------------------------- multiplicity


def test_holm_and_bh_match_statsmodels_with_primary_kept_raw() -> None:
    p = {"rate": 0.01, "frequency": 0.04, "custody": 0.03, "severity": 0.20}
    holm = adjust_p_values(p, ["rate"], "holm")
    assert holm["rate"].adjusted == 0.01 and holm["rate"].family == "primary"
    secondary = ["frequency", "custody", "severity"]
    expected = multipletests([p[k] for k in secondary], method="holm")[1]
    assert [holm[k].adjusted for k in secondary] == pytest.approx(expected)
    # by hand: Holm steps down 0.03 x 3 = 0.09, then max(0.09, 0.04 x 2) = 0.09, then 0.20 x 1
    assert [holm[k].adjusted for k in secondary] == pytest.approx([0.09, 0.09, 0.20])
    bh = adjust_p_values(p, ["rate"], "fdr_bh", family="all")
    expected_bh = multipletests(list(p.values()), method="fdr_bh")[1]
    assert [bh[k].adjusted for k in p] == pytest.approx(expected_bh)
    assert all(v.family == "all" and v.family_size == 4 for v in bh.values())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_holm_is_statsmodels_holm_bit_for_bit(seed: int) -> None:
    from jdl.estimation.multiplicity import holm

    rng = np.random.default_rng(seed)
    for m in (1, 2, 7, 40):
        p = rng.choice([0.001, 0.01, 0.02, 0.3, 0.9], m) if seed % 2 else rng.random(m) ** 3  # ties, or none
        assert holm(p).tobytes() == multipletests(p, method="holm")[1].tobytes()


def test_missing_p_values_are_left_out_of_the_family() -> None:
    p = {"rate": 0.01, "a": 0.02, "b": float("nan"), "c": 0.04}
    out = adjust_p_values(p, ["rate"], "bonferroni")
    assert math.isnan(out["b"].adjusted)
    assert out["a"].adjusted == pytest.approx(0.04) and out["a"].family_size == 2


# ---------------------------------------------------------------- sensitivity


def test_e_value_closed_form_and_vanderweele_ding_example() -> None:
    # VanderWeele & Ding (2017): RR 3.9 (1.8, 8.7) has E-values 7.26 and 3.0
    result = e_value(3.9, 1.8, 8.7)
    assert result.e_value == pytest.approx(3.9 + math.sqrt(3.9 * 2.9))
    assert round(result.e_value, 2) == 7.26 and round(result.e_value_ci, 1) == 3.0
    protective = e_value(0.8, 0.7, 0.95)
    assert protective.e_value == pytest.approx(1.25 + math.sqrt(1.25 * 0.25))
    assert protective.e_value_ci == pytest.approx(1 / 0.95 + math.sqrt(1 / 0.95 * (1 / 0.95 - 1)))
    assert e_value(0.9, 0.7, 1.1).e_value_ci == 1.0


def test_poisson_binomial_tail_by_enumeration() -> None:
    probabilities = np.array([0.2, 0.5, 0.7, 0.9, 0.35])
    for k in range(7):
        total = 0.0
        for outcome in itertools.product([0, 1], repeat=5):
            if sum(outcome) >= k:
                total += np.prod([p if o else 1 - p for p, o in zip(probabilities, outcome, strict=True)])
        assert poisson_binomial_upper_tail(probabilities, k) == pytest.approx(total)


def _pairs_with_table(discordant_for: int, discordant_against: int, concordant: int):
    """1:1 matched pairs whose outcome table is set by hand."""
    n_pairs = discordant_for + discordant_against + concordant
    frame = pd.DataFrame({
        "treat": np.r_[np.ones(n_pairs, bool), np.zeros(n_pairs, bool)],
        "x": np.r_[np.arange(n_pairs), np.arange(n_pairs) + 0.01] / n_pairs,
    })
    result = match(frame, treatment="treat", covariates=["x"], spec=MatchingSpec(ratio=1))
    y = np.zeros(len(frame))
    pairs = result.pairs.sort_values("treated_row")
    for i, (t_row, c_row) in enumerate(zip(pairs["treated_row"], pairs["control_row"], strict=True)):
        if i < discordant_for:
            y[c_row] = 1  # the comparison person reoffended, the treated did not
        elif i < discordant_for + discordant_against:
            y[t_row] = 1
        else:
            y[t_row] = y[c_row] = 1 if i % 2 else 0
    return pd.Series(y, index=frame.index), result


def test_rosenbaum_bound_for_pairs_is_the_mcnemar_binomial_tail() -> None:
    outcome, result = _pairs_with_table(65, 35, 100)
    bounds = rosenbaum_bounds(outcome, result, alpha=0.05)
    assert bounds.available and bounds.direction == "treated lower"
    # treated without a reoffence: 65 discordant pairs plus the 50 concordant pairs where neither did
    assert bounds.n_informative_sets == 100 and bounds.statistic == 65 + 50
    for gamma, p_upper in bounds.grid:
        assert p_upper == pytest.approx(stats.binom.sf(64, 100, gamma / (1 + gamma)))
    gamma = bounds.gamma_critical
    assert stats.binom.sf(64, 100, gamma / (1 + gamma)) == pytest.approx(0.05, abs=1e-6)
    assert 1.2 < gamma < 1.5
    weak = rosenbaum_bounds(*_pairs_with_table(52, 48, 10))
    assert weak.gamma_critical == 1.0  # not significant even without hidden bias


def test_rosenbaum_with_sets_of_one_and_several_controls(replaced) -> None:
    frame, result = replaced
    bounds = rosenbaum_bounds(frame["y"], result, alpha=0.05, gamma_max=4)
    assert bounds.available and "reused" in bounds.note
    p_values = [p for _, p in bounds.grid]
    assert p_values == sorted(p_values)  # the bound grows with Γ
    assert bounds.gamma_critical is None or 1.0 <= bounds.gamma_critical <= 4
    subclass = match(frame, treatment="treat", covariates=["x"], spec=MatchingSpec(method="subclass"))
    assert not rosenbaum_bounds(frame["y"], subclass).available


def test_placebo_outcome_shows_no_effect_and_a_confounded_one_does(replaced) -> None:
    frame, result = replaced
    placebo = placebo_estimate(frame["before"], result, EstimatorSpec(), kind="binary", name="before")
    assert placebo.consistent_with_no_effect and placebo.estimate.method == "weighted_difference"
    confounded = (frame["x"] > 0.5).astype(float) * frame["treat"]  # differs by group by design
    assert not placebo_estimate(confounded, result, EstimatorSpec(), kind="binary").consistent_with_no_effect


# ---------------------------------------------------------------- disclosure


def _measure(**values: object) -> dict[str, object]:
    base = {"kind": "binary", "population": "all", "treatment": 0.3, "comparison": 0.35,
            "n_treatment": 100, "n_comparison": 500, "difference": -0.05}
    return base | values


def test_disclosure_suppresses_small_counts_in_either_group_and_keeps_values() -> None:
    ok = apply_disclosure(_measure(), treated_reoffenders=40)
    assert not ok["suppressed"] and ok["suppression_reason"] is None
    rare = apply_disclosure(_measure(treatment=0.05), treated_reoffenders=40)  # 100 × 0.05 = 5
    assert rare["suppressed"] and "treatment group" in rare["suppression_reason"]
    assert rare["treatment"] == 0.05 and rare["difference"] == -0.05  # unrounded values kept
    common = apply_disclosure(_measure(comparison=0.99), treated_reoffenders=40)  # 500 × 0.01 = 5
    assert common["suppressed"] and "comparison group" in common["suppression_reason"]
    boundary = apply_disclosure(_measure(treatment=0.1), treated_reoffenders=40)  # exactly 10
    assert not boundary["suppressed"]
    counts = apply_disclosure(_measure(kind="count", treatment=0.01), treated_reoffenders=40)
    assert not counts["suppressed"]


def test_disclosure_hides_reoffender_measures_below_30_treated_reoffenders() -> None:
    days = _measure(kind="continuous", population="reoffenders", treatment=120.0, comparison=110.0)
    assert apply_disclosure(days, treated_reoffenders=29)["suppressed"]
    assert not apply_disclosure(days, treated_reoffenders=30)["suppressed"]
    by_name = _measure(kind="continuous", treatment=120.0, comparison=110.0)
    del by_name["population"]
    assert apply_disclosure(by_name, treated_reoffenders=5, name="days_to_first_reoffence")["suppressed"]
