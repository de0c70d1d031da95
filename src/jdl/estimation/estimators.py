"""Estimators of the treatment-comparison difference on a matched sample.

Every estimator is registered in ESTIMATORS under the name the spec's
estimator.method uses and is called as
estimator(outcome, matching, spec, kind, covariates) -> EstimateResult.
weighted_difference and regression_adjustment work on the matched sample with
the matching weights (see jdl.estimation.variance for their standard errors);
ipw and aipw (jdl.estimation.weighting) and the causalml meta-learners
(jdl.estimation.meta_learners) re-weight or model the whole analysis sample
(every unit inside common support) and use the matching only for its
propensity score and its discards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from jdl.errors import EvaluationCannotComplete, JdlUserError
from jdl.estimation.power import min_detectable_effect, people_needed, pooled_sd
from jdl.estimation.result import EstimateResult
from jdl.estimation.variance import (
    RobustType,
    bootstrap_interval,
    cluster_bootstrap,
    cluster_bootstrap_wls,
    jackknife_difference,
    jackknife_wls,
    pigeonhole_bootstrap_wls,
    weighted_difference,
    weighted_regression,
)
from jdl.matching import MatchingResult, design_matrix
from jdl.matching.balance import unit_weighted_variance, weighted_variance
from jdl.matching.weights import effective_sample_size, unit_effective_sample_size
from jdl.registry import Registry
from jdl.spec.models import EstimatorSpec

OutcomeKind = Literal["binary", "count", "continuous"]


class Estimator(Protocol):
    def __call__(
        self,
        outcome: pd.Series,
        matching: MatchingResult,
        spec: EstimatorSpec,
        kind: OutcomeKind,
        covariates: pd.DataFrame | None = None,
    ) -> EstimateResult: ...


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
    robust_type: RobustType = "HC1"  # the sandwich used when there are no clusters
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # positions in units
    # with replacement: each comparison row's unit (its row position), -1 for treated rows; the
    # bootstrap then resamples sets and units (pigeonhole) instead of sets alone
    bootstrap_units: np.ndarray | None = None
    unit_weights: bool = False  # every weight is 1 (the arithmetic can skip multiplying by them)


def check_outcome(outcome: pd.Series, kind: str, where: str) -> np.ndarray:
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


# matchers whose strata are not pairs: analysed with HC3, as in MatchIt's guide
STRATIFYING_MATCHERS = frozenset({"exact", "coarsened_exact", "subclass"})


def _units_view(y: np.ndarray, matching: MatchingResult, clustered: bool) -> AnalysisData:
    units = matching.units
    weights = units["weight"].to_numpy(float)
    keep = (weights > 0) & ~np.isnan(y)
    subclass = units["subclass"].to_numpy(dtype=np.int64, na_value=0)[keep]
    rows = np.flatnonzero(keep)
    has_subclasses = matching.method != "subclass"
    stratified = matching.method in STRATIFYING_MATCHERS
    use_clusters = clustered and not stratified
    # MatchIt's "Estimating effects" guide: strata that are not pairs (exact, CEM,
    # subclassification) are too few, too large clusters; it uses HC3 there instead
    robust_type: RobustType = "HC3" if clustered and stratified else "HC1"
    return AnalysisData(
        y=y[keep],
        treated=units["treated"].to_numpy(bool)[keep],
        weights=weights[keep],
        clusters=[subclass] if use_clusters else None,
        bootstrap_clusters=subclass if has_subclasses else rows,
        description=(
            "clustered by subclass (matched set)" if use_clusters
            else f"heteroskedasticity-robust ({robust_type})"
        ),
        resampled="subclasses (matched sets)" if has_subclasses else "units",
        rows=rows,
        robust_type=robust_type,
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
        resampled="subclasses (matched sets) and comparison units, crossed (pigeonhole bootstrap)",
        rows=rows[keep],
        bootstrap_units=np.where(is_focal, -1, rows)[keep],
    )


def significance_level(spec: EstimatorSpec) -> float:
    return 1.0 - spec.confidence


@dataclass(frozen=True)
class PowerInputs:
    """What the power calculation needs: outcomes, groups and weights of the analysed sample."""

    y: np.ndarray
    treated: np.ndarray
    weights: np.ndarray
    unit_weights: bool = False  # every weight is 1


def power_summary(
    binary: bool,
    sample: PowerInputs,
    treatment_mean: float,
    comparison_mean: float,
    significant: bool,
    alpha: float,
) -> tuple[int | None, float | None, float]:
    """(people needed, minimum detectable effect, effective comparison n) for these groups."""
    t, c = sample.treated, ~sample.treated
    n_t = float(t.sum())
    if sample.unit_weights:  # the same numbers as with the weights of 1, without them
        ess_c = unit_effective_sample_size(len(t) - int(n_t))
        var_t = unit_weighted_variance(sample.y[t], binary)
        var_c = unit_weighted_variance(sample.y[c], binary)
    else:
        ess_c = effective_sample_size(sample.weights[c])
        var_t = weighted_variance(sample.y[t], sample.weights[t], binary)
        var_c = weighted_variance(sample.y[c], sample.weights[c], binary)
    sd = pooled_sd(var_t, n_t, var_c, ess_c)
    needed = None if significant else people_needed(
        binary=binary, treatment_mean=treatment_mean, comparison_mean=comparison_mean, sd=sd,
        alpha=alpha,
    )
    mde = min_detectable_effect(
        binary=binary, comparison_mean=comparison_mean, sd=sd, n_treatment=n_t,
        n_comparison=ess_c, alpha=alpha,
    )
    return needed, mde, ess_c


def require_both_groups(n_treatment: int, n_comparison: int) -> None:
    if n_treatment == 0 or n_comparison == 0:
        raise EvaluationCannotComplete(
            "estimator",
            f"the outcome is available for {n_treatment} treated and {n_comparison} comparison "
            "units with weight > 0; both groups are needed",
        )


def normal_result(
    *,
    spec: EstimatorSpec,
    kind: OutcomeKind,
    estimand: str,
    method: str,
    difference: float,
    se: float,
    treatment_mean: float,
    power_sample: PowerInputs,
    n_treatment: int,
    n_comparison: int,
    parameters: dict[str, Any],
    df: int | None = None,
) -> EstimateResult:
    """An EstimateResult with a Wald interval: normal reference (df None) or t with df."""
    from scipy import stats

    alpha = significance_level(spec)
    reference = stats.norm if df is None else stats.t(df)
    critical = float(reference.ppf(1 - alpha / 2))
    p_value = float(2 * reference.sf(abs(difference / se))) if se > 0 else float(difference == 0)
    return assemble_result(
        spec=spec,
        binary=kind == "binary",
        estimand=estimand,
        method=method,
        parameters={
            "confidence": spec.confidence,
            "power": 0.8,
            "power_alpha": alpha,
            "reference_distribution": "normal" if df is None else f"t with {df} df",
            "outcome_kind": kind,
            **parameters,
        },
        treatment_mean=float(treatment_mean),
        difference=float(difference),
        se=float(se),
        interval=(difference - critical * se, difference + critical * se),
        p_value=p_value,
        power_sample=power_sample,
        n_treatment=n_treatment,
        n_comparison=n_comparison,
    )


def assemble_result(
    *,
    spec: EstimatorSpec,
    binary: bool,
    estimand: str,
    method: str,
    parameters: dict[str, Any],
    treatment_mean: float,
    difference: float,
    se: float,
    interval: tuple[float, float],
    p_value: float,
    power_sample: PowerInputs | None,
    n_treatment: int,
    n_comparison: int,
    significant: bool | None = None,
) -> EstimateResult:
    """The EstimateResult of an estimate and its uncertainty, with the power summary added
    (`power_sample` None: without it, the power fields None).

    `significant` defaults to p < alpha; a bootstrap passes whether its interval excludes zero.
    """
    alpha = significance_level(spec)
    if significant is None:
        significant = bool(p_value < alpha)
    comparison_mean = treatment_mean - difference
    needed, mde, ess_c = (None, None, None) if power_sample is None else power_summary(
        binary, power_sample, treatment_mean, comparison_mean, significant, alpha
    )
    return EstimateResult(
        estimand=estimand,
        method=method,
        parameters=parameters,
        treatment_mean=treatment_mean,
        comparison_mean=comparison_mean,
        difference=difference,
        se=se,
        ci_low=float(interval[0]),
        ci_high=float(interval[1]),
        p_value=p_value,
        significant=significant,
        confidence=spec.confidence,
        n_treatment=n_treatment,
        n_comparison=n_comparison,
        people_needed=needed,
        min_detectable_effect=mde,
        effective_n_comparison=ess_c,
    )


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
    design: np.ndarray | None = None,
    power: bool = True,
) -> EstimateResult:
    """The WLS coefficient on treatment (plus covariates in `design`, if given) and its uncertainty
    (`power` False: without the power summary)."""
    from scipy import stats

    require_both_groups(n_treatment, n_comparison)
    alpha = significance_level(spec)
    treatment_mean = float(np.average(data.y[data.treated], weights=data.weights[data.treated]))
    if design is None:
        fit = weighted_difference(data.y, data.treated, None if data.unit_weights else data.weights,
                                  data.clusters, data.robust_type)
        difference, analytic_se, df, clusters = fit.difference, fit.se, fit.df, fit.clusters
    else:
        X = np.column_stack([np.ones(len(data.y)), data.treated.astype(float), design])
        regression = weighted_regression(data.y, X, data.weights, data.clusters, data.robust_type)
        difference = float(regression.beta[1])
        analytic_se = float(np.sqrt(max(regression.vcov[1, 1], 0.0)))
        df, clusters = regression.df, regression.clusters
    parameters: dict[str, Any] = {
        "variance": variance_method,
        "confidence": spec.confidence,
        "power": 0.8,
        "power_alpha": alpha,
        **extra,
    }
    if variance_method == "bootstrap":
        variance = spec.variance
        if data.bootstrap_units is not None:
            X_boot = (
                np.column_stack([np.ones(len(data.y)), data.treated.astype(float)])
                if design is None else X
            )
            draws = pigeonhole_bootstrap_wls(
                data.y, X_boot, data.weights, data.bootstrap_clusters, data.bootstrap_units,
                reps=variance.reps, seed=variance.seed,
            )
            jackknife = (
                jackknife_wls(data.y, X_boot, data.weights, data.bootstrap_clusters)
                if variance.interval == "bca" else None
            )
        elif design is None:
            draws = cluster_bootstrap(
                data.y, data.treated, data.weights, data.bootstrap_clusters,
                reps=variance.reps, seed=variance.seed,
            )
            jackknife = (
                jackknife_difference(data.y, data.treated, data.weights, data.bootstrap_clusters)
                if variance.interval == "bca" else None
            )
        else:
            draws = cluster_bootstrap_wls(
                data.y, X, data.weights, data.bootstrap_clusters,
                reps=variance.reps, seed=variance.seed,
            )
            jackknife = (
                jackknife_wls(data.y, X, data.weights, data.bootstrap_clusters)
                if variance.interval == "bca" else None
            )
        interval = bootstrap_interval(
            draws, difference, alpha=alpha, interval=variance.interval, jackknife=jackknife
        )
        se, ci_low, ci_high, p_value = interval.se, interval.ci_low, interval.ci_high, interval.p_value
        significant = bool(ci_low > 0 or ci_high < 0)
        parameters |= {
            "reps": variance.reps,
            "seed": variance.seed,
            "failed_replicates": interval.failed_replicates,
            "interval": interval.interval,
            "resampled": data.resampled,
        }
        if interval.interval == "bca":
            parameters |= {
                "bias_correction_z0": interval.bias_correction,
                "acceleration": interval.acceleration,
            }
    else:
        critical = float(stats.t.ppf(1 - alpha / 2, df))
        se = analytic_se
        ci_low, ci_high = difference - critical * se, difference + critical * se
        statistic = difference / se if se > 0 else np.inf * np.sign(difference)
        p_value = float(2 * stats.t.sf(abs(statistic), df)) if se > 0 else float(difference == 0)
        significant = bool(p_value < alpha)
        parameters |= {
            "standard_error": data.description,
            "clusters": list(clusters),
            "reference_distribution": f"t with {df} df (n - {len(data.y) - df})",
        }
    return assemble_result(
        spec=spec,
        binary=kind == "binary",
        estimand=estimand,
        method=method,
        parameters=parameters,
        treatment_mean=treatment_mean,
        difference=difference,
        se=se,
        interval=(ci_low, ci_high),
        p_value=p_value,
        significant=significant,
        power_sample=PowerInputs(data.y, data.treated, data.weights, unit_weights=data.unit_weights)
        if power else None,
        n_treatment=n_treatment,
        n_comparison=n_comparison,
    )


def matched_view(y: np.ndarray, matching: MatchingResult, variance_method: str) -> AnalysisData:
    if variance_method == "robust":
        return _units_view(y, matching, clustered=False)
    if matching.replace:
        return _pairs_view(y, matching)
    return _units_view(y, matching, clustered=True)


def matched_counts(y: np.ndarray, matching: MatchingResult) -> tuple[int, int]:
    units = matching.units
    counted = (units["weight"].to_numpy(float) > 0) & ~np.isnan(y)
    treated = units["treated"].to_numpy(bool)
    return int((counted & treated).sum()), int((counted & ~treated).sum())


def weighted_difference_estimator(
    outcome: pd.Series,
    matching: MatchingResult,
    spec: EstimatorSpec,
    kind: OutcomeKind,
    covariates: pd.DataFrame | None = None,
) -> EstimateResult:
    """Treated mean minus the matching-weighted comparison mean (WLS on treatment)."""
    del covariates  # balance comes from the matching alone
    y = check_outcome(outcome, kind, "outcome")
    variance_method = spec.variance.method
    data = matched_view(y, matching, variance_method)
    n_treatment, n_comparison = matched_counts(y, matching)
    return _result(
        data,
        spec=spec,
        kind=kind,
        estimand=matching.estimand,
        method="weighted_difference",
        variance_method=variance_method,
        n_treatment=n_treatment,
        n_comparison=n_comparison,
        extra={"matching_method": matching.method, "outcome_kind": kind},
    )


ESTIMATORS.register("weighted_difference", weighted_difference_estimator)


def reject_bootstrap(spec: EstimatorSpec, method: str) -> None:
    """ipw, aipw and the meta-learners have analytic (sandwich / influence-function) SEs only."""
    if spec.variance.method == "bootstrap":
        raise JdlUserError.single(
            "estimator.variance",
            f"the bootstrap is not available for the {method} estimator",
            value="bootstrap",
            allowed="pair_cluster_robust or robust (both give its own analytic standard error)",
            hint="use weighted_difference or regression_adjustment for a bootstrap interval",
        )


def require_covariates(covariates: pd.DataFrame | None, method: str) -> pd.DataFrame:
    if covariates is None or covariates.shape[1] == 0:
        raise JdlUserError.single(
            "estimator.method",
            f"the {method} estimator needs the covariates, and none were given",
            value=method,
            hint="pass covariates= (the covariates matched on), or use weighted_difference",
        )
    return covariates


def full_rank_columns(X: np.ndarray, *, tolerance: float = 1e-9) -> np.ndarray:
    """Indices of a maximal set of linearly independent, non-constant columns (in column order).

    A covariate can be constant or collinear inside the matched sample even when
    it is not in the full data; such columns carry no information for the
    adjustment and would make X'WX singular, so they are dropped (as R's lm does).
    """
    if X.shape[1] == 0:
        return np.empty(0, np.int64)
    centred = X - X.mean(axis=0)
    scale = np.sqrt((centred**2).sum(axis=0))
    keep: list[int] = []
    basis = np.empty((X.shape[0], 0))
    for j in np.flatnonzero(scale > tolerance * max(1.0, float(np.abs(X).max()))):
        column = centred[:, j] / scale[j]
        if basis.shape[1]:
            column = column - basis @ (basis.T @ column)
        norm = float(np.linalg.norm(column))
        if norm > 1e-6:
            keep.append(int(j))
            basis = np.column_stack([basis, column / norm])
    return np.asarray(keep, np.int64)


def covariate_design(covariates: pd.DataFrame) -> pd.DataFrame:
    """The covariates as a numeric design matrix (dummies for categories, as matching uses)."""
    return design_matrix(covariates, [str(c) for c in covariates.columns])


def regression_adjustment_estimator(
    outcome: pd.Series,
    matching: MatchingResult,
    spec: EstimatorSpec,
    kind: OutcomeKind,
    covariates: pd.DataFrame | None = None,
) -> EstimateResult:
    """WLS of the outcome on treatment and the covariates on the matched sample, matching weights.

    The coefficient on treatment; standard errors as weighted_difference
    (clustered on matched sets, two-way with replacement), so adjustment only
    removes residual imbalance and sharpens the estimate.
    """
    design = covariate_design(require_covariates(covariates, "regression_adjustment"))
    y = check_outcome(outcome, kind, "outcome")
    variance_method = spec.variance.method
    data = matched_view(y, matching, variance_method)
    X = design.to_numpy(float)[data.rows]
    kept = full_rank_columns(np.column_stack([data.treated.astype(float), X]))
    adjusted = [int(j) - 1 for j in kept if j > 0]
    n_treatment, n_comparison = matched_counts(y, matching)
    names = [str(c) for c in design.columns]
    return _result(
        data,
        spec=spec,
        kind=kind,
        estimand=matching.estimand,
        method="regression_adjustment",
        variance_method=variance_method,
        n_treatment=n_treatment,
        n_comparison=n_comparison,
        extra={
            "matching_method": matching.method,
            "outcome_kind": kind,
            "adjusted_for": [names[j] for j in adjusted],
            "dropped_constant_or_collinear": [n for j, n in enumerate(names) if j not in adjusted],
            "model": "weighted least squares (linear probability model for binary outcomes)",
        },
        design=X[:, adjusted],
    )


ESTIMATORS.register("regression_adjustment", regression_adjustment_estimator)


def estimate(
    outcome: pd.Series,
    matching: MatchingResult,
    spec: EstimatorSpec,
    *,
    kind: OutcomeKind,
    covariates: pd.DataFrame | None = None,
) -> EstimateResult:
    """Estimate the effect on `outcome` (aligned with matching.units; NaN = not applicable).

    covariates (same index as matching.units, raw columns as given to match())
    are needed by regression_adjustment, ipw, aipw and the meta-learners.
    """
    if not outcome.index.equals(matching.units.index):
        raise ValueError("outcome must have the same index as matching.units")
    if covariates is not None and not covariates.index.equals(matching.units.index):
        raise ValueError("covariates must have the same index as matching.units")
    return ESTIMATORS[spec.method](outcome, matching, spec, kind, covariates)


def naive_difference(
    outcome: pd.Series, treated: pd.Series, spec: EstimatorSpec, *, kind: OutcomeKind, power: bool = True
) -> EstimateResult:
    """Unmatched, unweighted difference in means with an HC1 robust standard error; `power` False
    leaves out the power summary (two variances over the whole pool) when it is not reported."""
    y = check_outcome(outcome, kind, "outcome")
    group = np.asarray(treated).astype(bool)
    keep = ~np.isnan(y)
    if not keep.all():  # with every outcome present the rows are the arrays themselves, not copies
        y, group = y[keep], group[keep]
    n_treatment = int(np.count_nonzero(group))
    data = AnalysisData(
        y=y,
        treated=group,
        weights=np.ones(len(y)),
        clusters=None,
        bootstrap_clusters=np.arange(len(y)),
        description="heteroskedasticity-robust (HC1)",
        resampled="units",
        unit_weights=True,
    )
    return _result(
        data,
        spec=spec,
        kind=kind,
        estimand="unadjusted",
        method="naive_difference",
        variance_method="robust",
        n_treatment=n_treatment,
        n_comparison=len(y) - n_treatment,
        extra={"outcome_kind": kind},
        power=power,
    )
