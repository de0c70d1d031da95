"""Matching timings: 10,000 treated against 1,000,000 controls, and jdl against causalml.

Run with `make bench`. No timed assertions: pytest-benchmark records the figures;
peak traced memory and the causalml ratio go into each benchmark's extra_info.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from jdl.matching import Caliper, match, nearest_neighbour_pairs
from jdl.spec.models import MatchingSpec

N_TREATED, N_CONTROL = 10_000, 1_000_000


def _population(n_treated: int, n_control: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    treated = np.r_[np.ones(n_treated, bool), np.zeros(n_control, bool)]
    x = rng.normal(size=len(treated)) + 0.5 * treated
    score = 1 / (1 + np.exp(-(-4.6 + 0.8 * x)))
    return pd.DataFrame({"treat": treated, "x": x}), score


@pytest.fixture(scope="module")
def population() -> tuple[pd.DataFrame, np.ndarray]:
    return _population(N_TREATED, N_CONTROL, 2013)


def _peak_megabytes(run: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def _core(frame: pd.DataFrame, score: np.ndarray, *, ratio: int, replace: bool, caliper: bool) -> Callable[[], Any]:
    """The matching step alone: greedy nearest neighbour on the logit of a supplied score."""
    treated = frame["treat"].to_numpy()
    logit = np.log(score / (1 - score))
    n = len(frame)
    bound = Caliper(logit, 0.2 * float(np.std(logit, ddof=1))) if caliper else None
    focal_rows = np.flatnonzero(treated)
    order = focal_rows[np.argsort(-logit[focal_rows], kind="stable")]
    eligible, strata = np.ones(n, bool), np.zeros(n, np.int64)
    return lambda: nearest_neighbour_pairs(
        focal=treated, eligible=eligible, distance=logit, strata=strata, order=order,
        ratio=ratio, replace=replace, caliper=bound,
    )


def test_matching_step_1to1_caliper(benchmark, population) -> None:  # type: ignore[no-untyped-def]
    frame, score = population
    run = _core(frame, score, ratio=1, replace=False, caliper=True)
    benchmark.extra_info["peak_traced_mb"] = _peak_megabytes(run)
    pairs = benchmark.pedantic(run, rounds=3, iterations=1)
    assert len(pairs.focal) > 0.99 * N_TREATED


def test_matching_step_5to1_with_replacement(benchmark, population) -> None:  # type: ignore[no-untyped-def]
    frame, score = population
    run = _core(frame, score, ratio=5, replace=True, caliper=False)
    benchmark.extra_info["peak_traced_mb"] = _peak_megabytes(run)
    pairs = benchmark.pedantic(run, rounds=3, iterations=1)
    assert len(pairs.focal) == 5 * N_TREATED


@pytest.mark.parametrize("options", [
    {"caliper": {"width": 0.2, "scale": "logit_sd"}},
    {"ratio": 5, "replace": True},
], ids=["1to1_caliper", "5to1_replace"])
def test_match_with_weights_and_balance(benchmark, population, options) -> None:  # type: ignore[no-untyped-def]
    """The whole match(): score checks, matching, weights, subclasses and the balance table."""
    frame, score = population
    spec = MatchingSpec(propensity={"column": "ps"}, **options)
    result = benchmark.pedantic(
        lambda: match(frame, treatment="treat", covariates=["x"], spec=spec, score=score),
        rounds=2, iterations=1,
    )
    assert result.n_treated_matched > 0.99 * N_TREATED


def test_causalml_against_jdl(benchmark) -> None:  # type: ignore[no-untyped-def]
    """causalml 0.18 NearestNeighborMatch (1:1, no replacement, caliper 0.2 SD of the score)
    against jdl's matching step on the same pool; the ratio goes into extra_info."""
    from causalml.match import NearestNeighborMatch

    frame, score = _population(1_000, 100_000, 7)
    data = frame.assign(score=score, treat=frame["treat"].astype(int))
    matcher = NearestNeighborMatch(caliper=0.2, replace=False, ratio=1, shuffle=False, random_state=7)
    start = time.perf_counter()
    matched = matcher.match(data=data, treatment_col="treat", score_cols=["score"])
    causalml_seconds = time.perf_counter() - start

    treated = frame["treat"].to_numpy()
    focal_rows = np.flatnonzero(treated)
    order = focal_rows[np.argsort(-score[focal_rows], kind="stable")]
    n = len(frame)
    bound = Caliper(score, 0.2 * float(np.std(score)))

    def jdl_run() -> Any:
        return nearest_neighbour_pairs(
            focal=treated, eligible=np.ones(n, bool), distance=score,
            strata=np.zeros(n, np.int64), order=order, ratio=1, replace=False, caliper=bound,
        )

    pairs = benchmark.pedantic(jdl_run, rounds=5, iterations=1)
    jdl_seconds = benchmark.stats.stats.min
    benchmark.extra_info.update({
        "causalml_seconds": causalml_seconds,
        "jdl_seconds_min": jdl_seconds,
        "causalml_over_jdl": causalml_seconds / jdl_seconds,
        "causalml_matched_treated": int(matched["treat"].sum()),
        "jdl_matched_treated": len(pairs.focal),
    })
    print(f"\n[causalml] {causalml_seconds:.2f} s, jdl {jdl_seconds:.3f} s: "
          f"{causalml_seconds / jdl_seconds:.0f}x", end="")
    assert len(pairs.focal) >= int(matched["treat"].sum()) - 5
