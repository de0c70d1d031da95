"""Balance table (MatchIt summary conventions) and the stratification matchers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from jdl.matching import balance_table, match
from jdl.spec.models import MatchingSpec


def test_smd_and_variance_ratio_by_hand() -> None:
    X = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 0.0, 1.0, 5.0, 6.0],
            "b": [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0],
        }
    )
    treated = np.array([True, True, True, False, False, False, False])
    weights = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 2.0])
    table = balance_table(X, treated, weights, estimand="ATT").set_index("covariate")

    x = table.loc["x"]
    # treated mean 2, SD 1 (the unmatched treated SD standardises before and after)
    assert x["mean_treatment"] == pytest.approx(2.0)
    assert x["mean_comparison_before"] == pytest.approx(3.0)
    assert x["mean_comparison_after"] == pytest.approx((0 + 1 + 2 * 6) / 4)
    assert x["smd_before"] == pytest.approx(-1.0)
    assert x["smd_after"] == pytest.approx(-1.25)
    assert x["variance_ratio_before"] == pytest.approx(1 / (26 / 3))
    # weighted (reliability) variance of 0, 1, 6 with weights 1, 1, 2: 7.6875 / 0.625
    assert x["variance_ratio_after"] == pytest.approx(1 / 12.3)
    assert x["flag"] == "imbalanced"
    assert x["kind"] == "continuous"

    b = table.loc["b"]
    sd = math.sqrt((2 / 3) * (1 / 3))  # SD of the treated proportion
    assert b["smd_before"] == pytest.approx((2 / 3 - 0.5) / sd)
    assert b["mean_comparison_after"] == pytest.approx(0.5)
    assert math.isnan(b["variance_ratio_before"]) and math.isnan(b["variance_ratio_after"])
    assert b["kind"] == "binary"


def test_flags_thresholds() -> None:
    from jdl.matching.balance import flag

    assert [flag(0.05), flag(-0.07), flag(0.1), flag(0.11)] == [
        "good", "acceptable", "acceptable", "imbalanced"
    ]


def test_matching_improves_balance_and_reports_distance_row() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.normal(size=n)
    treated = rng.random(n) < 1 / (1 + np.exp(-(-2 + 1.2 * x)))
    frame = pd.DataFrame({"treat": treated, "x": x, "g": rng.choice(["a", "b", "c"], n)})
    spec = MatchingSpec(caliper={"width": 0.2})
    result = match(frame, treatment="treat", covariates=["x", "g"], spec=spec)
    table = result.balance.set_index("covariate")
    assert list(table.index) == ["distance", "x", "gb", "gc"]
    assert abs(table.loc["x", "smd_before"]) > 0.5
    assert abs(table.loc["x", "smd_after"]) < 0.05
    assert table.loc["x", "flag"] == "good"


def _strata_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "treat": [1, 0, 0, 1, 1, 0, 1, 0, 0],
            "sex": ["M", "M", "M", "F", "F", "F", "X", "F", "M"],
            "x": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        }
    )


def test_exact_matcher_weights_follow_matchit() -> None:
    spec = MatchingSpec(method="exact", propensity={"column": "ps"})
    frame = _strata_frame()
    score = np.linspace(0.2, 0.8, len(frame))
    result = match(frame, treatment="treat", covariates=["sex"], spec=spec, score=score)
    units = result.units
    # strata numbered by first appearance among treated: M -> 1, F -> 2; X has no control
    assert units["subclass"].tolist() == [1, 1, 1, 2, 2, 2, pd.NA, 2, 1]
    # ATT: control weight n1/n0 per stratum (M: 1/3, F: 2/2), rescaled to sum to 5 controls
    raw = np.array([1 / 3, 1 / 3, 1, 1, 1 / 3])
    expected = raw * 5 / raw.sum()
    np.testing.assert_allclose(units["weight"].to_numpy()[[1, 2, 5, 7, 8]], expected)
    assert units["weight"].tolist()[6] == 0
    assert result.discarded.focal_no_exact_stratum == 1
    assert result.pairs.empty


def test_subclass_matcher_makes_quantile_subclasses_with_both_groups() -> None:
    rng = np.random.default_rng(8)
    n = 2000
    x = rng.normal(size=n)
    frame = pd.DataFrame({"treat": rng.random(n) < 1 / (1 + np.exp(-x)), "x": x})
    result = match(
        frame, treatment="treat", covariates=["x"], spec=MatchingSpec(method="subclass", estimand="ATE")
    )
    sub = result.units["subclass"].to_numpy(dtype=float)
    assert set(np.unique(sub)) == {1, 2, 3, 4, 5, 6}
    counts = pd.crosstab(sub, frame["treat"])
    assert (counts > 0).all().all()
    # ATE: both groups' weights average 1
    w, t = result.units["weight"], frame["treat"]
    assert w[t].mean() == pytest.approx(1) and w[~t].mean() == pytest.approx(1)
    assert abs(result.balance.set_index("covariate").loc["x", "smd_after"]) < 0.1
