"""design_matrix and propensity models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from jdl.errors import JdlUserError
from jdl.matching import PROPENSITY_MODELS, design_matrix, fit_propensity, propensity_from_column
from jdl.registry import Registry
from jdl.spec.models import PropensitySpec


def test_design_matrix_matches_hand_built_treatment_contrasts() -> None:
    frame = pd.DataFrame(
        {
            "age": [20, 35, 41, 29],
            "female": [True, False, True, False],
            "region": ["Wales", "London", "North East", "London"],
            "disposal": pd.Categorical(
                ["fine", "custody", "fine", "community"],
                categories=["custody", "community", "fine", "caution"],
            ),
        }
    )
    X = design_matrix(frame, ["age", "female", "region", "disposal"])
    expected = pd.DataFrame(
        {
            "age": [20.0, 35.0, 41.0, 29.0],
            "female": [1.0, 0.0, 1.0, 0.0],
            # sorted levels London < North East < Wales; London (first) dropped
            "regionNorth East": [0.0, 0.0, 1.0, 0.0],
            "regionWales": [1.0, 0.0, 0.0, 0.0],
            # categorical keeps its category order; unobserved 'caution' has no column
            "disposalcommunity": [0.0, 0.0, 0.0, 1.0],
            "disposalfine": [1.0, 0.0, 1.0, 0.0],
        }
    )
    pd.testing.assert_frame_equal(X, expected)


def test_design_matrix_reports_missing_and_constant_columns_together() -> None:
    frame = pd.DataFrame({"a": [1.0, None, None], "b": ["x", "x", "x"], "c": [1, 2, 3]})
    with pytest.raises(JdlUserError) as caught:
        design_matrix(frame, ["a", "b", "c"])
    message = str(caught.value)
    assert "'a'" in message and "2 of 3 rows" in message
    assert "'b'" in message and "same value" in message
    assert "'c'" not in message


def test_design_matrix_refuses_duplicated_column_names() -> None:
    frame = pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"])
    with pytest.raises(JdlUserError, match="2 columns with this name"):
        design_matrix(frame, ["a"])


def _simulated(seed: int, n: int = 6000) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.integers(0, 2, n).astype(float)})
    eta = -1.0 + 0.8 * X["x1"] - 0.5 * X["x2"]
    treated = rng.random(n) < 1 / (1 + np.exp(-eta))
    return X, treated.to_numpy()


def test_logistic_recovers_the_simulated_model() -> None:
    X, treated = _simulated(11)
    result = fit_propensity(X, treated, PropensitySpec(), seed=1)
    assert result.converged
    assert result.model == "logistic"
    truth = {"(Intercept)": -1.0, "x1": 0.8, "x2": -0.5}
    for name, value in truth.items():
        assert result.coefficients[name] == pytest.approx(value, abs=0.15)
    np.testing.assert_allclose(result.score, 1 / (1 + np.exp(-result.linear_predictor)))


def test_logistic_agrees_with_unpenalised_sklearn() -> None:
    X, treated = _simulated(12)
    result = fit_propensity(X, treated, PropensitySpec(), seed=1)
    reference = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    reference.fit(X.to_numpy(), treated)
    ours = np.array([result.coefficients[k] for k in ("(Intercept)", "x1", "x2")])
    theirs = np.concatenate([reference.intercept_, reference.coef_[0]])
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    np.testing.assert_allclose(result.score, reference.predict_proba(X.to_numpy())[:, 1], atol=1e-6)


def test_score_column_must_be_a_probability() -> None:
    result = propensity_from_column(np.array([0.2, 0.5]), column="ps")
    np.testing.assert_allclose(result.linear_predictor, [np.log(0.25), 0.0])
    with pytest.raises(JdlUserError, match="strictly between 0 and 1"):
        propensity_from_column(np.array([0.2, 1.0]), column="ps")


def test_unknown_model_lists_choices_and_duplicates_are_refused() -> None:
    X, treated = _simulated(13, n=200)
    with pytest.raises(JdlUserError, match="allowed: elastic_net, gradient_boosted, logistic"):
        fit_propensity(X, treated, PropensitySpec(model="forest"), seed=1)
    with pytest.raises(ValueError, match="already registered"):
        PROPENSITY_MODELS.register("logistic", PROPENSITY_MODELS["logistic"])
    registry: Registry[int] = Registry("thing", "spec.key")
    registry.register("a", 1)
    assert registry["a"] == 1 and "b" not in registry
