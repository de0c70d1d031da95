"""Matchers: from a prepared matching problem to weights, subclasses and pairs.

Each matcher is registered under the name a spec's matching.method uses and
reads its own parameters from MatchingSpec (see jdl.spec.models.METHOD_KEYS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from jdl.errors import EvaluationCannotComplete, JdlUserError
from jdl.matching.nearest import Caliper, GeneralCriteria, nearest_neighbour_pairs
from jdl.matching.neighbourhood import WeightedPairs, kernel_pairs, radius_pairs
from jdl.matching.result import PAIR_COLUMNS
from jdl.matching.strata import cem_strata, quantile_subclasses, scoot
from jdl.matching.weights import (
    int64_with_missing,
    subclass_from_pairs,
    weights_from_pair_weights,
    weights_from_pairs,
    weights_from_subclass,
)
from jdl.registry import Registry
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
    covariates: pd.DataFrame | None = None  # raw covariate columns (coarsened exact matching)
    criteria: GeneralCriteria | None = None  # covariate calipers, Mahalanobis metric
    kernel_bandwidth: float | None = None  # absolute, for method kernel

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
    with_replacement: bool = False  # a comparison unit may serve several focal units


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


def effective_order(spec: MatchingSpec) -> str:
    """The order focal units choose in: as given, else MatchIt's default (ATC: smallest first)."""
    if "order" not in spec.model_fields_set and spec.estimand == "ATC":
        return "smallest"
    return spec.order


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


def _require_att_or_atc(problem: MatchingProblem, method: str) -> None:
    if problem.spec.estimand == "ATE":
        raise JdlUserError.single(
            "matching.estimand",
            f"{method} matching estimates the ATT or the ATC, not the ATE",
            value="ATE",
            allowed="ATT, ATC",
            hint="use method: subclass, exact or coarsened_exact for the ATE",
        )


def _pairs_assignment(
    problem: MatchingProblem,
    pair_focal: np.ndarray,
    pair_control: np.ndarray,
    pair_weight: np.ndarray,
    rank: np.ndarray,
    *,
    replace: bool,
    parameters: dict[str, Any],
) -> Assignment:
    focal = problem.focal
    n = len(focal)
    weights = weights_from_pair_weights(n, focal, pair_focal, pair_control, pair_weight)
    unit_subclass, pair_subclass = subclass_from_pairs(n, pair_focal, pair_control, replace=replace)
    att = problem.spec.estimand != "ATC"
    frame = pd.DataFrame(
        {
            "treated_row": pair_focal if att else pair_control,
            "control_row": pair_control if att else pair_focal,
            "subclass": pair_subclass,
            "treated_weight": np.ones(len(pair_weight)) if att else pair_weight,
            "control_weight": pair_weight if att else np.ones(len(pair_weight)),
        },
        columns=PAIR_COLUMNS,
    )
    # by subclass, and within a subclass in the order the matches were made
    frame = frame.iloc[np.lexsort((rank, pair_subclass))].reset_index(drop=True)
    no_stratum = _no_stratum_count(problem, focal)
    n_focal_eligible = int((focal & problem.eligible).sum())
    n_focal_matched = len(np.unique(pair_focal))
    return Assignment(
        weights=weights,
        subclass=unit_subclass,
        pairs=frame,
        focal_no_exact_stratum=no_stratum,
        focal_no_match=n_focal_eligible - n_focal_matched - no_stratum,
        parameters=parameters,
        with_replacement=replace,
    )


def nearest_neighbour(problem: MatchingProblem) -> Assignment:
    """MatchIt's method = "nearest" (greedy; see jdl.matching.nearest for the rules)."""
    spec = problem.spec
    _require_att_or_atc(problem, "nearest-neighbour")
    focal = problem.focal
    order_name = effective_order(spec)
    order = processing_order(
        np.flatnonzero(focal & problem.eligible), problem.distance, order_name, spec.seed
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
        criteria=problem.criteria,
    )
    matches_per_focal = np.bincount(pairs.focal, minlength=len(focal))
    pair_weight = 1.0 / matches_per_focal[pairs.focal] if len(pairs.focal) else np.empty(0)
    return _pairs_assignment(
        problem, pairs.focal, pairs.control, pair_weight, pairs.rank,
        replace=spec.replace,
        parameters={
            "order": order_name,
            "ratio": spec.ratio,
            "replace": spec.replace,
            "mahalanobis": list(spec.mahalanobis),
            "covariate_calipers": {
                name: {"width": c.width, "scale": c.scale}
                for name, c in spec.covariate_calipers.items()
            },
        },
    )


