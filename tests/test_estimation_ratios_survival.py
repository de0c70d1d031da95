"""Risk, odds and rate ratios against hand formulas; Kaplan-Meier curves against hand and statsmodels."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.duration.survfunc import SurvfuncRight

from jdl.errors import JdlUserError
from jdl.estimation.ratios import effect_ratios
from jdl.estimation.survival import kaplan_meier, time_to_first_reoffence_curves
from jdl.matching import match
from jdl.spec.models import MatchingSpec


def _frame(seed: int, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    treated = rng.random(n) < 1 / (1 + np.exp(-(-1.5 + x)))
    risk = 0.2 + 0.3 / (1 + np.exp(-x)) - 0.08 * treated
    return pd.DataFrame({
        "treat": treated, "x": x,
        "y": (rng.random(n) < risk).astype(float),
        "count": rng.poisson(1.0 + 0.5 * (x > 0) - 0.3 * treated).astype(float),
    })


@pytest.fixture(scope="module")
def matched():
    frame = _frame(1)
    return frame, match(frame, treatment="treat", covariates=["x"],
                        spec=MatchingSpec(ratio=3, replace=True, caliper={"width": 0.2}))


def test_unweighted_ratios_are_katz_and_woolf_with_hc1() -> None:
    frame = _frame(2, n=1500)
    result = match(frame, treatment="treat", covariates=["x"], spec=MatchingSpec())
    units = result.units.copy()
    units["weight"] = 1.0  # every unit, unweighted: the textbook 2x2 table
    flat = dataclasses.replace(result, units=units)
    ratios = effect_ratios(frame["y"], flat, "binary", variance="robust")
    t = frame["treat"].to_numpy()
    y = frame["y"].to_numpy()
    a, n1 = y[t].sum(), t.sum()
    c, n0 = y[~t].sum(), (~t).sum()
    p1, p0 = a / n1, c / n0
    hc1 = len(y) / (len(y) - 2)
    katz = math.sqrt(((1 - p1) / a + (1 - p0) / c) * hc1)
    woolf = math.sqrt((1 / a + 1 / (n1 - a) + 1 / c + 1 / (n0 - c)) * hc1)
    rr, odds = ratios.ratios["risk_ratio"], ratios.ratios["odds_ratio"]
    assert rr.estimate == pytest.approx(p1 / p0)
    assert rr.log_se == pytest.approx(katz, rel=1e-9)
    assert odds.estimate == pytest.approx(p1 * (1 - p0) / (p0 * (1 - p1)))
    assert odds.log_se == pytest.approx(woolf, rel=1e-9)
    z = stats.norm.ppf(0.975)
    assert rr.ci_low == pytest.approx(p1 / p0 * math.exp(-z * katz))
    assert rr.p_value == pytest.approx(2 * stats.norm.sf(abs(math.log(p1 / p0)) / katz))


def test_clustered_ratio_uses_the_differences_covariance(matched) -> None:
    frame, result = matched
    ratios = effect_ratios(frame["y"], result, "binary")
    assert ratios.parameters["standard_error"].startswith("two-way")
    assert ratios.ratios["risk_ratio"].estimate < 1  # planted reduction
    # one-way check without replacement against statsmodels' cluster covariance
    plain = match(frame, treatment="treat", covariates=["x"], spec=MatchingSpec(ratio=2))
    units = plain.units
    keep = units["weight"].to_numpy() > 0
    fit = sm.WLS(frame["y"][keep], sm.add_constant(units["treated"][keep].astype(float)),
                 weights=units["weight"][keep]).fit(
        cov_type="cluster", cov_kwds={"groups": units["subclass"][keep].to_numpy(dtype=np.int64)})
    p0, p1 = fit.params.iloc[0], fit.params.iloc[0] + fit.params.iloc[1]
    gradient = np.array([1 / p1 - 1 / p0, 1 / p1])
    expected = math.sqrt(gradient @ fit.cov_params().to_numpy() @ gradient)
    assert effect_ratios(frame["y"], plain, "binary").ratios["risk_ratio"].log_se == pytest.approx(
        expected, rel=1e-8)


def test_rate_ratio_for_counts(matched) -> None:
    frame, result = matched
    ratios = effect_ratios(frame["count"], result, "count")
    assert set(ratios.ratios) == {"rate_ratio"}
    assert ratios.ratios["rate_ratio"].estimate == pytest.approx(
        ratios.treatment_mean / ratios.comparison_mean)
    assert ratios.ratios["rate_ratio"].ci_low < ratios.ratios["rate_ratio"].estimate


def test_ratio_undefined_when_a_group_has_no_events(matched) -> None:
    frame, result = matched
    none = pd.Series(0.0, index=frame.index)
    ratios = effect_ratios(none, result, "binary")
    assert ratios.ratios == {} and set(ratios.parameters["undefined"]) == {"risk_ratio", "odds_ratio"}
    with pytest.raises(JdlUserError, match="binary and count"):
        effect_ratios(frame["x"], result, "continuous")


def test_weighted_kaplan_meier_by_hand_and_unweighted_statsmodels() -> None:
    time = np.array([1.0, 2, 2, 3, 4, 5])
    event = np.array([1, 1, 0, 1, 0, 1])
    weights = np.array([1.0, 0.5, 2, 1, 0.3, 1])
    curve = kaplan_meier(time, event, weights)
    # at risk 5.8 → 1 event; 4.8 → 0.5; 2.3 → 1; 1.0 → 1
    expected = np.cumprod([1 - 1 / 5.8, 1 - 0.5 / 4.8, 1 - 1 / 2.3, 1 - 1 / 1.0])
    assert curve.time == (0.0, 1.0, 2.0, 3.0, 5.0)
    assert np.allclose(curve.survival, [1.0, *expected])
    plain = kaplan_meier(time, event)
    reference = SurvfuncRight(time, event)
    assert np.allclose(plain.survival[1:], reference.surv_prob)


def test_time_to_first_reoffence_curves_per_group(matched) -> None:
    frame, result = matched
    rng = np.random.default_rng(3)
    days = pd.Series(np.where(frame["y"] == 1, rng.integers(1, 366, len(frame)), np.nan),
                     index=frame.index)
    curves = time_to_first_reoffence_curves(days, result, follow_up_days=365)
    units = result.units
    for label, members in (("treatment", units["treated"]), ("comparison", ~units["treated"])):
        rows = members.to_numpy() & (units["weight"].to_numpy() > 0)
        d = days.to_numpy()[rows]
        w = units["weight"].to_numpy()[rows]
        # the curve's last value is 1 - (weighted share reoffending), as nobody is censored early
        share = np.sum(w * ~np.isnan(d)) / np.sum(w)
        assert curves.curves[label].survival[-1] == pytest.approx(1 - share)
    with pytest.raises(JdlUserError, match="between 0 and the follow-up"):
        time_to_first_reoffence_curves(days + 400, result, follow_up_days=365)
