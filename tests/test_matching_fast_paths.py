"""Fast paths in matching give exactly what the straightforward formulation gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jdl.matching.balance import (
    BALANCE_COLUMNS,
    balance_table,
    ecdf_differences,
    flag,
    is_binary,
    weighted_mean,
    weighted_variance,
)
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
    assert heap_select(np.asarray(values), k) == reference  # an array: values read one by one
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


def plain_balance_row(name: str, kind: str, values: np.ndarray, treated: np.ndarray, weights: np.ndarray,
                      estimand: str) -> dict[str, object]:
    """A balance row straight from weighted_mean, weighted_variance and ecdf_differences."""
    binary = kind == "binary"
    t, c = values[treated], values[~treated]
    ones, ones_t, ones_c = np.ones(len(values)), np.ones(len(t)), np.ones(len(c))
    wt, wc = weights[treated], weights[~treated]
    var_t, var_c = weighted_variance(t, ones_t, binary), weighted_variance(c, ones_c, binary)
    denominator = float(np.sqrt({"ATT": var_t, "ATC": var_c}.get(estimand, (var_t + var_c) / 2.0)))

    def smd(difference: float) -> float:
        if abs(difference) < 1e-8:
            return 0.0
        return difference / denominator if denominator > 0 else float("nan")

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else float("nan")

    before = ecdf_differences(values, treated, ones, binary)
    after = ecdf_differences(values, treated, weights, binary)
    mean_t, mean_c = weighted_mean(t, wt), weighted_mean(c, wc)
    return {
        "covariate": name, "kind": kind, "mean_treatment": mean_t,
        "mean_treatment_before": weighted_mean(t, ones_t), "mean_comparison_before": weighted_mean(c, ones_c),
        "mean_comparison_after": mean_c,
        "smd_before": smd(weighted_mean(t, ones_t) - weighted_mean(c, ones_c)), "smd_after": smd(mean_t - mean_c),
        "variance_ratio_before": float("nan") if binary else ratio(
            weighted_variance(t, ones_t, False), weighted_variance(c, ones_c, False)),
        "variance_ratio_after": float("nan") if binary else ratio(
            weighted_variance(t, wt, False), weighted_variance(c, wc, False)),
        "flag": flag(smd(mean_t - mean_c)),
        "ecdf_mean_before": before[0], "ecdf_mean_after": after[0],
        "ecdf_max_before": before[1], "ecdf_max_after": after[1],
    }


@pytest.mark.parametrize("seed", [21, 22, 23])
@pytest.mark.parametrize("estimand", ["ATT", "ATC", "ATE"])
def test_balance_table_is_bit_identical_to_the_plain_formulas(seed: int, estimand: str) -> None:
    rng = np.random.default_rng(seed)
    n = 5_000
    X = pd.DataFrame({
        "age": np.round(rng.normal(30, 8, n), 1),  # ties
        "male": (rng.random(n) < 0.5).astype(float),
        "rare": (rng.random(n) < 0.002).astype(float),
        "priors": rng.poisson(2, n).astype(float),
        "rate": rng.exponential(1.0, n),
    })
    treated = rng.random(n) < 0.1
    # most comparison units unmatched (weight 0), as in a pool of millions; ATC: some treated unmatched
    weights = np.where(treated, 1.0 if estimand == "ATT" else rng.integers(0, 2, n),
                       np.where(rng.random(n) < 0.05, rng.integers(1, 6, n) / 5.0, 0.0))
    distance = rng.random(n)
    table = balance_table(X, treated, weights, estimand=estimand, distance=distance)
    plain = pd.DataFrame(
        [plain_balance_row("distance", "distance", distance, treated, weights, estimand)]
        + [plain_balance_row(c, "binary" if is_binary(X[c].to_numpy()) else "continuous",
                             X[c].to_numpy(), treated, weights, estimand) for c in X.columns],
        columns=BALANCE_COLUMNS,
    )
    assert table["kind"].tolist() == ["distance", "continuous", "binary", "binary", "continuous", "continuous"]
    pd.testing.assert_frame_equal(table, plain, check_exact=True)
    for column in BALANCE_COLUMNS[2:10] + BALANCE_COLUMNS[11:]:
        assert table[column].to_numpy().tobytes() == plain[column].to_numpy().tobytes(), column


def test_balance_table_with_no_matched_comparison_units_gives_nan_after() -> None:
    rng = np.random.default_rng(24)
    n = 400
    X = pd.DataFrame({"age": rng.normal(30, 8, n), "male": (rng.random(n) < 0.5).astype(float)})
    treated = rng.random(n) < 0.3
    weights = np.where(treated, 1.0, 0.0)
    table = balance_table(X, treated, weights)
    plain = pd.DataFrame([plain_balance_row(c, "binary" if c == "male" else "continuous", X[c].to_numpy(),
                                            treated, weights, "ATT") for c in X.columns], columns=BALANCE_COLUMNS)
    pd.testing.assert_frame_equal(table, plain, check_exact=True)
    assert table["ecdf_mean_after"].isna().all() and table["mean_comparison_after"].isna().all()


@pytest.mark.parametrize("started", ["all", "none", "some"])
@pytest.mark.parametrize("estimand", ["ATT", "ATE"])
def test_balance_with_its_early_half_is_bit_identical_to_the_plain_formulas(started: str, estimand: str) -> None:
    import threading

    from jdl.matching.background import background_executor
    from jdl.matching.balance import EarlyBalance

    rng = np.random.default_rng(31)
    n = 4_000
    X = pd.DataFrame({
        "age": np.round(rng.normal(30, 8, n), 1),
        "male": (rng.random(n) < 0.5).astype(float),
        "priors": rng.poisson(2, n).astype(float),
        "rate": rng.exponential(1.0, n),
    })
    treated = rng.random(n) < 0.1
    weights = np.where(treated, 1.0, np.where(rng.random(n) < 0.05, rng.integers(1, 6, n) / 5.0, 0.0))
    distance = rng.random(n)
    gate = threading.Event()
    with background_executor("test-balance") as executor:
        if started != "all":  # the worker is held: the early halves wait in its queue (computed by the caller)
            executor.submit(gate.wait)
        early = EarlyBalance(X, treated, estimand, executor)
        if started == "some":  # the first half done on the worker, the others done, running or queued
            gate.set()
            early._pending["age"].result()
        table = balance_table(X, treated, weights, estimand=estimand, distance=distance, early=early)
        gate.set()
    plain = pd.DataFrame(
        [plain_balance_row("distance", "distance", distance, treated, weights, estimand)]
        + [plain_balance_row(c, "binary" if is_binary(X[c].to_numpy()) else "continuous",
                             X[c].to_numpy(), treated, weights, estimand) for c in X.columns],
        columns=BALANCE_COLUMNS,
    )
    pd.testing.assert_frame_equal(table, plain, check_exact=True)
    for column in BALANCE_COLUMNS[2:10] + BALANCE_COLUMNS[11:]:
        assert table[column].to_numpy().tobytes() == plain[column].to_numpy().tobytes(), column


def test_early_balance_refuses_another_estimand() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from jdl.matching.balance import EarlyBalance

    X = pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0]})
    treated = np.array([True, False, True, False])
    with ThreadPoolExecutor(max_workers=1) as executor:
        early = EarlyBalance(X, treated, "ATT", executor)
        with pytest.raises(ValueError, match="estimand"):
            balance_table(X, treated, np.ones(4), estimand="ATE", early=early)


def test_taken_waits_for_a_started_task_and_computes_a_queued_one_here() -> None:
    import threading

    from jdl.matching.background import background_executor, taken

    gate = threading.Event()
    with background_executor("test-taken") as executor:
        running = executor.submit(lambda: (gate.wait(), threading.get_ident())[1])
        queued = executor.submit(threading.get_ident)
        assert taken(queued, threading.get_ident) == threading.get_ident()  # not started: computed here
        assert queued.cancelled()
        gate.set()
        assert taken(running, threading.get_ident) != threading.get_ident()


def test_background_thread_runs_at_a_lower_priority_on_linux() -> None:
    import os
    import sys
    import threading

    from jdl.matching.background import BACKGROUND_NICE, background_executor

    if sys.platform != "linux":
        pytest.skip("thread priorities are set on Linux only")
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with background_executor("test-nice") as executor:
        theirs = executor.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
    assert theirs == min(mine + BACKGROUND_NICE, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the caller's is unchanged


def test_design_matrix_on_two_threads_matches_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import jdl.matching.design as design
    from jdl.errors import JdlUserError

    rng = np.random.default_rng(41)
    n = 2_000
    frame = pd.DataFrame({
        "age": rng.normal(30, 8, n),
        "male": rng.random(n) < 0.5,
        "region": pd.Series(rng.choice(["north", "south", "east"], n), dtype="string"),
        "disposal": pd.Categorical(rng.choice(["fine", "custody", "community"], n),
                                   categories=["custody", "community", "fine"]),
        "priors": rng.poisson(2, n),
    })
    columns = list(frame.columns)
    monkeypatch.setattr(design, "PARALLEL_ROWS", 1)
    threaded = design.design_matrix(frame, columns)
    monkeypatch.setattr(design, "PARALLEL_ROWS", 10**9)
    serial = design.design_matrix(frame, columns)
    pd.testing.assert_frame_equal(threaded, serial, check_exact=True)
    assert list(threaded.columns) == ["age", "male", "regionnorth", "regionsouth", "disposalcommunity",
                                      "disposalfine", "priors"]
    # problems: every one reported, in the order of the columns, on either path
    bad = frame.assign(constant=1.0, gap=np.where(np.arange(n) == 3, np.nan, 1.0))
    messages = []
    for rows in (1, 10**9):
        monkeypatch.setattr(design, "PARALLEL_ROWS", rows)
        with pytest.raises(JdlUserError) as caught:
            design.design_matrix(bad, ["gap", "age", "absent", "constant"])
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert messages[0].index("'gap'") < messages[0].index("'absent'") < messages[0].index("'constant'")
