"""Radius, kernel, coarsened exact and subclass matchers; spec keys; balance; bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from jdl.errors import EvaluationCannotComplete, JdlUserError
from jdl.matching import MatchingResult, love_plot_data, match, overlap_plot_data
from jdl.matching.balance import ecdf_differences
from jdl.matching.strata import coarsen, scoot
from jdl.spec.models import MatchingSpec

# treated rows 0 (0.80), 2 (0.77), 5 (0.45); controls 1 (0.74), 3 (0.68), 4 (0.50), 6 (0.30), 7 (0.785)
SCORES = np.array([0.80, 0.74, 0.77, 0.68, 0.50, 0.45, 0.30, 0.785])
TREATED = np.array([1, 0, 1, 0, 0, 1, 0, 0])


def tiny_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"treat": TREATED, "x": [3.0, 1.0, 2.0, 5.0, 4.0, 0.0, 7.0, 6.0],
         "sex": ["M", "F", "M", "M", "M", "M", "F", "M"]},
        index=[f"u{i}" for i in range(8)],
    )


def run(**options: object) -> MatchingResult:
    spec = MatchingSpec(propensity={"column": "ps", "link": "logit"}, **options)
    return match(tiny_frame(), treatment="treat", covariates=["x", "sex"], spec=spec, score=SCORES)


def test_radius_takes_every_unit_within_the_radius() -> None:
    result = run(method="radius", caliper={"width": 0.065, "scale": "absolute"})
    pairs = sorted(zip(result.pairs["treated_row"], result.pairs["control_row"], strict=True))
    # 0.80: 0.74 (0.06), 0.785; 0.77: 0.74, 0.785 (0.68 is 0.09 away); 0.45: 0.50
    assert [(int(t), int(c)) for t, c in pairs] == [(0, 1), (0, 7), (2, 1), (2, 7), (5, 4)]
    weights = result.units["weight"].to_numpy()
    # raw: control 1 = 1/2 + 1/2, control 7 = 1/2 + 1/2, control 4 = 1; 3 controls, sum 3
    np.testing.assert_allclose(weights[[1, 7, 4]], [1.0, 1.0, 1.0])
    assert result.replace  # controls serve several treated units: the estimator uses the pairs
    with pytest.raises(JdlUserError, match="needs a radius"):
        run(method="radius")


def test_kernel_weights_follow_the_epanechnikov_kernel() -> None:
    result = run(method="kernel", kernel={"bandwidth": 0.1, "scale": "absolute"})
    pairs = result.pairs
    of_zero = pairs[pairs["treated_row"] == 0].set_index("control_row")["control_weight"]
    # treated 0.80 with h = 0.1: 0.74 (u = -0.6, K = 0.64), 0.785 (u = -0.15, K = 0.9775)
    k1, k7 = 1 - 0.6**2, 1 - 0.15**2
    assert of_zero.to_dict() == pytest.approx({1: k1 / (k1 + k7), 7: k7 / (k1 + k7)})
    assert pairs.groupby("treated_row")["control_weight"].sum().to_numpy() == pytest.approx(1.0)
    gaussian = run(method="kernel", kernel={"type": "gaussian", "bandwidth": 0.1, "scale": "absolute"})
    assert gaussian.n_control_matched > result.n_control_matched  # unbounded support reaches further


def test_kernel_refuses_a_caliper_and_ate() -> None:
    with pytest.raises(JdlUserError, match="bandwidth, not by a caliper"):
        run(method="kernel", caliper={"width": 0.1})
    with pytest.raises(JdlUserError, match="ATT or the ATC"):
        run(method="kernel", estimand="ATE")


def test_coarsen_mirrors_r_bins() -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 10.0])
    # Sturges: ceiling(log2(6) + 1) = 4 bins of width 2.5 over [0, 10]: breaks 2.5, 5, 7.5
    np.testing.assert_array_equal(coarsen(x, "sturges"), [1, 1, 1, 2, 2, 4])
    np.testing.assert_array_equal(coarsen(x, [2.0, 4.0]), [1, 1, 2, 2, 3, 3])  # left-closed
    np.testing.assert_array_equal(coarsen(x, 2), [1, 1, 1, 1, 1, 2])
    assert coarsen(x, 1) is None
    np.testing.assert_array_equal(coarsen(x, 0), [0, 1, 2, 3, 4, 5])


def test_coarsened_exact_with_cutpoints_and_validation() -> None:
    frame = pd.DataFrame({
        "treat": [1, 0, 1, 0, 1, 0],
        "age": [20.0, 21.0, 40.0, 44.0, 60.0, 30.0],
        "sex": ["M", "M", "F", "F", "M", "F"],
    })
    spec = MatchingSpec(method="coarsened_exact", cutpoints={"age": [35.0]})
    result = match(frame, treatment="treat", covariates=["age", "sex"], spec=spec)
    # strata: (<35, M) {0, 1}; (>=35, F) {2, 3}; (>=35, M) {4} has no control; (<35, F) {5} no treated
    assert result.units["weight"].tolist() == [1, 1, 1, 1, 0, 0]
    assert result.parameters["cutpoints"] == {"age": [35.0]}
    with pytest.raises(JdlUserError, match="numeric covariates"):
        match(frame, treatment="treat", covariates=["age", "sex"],
              spec=MatchingSpec(method="coarsened_exact", cutpoints={"sex": 2}))


def test_scoot_fills_an_empty_subclass_from_its_neighbour() -> None:
    codes = np.array([1, 1, 2, 2, 3, 3, 3])
    treated = np.array([True, False, True, False, True, True, False])
    distance = np.array([0.1, 0.2, 0.4, 0.5, 0.7, 0.8, 0.9])
    # every subclass has both groups: unchanged
    np.testing.assert_array_equal(scoot(codes, treated, distance), [1, 1, 2, 2, 3, 3, 3])
    codes = np.array([1, 1, 2, 3, 3, 3, 3])
    treated = np.array([True, False, True, True, False, True, False])
    # subclass 2 has no control: the nearest control moves in (here from the right: 0.7 is lowest)
    distance = np.array([0.1, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9])
    np.testing.assert_array_equal(scoot(codes, treated, distance), [1, 1, 2, 3, 2, 3, 3])


def test_subclass_count_is_a_spec_key() -> None:
    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame({"treat": rng.random(n) < 0.3, "x": rng.normal(size=n)})
    score = 1 / (1 + np.exp(-frame["x"].to_numpy()))
    result = match(frame, treatment="treat", covariates=["x"],
                   spec=MatchingSpec(method="subclass", subclasses=4, propensity={"column": "ps"}),
                   score=score)
    assert result.parameters["subclasses_used"] == 4
    assert result.units["subclass"].nunique() == 4


def test_method_keys_are_checked_against_the_method() -> None:
    with pytest.raises(ValidationError, match="subclasses applies to method subclass"):
        MatchingSpec(method="nearest_neighbour", subclasses=4)
    with pytest.raises(ValidationError, match="cutpoints applies to method coarsened_exact"):
        MatchingSpec(method="subclass", cutpoints={"age": 3})
    with pytest.raises(ValidationError, match="unknown cut-point rule"):
        MatchingSpec(method="coarsened_exact", cutpoints={"age": "sturgess"})
    with pytest.raises(ValidationError, match="logit_sd is for the score"):
        MatchingSpec(covariate_calipers={"age": {"width": 1, "scale": "logit_sd"}})
    assert MatchingSpec(method="subclass", subclasses=6).subclasses == 6
    assert MatchingSpec(method="coarsened_exact", cutpoints={"age": "q4"}).cutpoints == {"age": "q4"}


def test_balance_has_ecdf_columns_and_plot_data() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0])
    treated = np.array([True, True, False, False])
    mean, largest = ecdf_differences(values, treated, np.ones(4), binary=False)
    # eCDF gaps at 1, 2, 3, 4: 0.5, 1, 0.5, 0
    assert (mean, largest) == pytest.approx((0.5, 1.0))
    result = run()
    balance = result.balance
    for column in ("ecdf_mean_before", "ecdf_mean_after", "ecdf_max_before", "ecdf_max_after"):
        assert column in balance.columns
    assert (balance["ecdf_max_after"] >= balance["ecdf_mean_after"] - 1e-12).all()
    love = love_plot_data(balance)
    assert len(love) == 2 * len(balance)
    overlap = overlap_plot_data(result.units["propensity_score"].to_numpy(),
                                result.units["treated"].to_numpy(), result.units["weight"].to_numpy(), bins=4)
    shares = overlap.groupby(["stage", "group"])["share"].sum()
    assert shares.to_numpy() == pytest.approx(1.0)
    sizes = result.sample_sizes.set_index("group")
    assert sizes.loc["treatment", "matched"] == 3 and sizes.loc["comparison", "unmatched"] == 2


@pytest.mark.parametrize("model", ["elastic_net", "gradient_boosted"])
def test_causalml_propensity_models_are_registered_and_seeded(model: str) -> None:
    rng = np.random.default_rng(11)
    n = 400
    x = rng.normal(size=n)
    frame = pd.DataFrame({"treat": rng.random(n) < 1 / (1 + np.exp(-(x - 1))), "x": x,
                          "z": rng.normal(size=n)})

    def fit(seed: int) -> np.ndarray:
        spec = MatchingSpec(propensity={"model": model, "link": "logit"}, seed=seed)
        return match(frame, treatment="treat", covariates=["x", "z"], spec=spec).units[
            "propensity_score"].to_numpy()

    first = fit(1)
    np.testing.assert_array_equal(first, fit(1))
    assert ((first >= 0.001) & (first <= 0.999)).all()
    treated = frame["treat"].to_numpy()
    assert first[treated].mean() > first[~treated].mean() + 0.05  # the score tracks x


# --- bad input: each a clear user error, never a silent answer ---------------------------

def test_non_binary_treatment_names_the_column_and_rows() -> None:
    frame = tiny_frame().assign(treat=[1, 0, 2, 0, 0, 1, 0, 3])
    with pytest.raises(JdlUserError, match=r"treatment column 'treat'.*2 rows are neither 0 nor 1"):
        match(frame, treatment="treat", covariates=["x"], spec=MatchingSpec())


def test_no_overlap_cannot_complete() -> None:
    frame = tiny_frame()
    scores = np.where(TREATED == 1, 0.9, 0.1) + np.arange(8) * 0.001
    with pytest.raises(EvaluationCannotComplete, match="do not overlap on the propensity score"):
        match(frame, treatment="treat", covariates=["x"],
              spec=MatchingSpec(propensity={"column": "ps"}), score=scores)


def test_a_caliper_that_drops_everyone_says_so() -> None:
    with pytest.raises(EvaluationCannotComplete, match=r"caliper \(1e-06 absolute.*none of the 3"):
        run(caliper={"width": 1e-6, "scale": "absolute"})


def test_covariate_with_one_value_and_missing_values_are_named() -> None:
    frame = tiny_frame().assign(region="London", y=[1.0, np.nan, 2.0, np.nan, 1.0, 0.0, 1.0, 2.0])
    with pytest.raises(JdlUserError) as error:
        match(frame, treatment="treat", covariates=["x", "region", "y"], spec=MatchingSpec())
    message = str(error.value)
    assert "covariate 'region'" in message and "all 8 rows have the same value" in message
    assert "covariate 'y'" in message and "2 of 8 rows have a missing value" in message


def test_covariate_caliper_on_a_binary_column_is_refused() -> None:
    frame = tiny_frame().assign(flag=[0, 1, 0, 1, 0, 1, 0, 1])
    with pytest.raises(JdlUserError, match="2 distinct values"):
        match(frame, treatment="treat", covariates=["x", "flag"],
              spec=MatchingSpec(propensity={"column": "ps"},
                                covariate_calipers={"flag": {"width": 1, "scale": "absolute"}}),
              score=SCORES)
