"""Nearest-neighbour matching: hand-worked cases, MatchIt weights, and a brute-force reference."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from jdl.errors import JdlUserError
from jdl.matching import Caliper, match, nearest_neighbour_pairs
from jdl.matching.nearest import heap_select
from jdl.spec.models import MatchingSpec

# Hand-worked example (distance = the given score, link "logit"):
# treated rows 0 (0.80), 2 (0.77), 5 (0.45); controls 1 (0.74), 3 (0.68), 4 (0.50), 6 (0.30), 7 (0.785)
SCORES = np.array([0.80, 0.74, 0.77, 0.68, 0.50, 0.45, 0.30, 0.785])
TREATED = np.array([1, 0, 1, 0, 0, 1, 0, 0])
SEX = ["M", "F", "M", "M", "M", "M", "F", "M"]


def tiny_frame() -> pd.DataFrame:
    frame = pd.DataFrame(
        {"treat": TREATED, "x": [3.0, 1.0, 2.0, 5.0, 4.0, 0.0, 7.0, 6.0], "sex": SEX},
        index=[f"u{i}" for i in range(8)],
    )
    return frame


def tiny(**options: object) -> tuple[list[tuple[int, int]], object]:
    spec = MatchingSpec(propensity={"column": "ps", "link": "logit"}, **options)
    result = match(tiny_frame(), treatment="treat", covariates=["x", "sex"], spec=spec, score=SCORES)
    pairs = list(zip(result.pairs["treated_row"], result.pairs["control_row"], strict=True))
    return [(int(t), int(c)) for t, c in pairs], result


def test_one_to_one_without_replacement_largest_first() -> None:
    pairs, result = tiny(order="largest")
    # 0.80 takes 0.785; 0.77 then takes 0.74 (0.785 is used); 0.45 takes 0.50
    assert pairs == [(0, 7), (2, 1), (5, 4)]
    units = result.units
    assert list(units.index) == [f"u{i}" for i in range(8)]
    assert units["subclass"].tolist() == [1, 2, 2, pd.NA, 3, 3, pd.NA, 1]
    assert units["weight"].tolist() == [1, 1, 1, 0, 1, 1, 0, 1]
    assert result.pairs["subclass"].tolist() == [1, 2, 3]
    assert (result.n_treated, result.n_treated_matched, result.n_control, result.n_control_matched) == (3, 3, 5, 3)


def test_order_changes_who_gets_the_contested_control() -> None:
    pairs, _ = tiny(order="smallest")
    # 0.45 first takes 0.50; 0.77 takes 0.785; 0.80 is left with 0.74
    assert pairs == [(0, 1), (2, 7), (5, 4)]
    data_pairs, _ = tiny(order="data")
    assert data_pairs == [(0, 7), (2, 1), (5, 4)]


def test_with_replacement_controls_are_reused_and_weighted() -> None:
    pairs, result = tiny(replace=True)
    assert pairs == [(0, 7), (2, 7), (5, 4)]
    weights = result.units["weight"].to_numpy()
    # control 7 matched twice (1 + 1), control 4 once; rescaled to sum to 2 distinct controls
    assert weights[7] == pytest.approx(4 / 3)
    assert weights[4] == pytest.approx(2 / 3)
    assert weights[[0, 2, 5]].tolist() == [1, 1, 1]
    # as in MatchIt, controls get no subclass with replacement; the pairs keep the groups
    assert result.units["subclass"].isna().tolist() == [False, True, False, True, True, False, True, True]
    assert result.replace


def test_caliper_drops_the_treated_unit_without_a_close_control() -> None:
    pairs, result = tiny(caliper={"width": 0.04, "scale": "absolute"})
    assert pairs == [(0, 7), (2, 1)]  # 0.45 -> 0.50 is 0.05 > 0.04
    assert result.caliper_absolute == pytest.approx(0.04)
    assert result.discarded.focal_no_match == 1
    assert result.units["weight"].tolist()[5] == 0
    _, sd_result = tiny(caliper={"width": 0.2, "scale": "sd"})
    assert sd_result.caliper_absolute == pytest.approx(0.2 * np.std(SCORES, ddof=1))
    _, logit_result = tiny(caliper={"width": 0.2, "scale": "logit_sd"})
    logits = np.log(SCORES / (1 - SCORES))
    assert logit_result.caliper_absolute == pytest.approx(0.2 * np.std(logits, ddof=1))


def test_exact_strata_restrict_the_pool() -> None:
    frame = tiny_frame()
    frame["sex"] = ["M", "F", "M", "M", "M", "M", "F", "M"]
    pairs, _ = tiny(exact=["sex"])
    # 0.80 (M) takes 0.785 (M); 0.77 (M) cannot take 0.74 (F) so takes 0.68; 0.45 takes 0.50
    assert pairs == [(0, 7), (2, 3), (5, 4)]


def test_ratio_two_matches_in_passes_with_matchit_weights() -> None:
    pairs, result = tiny(ratio=2)
    # pass 1: 0->7, 2->1, 5->4; pass 2: 0->3 (0.68), 2->6 (0.30), 5 finds nothing left
    assert pairs == [(0, 7), (0, 3), (2, 1), (2, 6), (5, 4)]
    assert result.pairs["control_weight"].tolist() == [0.5, 0.5, 0.5, 0.5, 1.0]
    weights = result.units["weight"].to_numpy()
    # raw control weights 1/2,1/2,1/2,1/2,1 sum to 3; rescaled to sum to 5 matched controls
    np.testing.assert_allclose(weights[[7, 3, 1, 6]], 5 / 6)
    assert weights[4] == pytest.approx(5 / 3)
    assert weights[~TREATED.astype(bool)].sum() == pytest.approx(5)
    assert result.effective_sample_size_control == pytest.approx(25 / (4 * 25 / 36 + 25 / 9))


def test_atc_swaps_the_focal_group() -> None:
    pairs, result = tiny(estimand="ATC", replace=True)
    assert result.estimand == "ATC"
    # each control takes its nearest treated unit; control 7 (0.785) is 0.015 from both
    # 0.80 (row 0) and 0.77 (row 2) and, as in MatchIt, takes the one first in the data
    assert abs(SCORES[0] - SCORES[7]) == abs(SCORES[7] - SCORES[2])
    assert sorted(pairs) == sorted([(0, 7), (2, 1), (2, 3), (5, 4), (5, 6)])
    weights = result.units["weight"].to_numpy()
    assert weights[[1, 3, 4, 6, 7]].tolist() == [1, 1, 1, 1, 1]
    # treated 0 used once, 2 and 5 twice: raw 1, 2, 2, rescaled to sum to 3 units
    np.testing.assert_allclose(weights[[0, 2, 5]], [0.6, 1.2, 1.2])
    assert result.parameters["order"] == "smallest"  # MatchIt's default for the ATC


def test_discard_control_outside_treated_range() -> None:
    _, result = tiny(discard="control")
    assert result.units["discarded"].tolist() == [False] * 6 + [True, False]  # 0.30 < 0.45
    assert result.discarded.control_outside_support == 1


def test_ate_is_refused_for_nearest_neighbour() -> None:
    with pytest.raises(JdlUserError, match="ATT or the ATC"):
        tiny(estimand="ATE")


def test_unknown_method_lists_choices() -> None:
    with pytest.raises(JdlUserError, match="nearest_neighbour"):
        tiny(method="optimal")


def _reference_pairs(focal, eligible, distance, strata, order, ratio, replace, caliper):
    """Brute force of MatchIt's nn_matchC: O(n) scans of the pool in data order.

    Without replacement: per pass, each focal unit (in order) takes the available unit
    with the smallest |difference|, the first in the data among equal ones. With
    replacement: the k units std::partial_sort selects (heap_select, checked against
    libstdc++ separately).
    """
    chosen: dict[int, list[int]] = {int(u): [] for u in order}
    available = {int(c) for c in np.flatnonzero(eligible & ~focal)}
    for rank in range(1 if replace else ratio):
        for u in map(int, order):
            pool = [
                int(c) for c in np.flatnonzero(eligible & ~focal)
                if strata[c] == strata[u] and int(c) not in chosen[u]
                and (replace or int(c) in available)
                and (caliper is None or abs(caliper.values[u] - caliper.values[c]) <= caliper.width)
            ]
            if not pool or len(chosen[u]) < rank:
                continue
            gaps = [abs(distance[c] - distance[u]) for c in pool]
            if replace:
                picks = [pool[i] for i in heap_select(gaps, ratio)]
            else:
                picks = [pool[int(np.argmin(gaps))]]
            chosen[u].extend(picks)
            available.difference_update(picks)
    return sorted((u, c, r) for u, cs in chosen.items() for r, c in enumerate(cs))


def test_heap_select_keeps_what_libstdcxx_partial_sort_keeps() -> None:
    # sets kept by std::partial_sort (g++ 12, libstdc++), printed by a one-off C++ program;
    # among tied values they are not simply the first positions
    cases = [
        (5, [0, 5, 1, 5, 2, 5, 0, 2, 0, 3, 2], [0, 2, 6, 7, 8]),
        (4, [4, 2, 2, 2, 1, 4, 1, 3], [1, 3, 4, 6]),
        (5, [1, 0, 1, 1, 2, 5, 5, 3, 2, 4, 0, 0], [0, 1, 3, 10, 11]),
    ]
    for k, values, kept in cases:
        assert sorted(heap_select([float(v) for v in values], k)) == kept
    assert heap_select([0.5, 0.2], 5) == [0, 1]


@pytest.mark.parametrize("seed", range(40))
def test_agrees_with_brute_force_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 40))
    focal = rng.random(n) < 0.35
    distance = rng.integers(0, 12, n) / 10.0  # many ties on purpose
    strata = rng.integers(0, 2 if seed % 2 else 1, n)
    eligible = rng.random(n) < 0.9
    order = np.flatnonzero(focal & eligible)
    rng.shuffle(order)
    ratio = int(rng.integers(1, 4))
    replace = bool(seed % 3 == 0)
    caliper = Caliper(distance, 0.25) if seed % 4 == 1 else None
    ours = nearest_neighbour_pairs(
        focal=focal, eligible=eligible, distance=distance, strata=strata,
        order=order, ratio=ratio, replace=replace, caliper=caliper,
    )
    got = sorted(zip(ours.focal.tolist(), ours.control.tolist(), ours.rank.tolist(), strict=True))
    expected = _reference_pairs(focal, eligible, distance, strata, order, ratio, replace, caliper)
    if replace:
        # with replacement each unit's set of matches is what matters (ranks follow the heap)
        assert sorted((u, c) for u, c, _ in got) == sorted((u, c) for u, c, _ in expected)
    else:
        assert got == expected


@pytest.mark.parametrize("seed", range(12))
def test_with_replacement_ties_and_a_caliper_on_the_linear_scale_agree_with_brute_force(seed: int) -> None:
    # long runs of equal distances send focal units down the exact (heap replay) path; the
    # caliper is on other values that order the units as the distance does (the linear
    # predictor when matching on the score), in two or three exact strata
    rng = np.random.default_rng(100 + seed)
    n = 300
    focal = rng.random(n) < 0.2
    distance = rng.integers(0, 4, n) / 10.0
    strata = rng.integers(0, 2 + seed % 2, n)
    eligible = rng.random(n) < 0.95
    order = np.flatnonzero(focal & eligible)
    ratio = int(rng.integers(1, 6))
    caliper = Caliper(3.0 * np.log(distance + 0.05), 0.9) if seed % 3 else None
    ours = nearest_neighbour_pairs(
        focal=focal, eligible=eligible, distance=distance, strata=strata,
        order=order, ratio=ratio, replace=True, caliper=caliper,
    )
    got = sorted(zip(ours.focal.tolist(), ours.control.tolist(), strict=True))
    expected = _reference_pairs(focal, eligible, distance, strata, order, ratio, True, caliper)
    assert got == sorted((u, c) for u, c, _ in expected)


def test_random_order_is_seeded() -> None:
    rng = np.random.default_rng(5)
    n = 400
    frame = pd.DataFrame({"treat": rng.random(n) < 0.4, "x": rng.normal(size=n)})
    score = rng.uniform(0.2, 0.8, n)

    def run(seed: int) -> list[int]:
        spec = MatchingSpec(order="random", seed=seed, propensity={"column": "ps"})
        return match(frame, treatment="treat", covariates=["x"], spec=spec, score=score).pairs[
            "control_row"
        ].tolist()

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_timing_5000_treated_against_300000_controls(capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(2013)
    n_treated, n_control = 5_000, 300_000
    n = n_treated + n_control
    treated = np.r_[np.ones(n_treated, bool), np.zeros(n_control, bool)]
    frame = pd.DataFrame(
        {"treat": treated, "x": rng.normal(size=n) + 0.5 * treated, "sex": rng.choice(["F", "M"], n)}
    )
    score = 1 / (1 + np.exp(-(-4 + 0.5 * frame["x"].to_numpy())))
    timings = {}
    for label, options in {
        "1:1 no replacement, caliper, exact sex": {"caliper": {"width": 0.2}, "exact": ["sex"]},
        "5:1 with replacement": {"ratio": 5, "replace": True},
    }.items():
        spec = MatchingSpec(propensity={"column": "ps"}, **options)
        start = time.perf_counter()
        result = match(frame, treatment="treat", covariates=["x", "sex"], spec=spec, score=score)
        timings[label] = time.perf_counter() - start
        assert result.n_treated_matched > 4_900
    start = time.perf_counter()
    match(frame, treatment="treat", covariates=["x", "sex"], spec=MatchingSpec())
    timings["1:1 including logistic fit"] = time.perf_counter() - start
    with capsys.disabled():
        for label, seconds in timings.items():
            print(f"\n[timing] 5,000 vs 300,000, {label}: {seconds:.2f} s", end="")


def test_score_column_in_the_frame_is_used_when_no_score_is_passed() -> None:
    frame = tiny_frame().assign(ps=SCORES)
    spec = MatchingSpec(propensity={"column": "ps", "link": "logit"})
    result = match(frame, treatment="treat", covariates=["x", "sex"], spec=spec)
    assert result.propensity.model == "column"
    assert result.pairs["control_row"].tolist() == [7, 1, 4]
    linear = match(frame, treatment="treat", covariates=["x", "sex"], spec=MatchingSpec(
        propensity={"column": "ps", "link": "linear_logit"}))
    np.testing.assert_allclose(linear.units["distance"], np.log(SCORES / (1 - SCORES)))
