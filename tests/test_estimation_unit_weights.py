"""Unit weights (the naive, unmatched comparison): the arithmetic without multiplying by 1 gives
the same numbers bit for bit as with an array of ones."""

from __future__ import annotations

import numpy as np
import pytest

from jdl.estimation.estimators import PowerInputs, power_summary
from jdl.estimation.variance import weighted_difference, weighted_regression
from jdl.matching.balance import unit_weighted_variance, weighted_variance
from jdl.matching.weights import effective_sample_size, unit_effective_sample_size


def _outcomes(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    treated = rng.random(n) < 0.05
    return treated, rng.integers(0, 10_000, n), {
        "binary": (rng.random(n) < 0.4).astype(float),
        "count": rng.poisson(1.3, n).astype(float),
        "continuous": rng.gamma(2.0, 90.0, n),
    }


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 100_003])
def test_unit_weighted_variance_is_weighted_variance_with_ones(n: int) -> None:
    _, _, outcomes = _outcomes(n, n)
    for values in outcomes.values():
        for binary in (True, False):
            expected = weighted_variance(values, np.ones(n), binary)
            assert np.float64(unit_weighted_variance(values, binary)).tobytes() == np.float64(expected).tobytes()
    assert np.isnan(unit_weighted_variance(np.empty(0), False))


@pytest.mark.parametrize("n", [0, 1, 5, 123_457])
def test_unit_effective_sample_size_is_kish_with_ones(n: int) -> None:
    assert unit_effective_sample_size(n) == effective_sample_size(np.ones(n))


@pytest.mark.parametrize("seed", [1, 2])
def test_weighted_difference_without_weights_equals_ones(seed: int) -> None:
    n = 200_001
    treated, clusters, outcomes = _outcomes(seed, n)
    for y in outcomes.values():
        for dims, robust in ((None, "HC1"), (None, "HC3"), ([clusters], "HC1")):
            plain = weighted_difference(y, treated, np.ones(n), dims, robust)  # type: ignore[arg-type]
            fast = weighted_difference(y, treated, None, dims, robust)  # type: ignore[arg-type]
            assert fast == plain
    X = np.column_stack([np.ones(n), treated.astype(float), outcomes["count"]])
    plain_fit = weighted_regression(outcomes["continuous"], X, np.ones(n))
    fast_fit = weighted_regression(outcomes["continuous"], X, None)
    assert fast_fit.beta.tobytes() == plain_fit.beta.tobytes()
    assert fast_fit.vcov.tobytes() == plain_fit.vcov.tobytes()


def test_power_summary_with_unit_weights_equals_ones() -> None:
    n = 50_000
    treated, _, outcomes = _outcomes(3, n)
    for kind, y in outcomes.items():
        binary = kind == "binary"
        t_mean, c_mean = float(y[treated].mean()), float(y[~treated].mean())
        for significant in (True, False):
            plain = power_summary(binary, PowerInputs(y, treated, np.ones(n)), t_mean, c_mean, significant, 0.05)
            fast = power_summary(binary, PowerInputs(y, treated, np.ones(n), unit_weights=True), t_mean, c_mean,
                                 significant, 0.05)
            assert fast == plain
