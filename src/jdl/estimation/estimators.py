"""Estimators of the treatment-comparison difference on a matched sample."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from jdl.errors import EvaluationCannotComplete, JdlUserError
from jdl.estimation.power import min_detectable_effect, people_needed, pooled_sd
from jdl.estimation.result import EstimateResult
from jdl.estimation.variance import cluster_bootstrap, weighted_difference
from jdl.matching import MatchingResult, Registry
from jdl.matching.balance import weighted_variance
from jdl.matching.weights import effective_sample_size
from jdl.spec.models import EstimatorSpec

OutcomeKind = Literal["binary", "count", "continuous"]
Estimator = Callable[[pd.Series, MatchingResult, EstimatorSpec, OutcomeKind], EstimateResult]

ESTIMATORS: Registry[Estimator] = Registry("estimator", "estimator.method")


@dataclass(frozen=True)
class AnalysisData:
    """Rows entering the regression: outcome, group, weight and cluster ids."""

    y: np.ndarray
    treated: np.ndarray
    weights: np.ndarray
    clusters: list[np.ndarray] | None
    bootstrap_clusters: np.ndarray
    description: str
    resampled: str = "subclasses (matched sets)"


def _check_outcome(outcome: pd.Series, kind: str, where: str) -> np.ndarray:
    values = pd.to_numeric(outcome, errors="coerce").to_numpy(dtype=float)
    if kind == "binary":
        present = values[~np.isnan(values)]
        bad = ~np.isin(present, (0.0, 1.0))
        if bad.any():
            raise JdlUserError.single(
                where, f"{int(bad.sum())} values of a binary outcome are not 0 or 1",
                value=float(present[bad][0]), allowed="0, 1 or missing",
            )
    return values


def _units_view(y: np.ndarray, matching: MatchingResult, clustered: bool) -> AnalysisData:
    units = matching.units
    weights = units["weight"].to_numpy(float)
    keep = (weights > 0) & ~np.isnan(y)
    subclass = units["subclass"].to_numpy(dtype=np.int64, na_value=0)[keep]
    rows = np.flatnonzero(keep)
    has_subclasses = matching.method != "subclass"
    use_clusters = clustered and has_subclasses
    return AnalysisData(
        y=y[keep],
        treated=units["treated"].to_numpy(bool)[keep],
        weights=weights[keep],
        clusters=[subclass] if use_clusters else None,
        bootstrap_clusters=subclass if has_subclasses else rows,
        description=(
            "clustered by subclass (matched set)" if use_clusters else "heteroskedasticity-robust (HC1)"
        ),
        resampled="subclasses (matched sets)" if has_subclasses else "units",
    )


def _pairs_view(y: np.ndarray, matching: MatchingResult) -> AnalysisData:
    """MatchIt's get_matches() layout: each subclass's focal unit once, each match once."""
    pairs = matching.pairs
    att = matching.estimand != "ATC"
    focal_col, other_col = ("treated_row", "control_row") if att else ("control_row", "treated_row")
    other_weight_col = "control_weight" if att else "treated_weight"
    focal = pairs.drop_duplicates("subclass")
    rows = np.concatenate([focal[focal_col].to_numpy(), pairs[other_col].to_numpy()])
    subclass = np.concatenate([focal["subclass"].to_numpy(), pairs["subclass"].to_numpy()])
    weights = np.concatenate([np.ones(len(focal)), pairs[other_weight_col].to_numpy(float)])
    is_focal = np.concatenate([np.ones(len(focal), bool), np.zeros(len(pairs), bool)])
    treated = is_focal if att else ~is_focal
    outcome = y[rows]
    keep = ~np.isnan(outcome)
    return AnalysisData(
        y=outcome[keep],
        treated=treated[keep],
        weights=weights[keep],
        clusters=[subclass[keep], rows[keep]],
        bootstrap_clusters=subclass[keep],
        description="two-way clustered by subclass and unit (matching with replacement)",
    )


def _significance_level(spec: EstimatorSpec) -> float:
    return 1.0 - spec.confidence


def _power(
    binary: bool, data: AnalysisData, significant: bool, alpha: float
) -> tuple[int | None, float | None, float]:
    t, c = data.treated, ~data.treated
    n_t = float(t.sum())
    mean_t = float(np.average(data.y[t], weights=data.weights[t]))
    mean_c = float(np.average(data.y[c], weights=data.weights[c]))
    ess_c = effective_sample_size(data.weights[c])
    var_t = weighted_variance(data.y[t], data.weights[t], binary)
    var_c = weighted_variance(data.y[c], data.weights[c], binary)
    sd = pooled_sd(var_t, n_t, var_c, ess_c)
    needed = None if significant else people_needed(
        binary=binary, treatment_mean=mean_t, comparison_mean=mean_c, sd=sd, alpha=alpha
    )
    mde = min_detectable_effect(
        binary=binary, comparison_mean=mean_c, sd=sd, n_treatment=n_t, n_comparison=ess_c, alpha=alpha
    )
    return needed, mde, ess_c


def _result(
    data: AnalysisData,
    *,
    spec: EstimatorSpec,
    kind: OutcomeKind,
    estimand: str,
    method: str,
    variance_method: str,
    n_treatment: int,
    n_comparison: int,
    extra: dict[str, Any],
) -> EstimateResult:
    if n_treatment == 0 or n_comparison == 0:
        raise EvaluationCannotComplete(
            "estimator",
            f"the outcome is available for {n_treatment} treated and {n_comparison} comparison "
            "units with weight > 0; both groups are needed",
        )
    alpha = _significance_level(spec)
    fit = weighted_difference(data.y, data.treated, data.weights, data.clusters)
    parameters: dict[str, Any] = {
        "variance": variance_method,
        "confidence": spec.confidence,
        "power": 0.8,
        "power_alpha": alpha,
        **extra,
    }
    if variance_method == "bootstrap":
        draws = cluster_bootstrap(
            data.y, data.treated, data.weights, data.bootstrap_clusters,
            reps=spec.variance.reps, seed=spec.variance.seed,
        )
        finite = draws[np.isfinite(draws)]
        se = float(np.std(finite, ddof=1))
        ci_low, ci_high = (float(q) for q in np.quantile(finite, [alpha / 2, 1 - alpha / 2]))
        p_value = float(min(1.0, 2 * min(np.mean(finite <= 0), np.mean(finite >= 0))))
        significant = bool(ci_low > 0 or ci_high < 0)
        parameters |= {
            "reps": spec.variance.reps,
            "seed": spec.variance.seed,
            "failed_replicates": int(len(draws) - len(finite)),
            "interval": "percentile",
            "resampled": data.resampled,
        }
    else:
        critical = float(stats.t.ppf(1 - alpha / 2, fit.df))
        se = fit.se
        ci_low, ci_high = fit.difference - critical * se, fit.difference + critical * se
        statistic = fit.difference / se if se > 0 else np.inf * np.sign(fit.difference)
        p_value = float(2 * stats.t.sf(abs(statistic), fit.df)) if se > 0 else float(fit.difference == 0)
        significant = bool(p_value < alpha)
        parameters |= {
            "standard_error": data.description,
            "clusters": list(fit.clusters),
            "reference_distribution": f"t with {fit.df} df (n - 2)",
        }
    needed, mde, ess_c = _power(kind == "binary", data, significant, alpha)
    return EstimateResult(
        estimand=estimand,
        method=method,
        parameters=parameters,
        treatment_mean=fit.treatment_mean,
        comparison_mean=fit.comparison_mean,
        difference=fit.difference,
        se=se,
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        p_value=p_value,
        significant=significant,
        confidence=spec.confidence,
        n_treatment=n_treatment,
        n_comparison=n_comparison,
        people_needed=needed,
        min_detectable_effect=mde,
        effective_n_comparison=ess_c,
    )


def weighted_difference_estimator(
    outcome: pd.Series, matching: MatchingResult, spec: EstimatorSpec, kind: OutcomeKind
) -> EstimateResult:
    """Treated mean minus the matching-weighted comparison mean (WLS on treatment)."""
    y = _check_outcome(outcome, kind, "outcome")
    variance_method = spec.variance.method
    if variance_method == "robust":
        data = _units_view(y, matching, clustered=False)
    elif matching.replace:
        data = _pairs_view(y, matching)
    else:
        data = _units_view(y, matching, clustered=True)
    units = matching.units
    counted = (units["weight"].to_numpy(float) > 0) & ~np.isnan(y)
    treated = units["treated"].to_numpy(bool)
    return _result(
        data,
        spec=spec,
        kind=kind,
        estimand=matching.estimand,
        method="weighted_difference",
        variance_method=variance_method,
        n_treatment=int((counted & treated).sum()),
        n_comparison=int((counted & ~treated).sum()),
        extra={"matching_method": matching.method, "outcome_kind": kind},
    )


ESTIMATORS.register("weighted_difference", weighted_difference_estimator)


def estimate(
    outcome: pd.Series,
    matching: MatchingResult,
    spec: EstimatorSpec,
    *,
    kind: OutcomeKind,
) -> EstimateResult:
    """Estimate the difference in `outcome` (aligned with matching.units; NaN = not applicable)."""
    if not outcome.index.equals(matching.units.index):
        raise ValueError("outcome must have the same index as matching.units")
    return ESTIMATORS[spec.method](outcome, matching, spec, kind)


def naive_difference(
    outcome: pd.Series, treated: pd.Series, spec: EstimatorSpec, *, kind: OutcomeKind
) -> EstimateResult:
    """Unmatched, unweighted difference in means with an HC1 robust standard error."""
    y = _check_outcome(outcome, kind, "outcome")
    group = np.asarray(treated).astype(bool)
    keep = ~np.isnan(y)
    data = AnalysisData(
        y=y[keep],
        treated=group[keep],
        weights=np.ones(int(keep.sum())),
        clusters=None,
        bootstrap_clusters=np.arange(int(keep.sum())),
        description="heteroskedasticity-robust (HC1)",
        resampled="units",
    )
    return _result(
        data,
        spec=spec,
        kind=kind,
        estimand="unadjusted",
        method="naive_difference",
        variance_method="robust",
        n_treatment=int((keep & group).sum()),
        n_comparison=int((keep & ~group).sum()),
        extra={"outcome_kind": kind},
    )