def _pairs_rank(pairs: WeightedPairs, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs sorted by focal row, then nearest first; rank = position within the focal unit."""
    gap = np.abs(distance[pairs.focal] - distance[pairs.control])
    ordering = np.lexsort((pairs.control, gap, pairs.focal))
    focal, control, weight = pairs.focal[ordering], pairs.control[ordering], pairs.weight[ordering]
    counts = np.bincount(focal, minlength=len(distance))
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(focal)) - starts[focal] if len(focal) else np.empty(0, np.int64)
    return focal, control, weight, rank


def radius(problem: MatchingProblem) -> Assignment:
    """Radius matching: each focal unit takes every eligible comparison unit within the caliper.

    The caliper (matching.caliper) is the radius. Each of a focal unit's k
    matches has pair weight 1/k; comparison units may serve several focal units.
    """
    _require_att_or_atc(problem, "radius")
    if problem.caliper is None:
        raise JdlUserError.single(
            "matching.caliper",
            "radius matching needs a radius: set matching.caliper",
            hint="e.g. caliper: {width: 0.2, scale: logit_sd}",
        )
    if problem.criteria is not None:
        raise JdlUserError.single(
            "matching.method", "covariate calipers and Mahalanobis distances apply to nearest_neighbour",
            value="radius",
        )
    pairs = radius_pairs(
        problem.focal, problem.eligible, problem.caliper.values, problem.exact_strata, problem.caliper.width
    )
    focal, control, weight, rank = _pairs_rank(pairs, problem.distance)
    return _pairs_assignment(
        problem, focal, control, weight, rank, replace=True,
        parameters={"radius": problem.caliper.width},
    )


def kernel(problem: MatchingProblem) -> Assignment:
    """Kernel matching: each focal unit takes every comparison unit in the kernel's support.

    Pair weight K((d_c - d_f) / h) / sum over the focal unit's pairs, h the
    bandwidth (matching.kernel) in absolute distance units.
    """
    _require_att_or_atc(problem, "kernel")
    if problem.spec.caliper is not None:
        raise JdlUserError.single(
            "matching.caliper",
            "kernel matching is bounded by its bandwidth, not by a caliper",
            hint="remove matching.caliper and set matching.kernel.bandwidth",
        )
    bandwidth = problem.kernel_bandwidth
    assert bandwidth is not None
    pairs = kernel_pairs(
        problem.focal, problem.eligible, problem.distance, problem.exact_strata,
        bandwidth, problem.spec.kernel.type,
    )
    focal, control, weight, rank = _pairs_rank(pairs, problem.distance)
    return _pairs_assignment(
        problem, focal, control, weight, rank, replace=True,
        parameters={
            "kernel": problem.spec.kernel.type,
            "bandwidth": problem.spec.kernel.bandwidth,
            "bandwidth_scale": problem.spec.kernel.scale,
            "bandwidth_absolute": bandwidth,
        },
    )


def _renumber(codes: np.ndarray, keep: np.ndarray, by_first_row_of: np.ndarray) -> np.ndarray:
    """Codes kept -> 1.. in order of first appearance among `by_first_row_of` rows; others -> 0."""
    kept_codes = codes[by_first_row_of & keep]
    _, first = np.unique(kept_codes, return_index=True)
    ordered = kept_codes[np.sort(first)]
    mapping = np.zeros(int(codes.max()) + 1 if len(codes) else 1, dtype=np.int64)
    mapping[ordered] = np.arange(1, len(ordered) + 1)
    return np.where(keep, mapping[np.maximum(codes, 0)], 0)


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
            f"a caliper applies to nearest-neighbour or radius matching, not to method {method!r}",
            hint="remove matching.caliper or use method: nearest_neighbour",
        )


def _strata_with_both_groups(problem: MatchingProblem, codes: np.ndarray, method: str) -> Assignment:
    eligible = problem.eligible
    in_both = np.intersect1d(codes[eligible & problem.treated], codes[eligible & ~problem.treated])
    if len(in_both) == 0:
        raise EvaluationCannotComplete(
            "matching",
            f"{method}: no stratum holds both treated and comparison units, so nobody can be matched",
            hint="coarsen further (matching.cutpoints) or match on fewer covariates",
        )
    keep = eligible & np.isin(codes, in_both)
    return _from_subclass(problem, _renumber(codes, keep, problem.treated), {})


def exact(problem: MatchingProblem) -> Assignment:
    """MatchIt's method = "exact": one subclass per combination of covariate values with both groups."""
    _require_no_caliper(problem, "exact")
    result = _strata_with_both_groups(problem, problem.covariate_strata, "exact matching")
    return _with_parameters(result, {"strata_on": "all covariates"})


def coarsened_exact(problem: MatchingProblem) -> Assignment:
    """MatchIt's method = "cem": exact matching on coarsened covariates (default Sturges bins)."""
    _require_no_caliper(problem, "coarsened_exact")
    assert problem.covariates is not None
    codes = cem_strata(problem.covariates, dict(problem.spec.cutpoints))
    result = _strata_with_both_groups(problem, codes, "coarsened exact matching")
    cutpoints = {str(c): problem.spec.cutpoints.get(str(c), "sturges") for c in problem.covariates.columns
                 if pd.api.types.is_numeric_dtype(problem.covariates[c])
                 or pd.api.types.is_bool_dtype(problem.covariates[c])}
    return _with_parameters(result, {"cutpoints": cutpoints, "strata_used": int(result.subclass.max())})


def _with_parameters(assignment: Assignment, parameters: dict[str, Any]) -> Assignment:
    return Assignment(
        weights=assignment.weights,
        subclass=assignment.subclass,
        pairs=assignment.pairs,
        focal_no_exact_stratum=assignment.focal_no_exact_stratum,
        focal_no_match=assignment.focal_no_match,
        parameters={**assignment.parameters, **parameters},
        with_replacement=assignment.with_replacement,
    )


def subclass(problem: MatchingProblem) -> Assignment:
    """MatchIt's method = "subclass": quantile bins of the distance, then "scooting".

    Boundaries are quantiles of the distance among the treated (ATT), the
    controls (ATC) or everyone (ATE); a subclass without a treated or a control
    unit takes the nearest such unit from a neighbouring subclass (MatchIt's
    subclass_scoot, min.n = 1). Weights are MatchIt's subclass weights.
    """
    _require_no_caliper(problem, "subclass")
    count = problem.spec.subclasses
    estimand = problem.spec.estimand
    basis = {"ATT": problem.treated, "ATC": ~problem.treated}.get(
        estimand, np.ones(len(problem.treated), bool)
    )
    codes, cuts = quantile_subclasses(problem.distance, basis, problem.eligible, count)
    eligible = problem.eligible
    observed = np.unique(codes[eligible])
    table_has_gap = any(
        np.bincount(codes[eligible & group], minlength=count + 1)[observed].min() < 1
        for group in (problem.treated, ~problem.treated)
    )
    if table_has_gap:
        codes = codes.copy()
        codes[eligible] = scoot(codes[eligible], problem.treated[eligible], problem.distance[eligible])
    used = np.unique(codes[codes > 0])
    mapping = np.zeros(int(codes.max()) + 1, dtype=np.int64)
    mapping[used] = np.arange(1, len(used) + 1)
    codes = mapping[codes]
    return _from_subclass(
        problem,
        codes,
        {"subclasses": count, "subclasses_used": int(codes.max()), "boundaries": [float(c) for c in cuts]},
    )


MATCHERS.register("nearest_neighbour", nearest_neighbour)
MATCHERS.register("exact", exact)
MATCHERS.register("coarsened_exact", coarsened_exact)
MATCHERS.register("subclass", subclass)
MATCHERS.register("radius", radius)
MATCHERS.register("kernel", kernel)

__all__ = [
    "DEFAULT_SUBCLASSES",
    "MATCHERS",
    "Assignment",
    "MatchingProblem",
    "effective_order",
    "processing_order",
    "weights_from_pairs",
]
