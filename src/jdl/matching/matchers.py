"""Matchers: from a prepared matching problem to weights, subclasses and pairs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from jdl.errors import JdlUserError
from jdl.matching.nearest import Caliper, nearest_neighbour_pairs
from jdl.matching.registry import Registry
from jdl.matching.result import PAIR_COLUMNS
from jdl.matching.weights import (
    int64_with_missing,
    subclass_from_pairs,
    weights_from_pairs,
    weights_from_subclass,
)
from jdl.spec.models import MatchingSpec

DEFAULT_SUBCLASSES = 6  # MatchIt's default for method = "subclass"


@dataclass(frozen=True)
class MatchingProblem:
    """Everything a matcher needs, as arrays over the rows of the input frame."""

    treated: np.ndarray
    distance: np.ndarray
    eligible: np.ndarray  # not discarded for lack of common support
    caliper: Caliper | None
    exact_strata: np.ndarray  # int code per row from spec.exact (all 0 when none)
    covariate_strata: np.ndarray  # int code per row from all covariates' raw values
    spec: MatchingSpec

    @property
    def focal(self) -> np.ndarray:
        return self.treated if self.spec.estimand != "ATC" else ~self.treated


@dataclass(frozen=True)
class Assignment:
    weights: np.ndarray
    subclass: Any  # pandas Int64 array
    pairs: pd.DataFrame
    focal_no_exact_stratum: int = 0
    focal_no_match: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)


Matcher = Callable[[MatchingProblem], Assignment]

MATCHERS: Registry[Matcher] = Registry("matching method", "matching.method")


def empty_pairs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "treated_row": np.empty(0, np.int64),
            "control_row": np.empty(0, np.int64),
            "subclass": np.empty(0, np.int64),
            "treated_weight": np.empty(0, float),
            "control_weight": np.empty(0, float),
        },
        columns=PAIR_COLUMNS,
    )


def processing_order(focal_rows: np.ndarray, distance: np.ndarray, order: str, seed: int) -> np.ndarray:
    """Focal rows in the order they choose; ties keep input order (R's order() is stable)."""
    if order == "largest":
        return focal_rows[np.argsort(-distance[focal_rows], kind="stable")]
    if order == "smallest":
        return focal_rows[np.argsort(distance[focal_rows], kind="stable")]
    if order == "random":
        return focal_rows[np.random.default_rng(seed).permutation(len(focal_rows))]
    return focal_rows


def _no_stratum_count(problem: MatchingProblem, focal: np.ndarray) -> int:
    """Eligible focal units whose exact stratum has no eligible comparison unit."""
    pool_strata = np.unique(problem.exact_strata[problem.eligible & ~focal])
    focal_strata = problem.exact_strata[problem.eligible & focal]
    return int((~np.isin(focal_strata, pool_strata)).sum())


def nearest_neighbour(problem: MatchingProblem) -> Assignment:
    spec = problem.spec
    if spec.estimand == "ATE":
        raise JdlUserError.single(
            "matching.estimand",
            "nearest-neighbour matching estimates the ATT or the ATC, not the ATE",
            value="ATE",
            allowed="ATT, ATC",
            hint="use method: subclass (or exact) for the ATE",
        )
    focal = problem.focal
    n = len(focal)
    order = processing_order(
        np.flatnonzero(focal & problem.eligible), problem.distance, spec.order, spec.seed
    )
    pairs = nearest_neighbour_pairs(
        focal=focal,
        eligible=problem.eligible,
        distance=problem.distance,
        strata=problem.exact_strata,
        order=order,
        ratio=spec.ratio,
        replace=spec.replace,
        caliper=problem.caliper,
    )
    weights, pair_weight = weights_from_pairs(n, focal, pairs.focal, pairs.control)
    unit_subclass, pair_subclass = subclass_from_pairs(
        n, pairs.focal, pairs.control, replace=spec.replace
    )
    att = spec.estimand == "ATT"
    frame = pd.DataFrame(
        {
            "treated_row": pairs.focal if att else pairs.control,
            "control_row": pairs.control if att else pairs.focal,
            "subclass": pair_subclass,
            "treated_weight": np.ones(len(pair_weight)) if att else pair_weight,
            "control_weight": pair_weight if att else np.ones(len(pair_weight)),
        },
        columns=PAIR_COLUMNS,
    )
    # by subclass, and within a subclass in the order the matches were made
    frame = frame.iloc[np.lexsort((pairs.rank, pair_subclass))]
    frame = frame.reset_index(drop=True)
    no_stratum = _no_stratum_count(problem, focal)
    n_focal_eligible = int((focal & problem.eligible).sum())
    n_focal_matched = len(np.unique(pairs.focal))
    return Assignment(
        weights=weights,
        subclass=unit_subclass,
        pairs=frame,
        focal_no_exact_stratum=no_stratum,
        focal_no_match=n_focal_eligible - n_focal_matched - no_stratum,
        parameters={"order": spec.order, "ratio": spec.ratio, "replace": spec.replace},
    )


def _renumber(codes: np.ndarray, keep: np.ndarray, by_first_row_of: np.ndarray) -> np.ndarray:
    """Codes kept -> 1.. in order of first appearance among `by_first_row_of` rows; others -> 0."""
    kept_codes = codes[by_first_row_of & keep]
    _, first = np.unique(kept_codes, return_index=True)
    ordered = kept_codes[np.sort(first)]
    mapping = np.zeros(int(codes.max()) + 1 if len(codes) else 1, dtype=np.int64)
    mapping[ordered] = np.arange(1, len(ordered) + 1)
    out = np.where(keep, mapping[np.maximum(codes, 0)], 0)
    return out


def _from_subclass(problem: MatchingProblem, subclass: np.ndarray, params: dict[str, Any]) -> Assignment:
    weights = weights_from_subclass(subclass, problem.treated, problem.spec.estimand)
    unit_subclass = int64_with_missing(subclass)
    focal = problem.focal
    lost = int((focal & problem.eligible & (subclass == 0)).sum())
    return Assignment(
        weights=weights,
        subclass=unit_subclass,
        pairs=empty_pairs(),
        focal_no_exact_stratum=lost,
        parameters=params,
    )


def _require_no_caliper(problem: MatchingProblem, method: str) -> None:
    if problem.spec.caliper is not None:
        raise JdlUserError.single(
            "matching.caliper",
            f"a caliper applies to nearest-neighbour matching, not to method {method!r}",
            hint="remove matching.caliper or use method: nearest_neighbour",
        )


def exact(problem: MatchingProblem) -> Assignment:
    """MatchIt's method = "exact": one subclass per combination of covariate values with both groups."""
    _require_no_caliper(problem, "exact")
    codes = problem.covariate_strata
    eligible = problem.eligible
    in_both = np.intersect1d(
        codes[eligible & problem.treated], codes[eligible & ~problem.treated]
    )
    keep = eligible & np.isin(codes, in_both)
    subclass = _renumber(codes, keep, problem.treated)
    return _from_subclass(problem, subclass, {"strata_on": "all covariates"})


def _merge_one_sided(subclass: np.ndarray, treated: np.ndarray, count: int) -> np.ndarray:
    """Merge any subclass lacking a treated or a control unit into its neighbour.

    MatchIt instead moves single units between subclasses ("scoots"); the two
    only differ in small samples where a quantile bin has one group only.
    """
    subclass = subclass.copy()
    while True:
        labels = np.unique(subclass[subclass > 0])
        n1 = np.array([np.count_nonzero(treated & (subclass == s)) for s in labels])
        n0 = np.array([np.count_nonzero(~treated & (subclass == s)) for s in labels])
        bad = np.flatnonzero((n1 == 0) | (n0 == 0))
        if len(bad) == 0 or len(labels) == 1:
            break
        b = bad[0]
        target = labels[b + 1] if b + 1 < len(labels) else labels[b - 1]
        subclass[subclass == labels[b]] = target
    labels = np.unique(subclass[subclass > 0])
    mapping = np.zeros(count + 2, dtype=np.int64)
    mapping[labels] = np.arange(1, len(labels) + 1)
    return mapping[subclass]


def subclass(problem: MatchingProblem) -> Assignment:
    """MatchIt's method = "subclass": quantile bins of the distance (focal group, or all for the ATE)."""
    _require_no_caliper(problem, "subclass")
    count = DEFAULT_SUBCLASSES
    eligible = problem.eligible
    basis = eligible if problem.spec.estimand == "ATE" else eligible & problem.focal
    cuts = np.quantile(problem.distance[basis], np.linspace(0, 1, count + 1))
    bins = np.clip(np.searchsorted(cuts, problem.distance, side="right"), 1, count)
    bins = np.where(eligible, bins, 0)
    merged = _merge_one_sided(bins, problem.treated, count)
    return _from_subclass(problem, merged, {"subclasses": count, "subclasses_used": int(merged.max())})


MATCHERS.register("nearest_neighbour", nearest_neighbour)
MATCHERS.register("exact", exact)
MATCHERS.register("subclass", subclass)
