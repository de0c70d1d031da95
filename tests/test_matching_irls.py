"""The logistic propensity fit (IRLS on blocked normal equations, warm-started on large data)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from threadpoolctl import threadpool_limits

import jdl.matching.propensity as propensity
from jdl.matching.propensity import irls_logistic


def _simulated(seed: int, n: int, p: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A design with an intercept, continuous and binary columns on different scales, and a
    rare treatment (as a comparison pool of millions has)."""
    rng = np.random.default_rng(seed)
    continuous = rng.normal(size=(n, p // 2)) * [1.0, 12.0, 0.2][: p // 2] + [0.0, 40.0, 1.0][: p // 2]
    binary = (rng.random((n, p - p // 2)) < [0.5, 0.2, 0.05][: p - p // 2]).astype(float)
    design = np.column_stack([np.ones(n), continuous, binary])
    beta = np.concatenate([[-1.0], rng.uniform(-0.8, 0.8, p)]) / np.concatenate([[1.0], design[:, 1:].std(axis=0)])
    beta[0] -= design[:, 1:].mean(axis=0) @ beta[1:] + 2.5
    y = (rng.random(n) < 1 / (1 + np.exp(-(design @ beta)))).astype(float)
    return design, y


def _statsmodels(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    return sm.Logit(y, design).fit(method="newton", tol=1e-13, maxiter=100, disp=0).params


@pytest.mark.parametrize("seed", [5, 6])
def test_irls_equals_statsmodels_logit(seed: int) -> None:
    design, y = _simulated(seed, 20_000)
    coefficients, iterations, converged = irls_logistic(design, y)
    assert converged and 3 <= iterations < propensity.MAX_ITERATIONS
    np.testing.assert_allclose(coefficients, _statsmodels(design, y), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("seed", [7, 8])
def test_warm_started_irls_equals_statsmodels_logit_in_fewer_passes(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    design, y = _simulated(seed, 60_000)
    cold, cold_iterations, _ = irls_logistic(design, y)
    monkeypatch.setattr(propensity, "WARM_START_ROWS", 6_000)  # fit every 10th row first
    warm, warm_iterations, converged = irls_logistic(design, y)
    assert converged and warm_iterations < cold_iterations
    np.testing.assert_allclose(warm, _statsmodels(design, y), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(warm, cold, rtol=1e-10, atol=1e-12)


def test_warm_start_falls_back_when_the_subsample_has_one_group(monkeypatch: pytest.MonkeyPatch) -> None:
    design, y = _simulated(9, 30_000)
    y[:] = 0.0
    y[1::3] = 1.0 * (design[1::3, 1] > 1.0)  # no treated row among rows 0, 3, 6, ... (every 3rd)
    monkeypatch.setattr(propensity, "WARM_START_ROWS", 10_000)
    assert propensity._warm_start(design, y, None) is None  # type: ignore[arg-type]
    coefficients, _, converged = irls_logistic(design, y)
    assert converged
    np.testing.assert_allclose(coefficients, _statsmodels(design, y), rtol=1e-8, atol=1e-10)


def test_the_fit_does_not_depend_on_blas_threads_or_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    design, y = _simulated(10, 50_000)
    monkeypatch.setattr(propensity, "WARM_START_ROWS", 10_000)
    fits = []
    for threads in (1, 2, 4):
        with threadpool_limits(threads, user_api="blas"):
            fits.append(irls_logistic(design, y)[0].tobytes())
    assert fits[0] == fits[1] == fits[2]
    monkeypatch.setattr(propensity, "BLOCK_ROWS", 1000)  # other blocks: the same maximum, other last bits
    np.testing.assert_allclose(irls_logistic(design, y)[0], np.frombuffer(fits[0]), rtol=1e-10, atol=1e-12)


def test_collinear_columns_raise() -> None:
    design, y = _simulated(11, 5_000)
    design = np.column_stack([design, design[:, 1] * 2.0])
    with pytest.raises(np.linalg.LinAlgError):
        irls_logistic(design, y)


@pytest.mark.parametrize("order", ["F", "C"])
def test_column_moments_are_numpys_mean_and_std_of_a_column_major_matrix(order: str) -> None:
    design, _ = _simulated(12, 30_001)
    columns = np.asarray(design[:, 1:], order=order)
    centre, scale = propensity._column_moments(columns)
    reference = np.asfortranarray(columns)  # the layout the pipeline's design has
    assert centre.tobytes() == reference.mean(axis=0).tobytes()
    assert scale.tobytes() == reference.std(axis=0).tobytes()


@pytest.mark.parametrize("columns", [1, 4])
def test_fit_logistic_without_the_intercept_column_is_the_fit_with_it(columns: int) -> None:
    import pandas as pd

    from jdl.matching.design import design_matrix
    from jdl.matching.propensity import fit_logistic, r_linear_predictor, r_logit_inverse
    from jdl.spec.models import PropensitySpec

    design, y = _simulated(13, 40_000)
    frame = pd.DataFrame({f"x{j}": design[:, j + 1] for j in range(columns)})
    X = design_matrix(frame, list(frame.columns))
    result = fit_logistic(X, y.astype(bool), PropensitySpec(), seed=1)
    with_intercept = np.column_stack([np.ones(len(X)), X.to_numpy(dtype=float)])
    coefficients, _, _ = irls_logistic(with_intercept, y)
    assert np.array(list(result.coefficients.values())).tobytes() == coefficients.tobytes()
    linear = r_linear_predictor(with_intercept, coefficients)
    assert result.linear_predictor.tobytes() == linear.tobytes()
    assert result.score.tobytes() == r_logit_inverse(linear).tobytes()
