"""Fast paths in matching give exactly what the straightforward formulation gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jdl.matching.design import design_matrix
from jdl.matching.nearest import heap_select
from jdl.matching.propensity import _binomial_deviance, r_logit_inverse


def plain_heap_select(values: list[float], k: int) -> list[int]:
    """libstdc++ partial_sort's heap phase replayed over every element (heap_select before screening)."""
    n = len(values)
    if n <= k:
        return list(range(n))
    heap = list(range(k))

    def push(hole: int, top: int, value: int) -> None:
        parent = (hole - 1) // 2
        while hole > top and values[heap[parent]] < values[value]:
            heap[hole] = heap[parent]
            hole = parent
            parent = (hole - 1) // 2
        heap[hole] = value

    def adjust(hole: int, length: int, value: int) -> None:
        top = child = hole
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if values[heap[child]] < values[heap[child - 1]]:
                child -= 1
            heap[hole] = heap[child]
            hole = child
        if length % 2 == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            heap[hole] = heap[child - 1]
            hole = child - 1
        push(hole, top, value)

    for parent in range((k - 2) // 2, -1, -1) if k >= 2 else ():
        adjust(parent, k, heap[parent])
    for i in range(k, n):
        if values[i] < values[heap[0]]:
            adjust(0, k, i)
    return heap


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 2, 5])
def test_heap_select_screens_chunks_without_changing_the_choice(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 50, 20_000).astype(float).tolist()  # many ties at every distance
    reference = plain_heap_select(values, k)
    assert heap_select(values, k) == reference
    chosen = sorted(values[i] for i in reference)
    assert chosen == sorted(values)[:k]  # the k smallest distances


def test_binomial_deviance_of_zero_one_outcomes_is_bit_identical() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(10_001) < 0.3).astype(float)
    mu = rng.uniform(1e-9, 1 - 1e-9, len(y))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y > 0, y * np.log(y / mu), 0.0) + np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    assert _binomial_deviance(y, mu) == float(2 * terms.sum())
    half = np.full(4, 0.5)
    assert _binomial_deviance(half, np.full(4, 0.5)) == 0.0  # non-binary y takes the general formula


def test_logit_inverse_fixes_the_tails_as_r_does() -> None:
    eta = np.array([-1e3, -30.5, -30.0, -2.0, 0.0, 1e-9, 3.0, 30.0, 30.5, 1e3, np.nan])
    eps = np.finfo(float).eps
    tmp = np.where(eta < -30, eps, np.where(eta > 30, 1 / eps, np.exp(np.clip(eta, -30, 30))))
    assert r_logit_inverse(eta).tobytes() == (tmp / (1 + tmp)).tobytes()


def test_dummies_from_codes_match_comparing_every_row() -> None:
    frame = pd.DataFrame({
        "disposal": pd.array(["fine", "custody", "fine", "community", "custody"], dtype="string"),
        "sex": pd.Categorical(["M", "F", "F", "M", "M"], categories=["M", "F"]),
        "age": [20.0, 30.0, 40.0, 50.0, 60.0],
    })
    X = design_matrix(frame, ["disposal", "sex", "age"])
    assert list(X.columns) == ["disposalcustody", "disposalfine", "sexF", "age"]
    values = frame["disposal"].to_numpy(dtype=object)
    np.testing.assert_array_equal(X["disposalcustody"], (values == "custody").astype(float))
    np.testing.assert_array_equal(X["disposalfine"], (values == "fine").astype(float))
    np.testing.assert_array_equal(X["sexF"], [0.0, 1.0, 1.0, 0.0, 0.0])


def test_balance_rows_on_two_threads_match_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import jdl.matching.balance as balance

    rng = np.random.default_rng(5)
    n = 3_000
    X = pd.DataFrame({"age": rng.normal(30, 8, n), "male": (rng.random(n) < 0.5).astype(float),
                      "priors": rng.poisson(2, n).astype(float)})
    treated = rng.random(n) < 0.2
    weights = np.where(treated, 1.0, rng.integers(0, 3, n) / 2.0)
    distance = rng.random(n)
    monkeypatch.setattr(balance, "PARALLEL_ROWS", 1)
    threaded = balance.balance_table(X, treated, weights, distance=distance)
    monkeypatch.setattr(balance, "PARALLEL_ROWS", 10**9)
    serial = balance.balance_table(X, treated, weights, distance=distance)
    pd.testing.assert_frame_equal(threaded, serial, check_exact=True)
    assert threaded["covariate"].tolist() == ["distance", "age", "male", "priors"]
