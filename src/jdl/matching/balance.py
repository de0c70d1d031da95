"""Covariate balance before and after matching, as MatchIt's summary() reports it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

GOOD_SMD = 0.05
# Tables of at least this many units compute their covariates' rows on two threads.
PARALLEL_ROWS = 200_000
ACCEPTABLE_SMD = 0.10

BALANCE_COLUMNS = [
    "covariate",
    "kind",
    "mean_treatment",
    "mean_treatment_before",
    "mean_comparison_before",
    "mean_comparison_after",
    "smd_before",
    "smd_after",
    "variance_ratio_before",
    "variance_ratio_after",
    "flag",
    "ecdf_mean_before",
    "ecdf_mean_after",
    "ecdf_max_before",
    "ecdf_max_after",
]


def is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    total = weights.sum()
    return float((values * weights).sum() / total) if total > 0 else float("nan")


def weighted_variance(values: np.ndarray, weights: np.ndarray, binary: bool) -> float:
    """MatchIt's wvar: p(1-p) for binary; otherwise the reliability-weights variance (cov.wt)."""
    positive = weights > 0
    if not positive.all():  # (all positive: the same arrays, without copying them)
        values, weights = values[positive], weights[positive]
    if len(values) == 0:
        return float("nan")
    w = weights / weights.sum()
    mean = float((w * values).sum())
    if binary:
        return mean * (1.0 - mean)
    denominator = 1.0 - float(np.square(w).sum())
    if denominator <= 0:
        return float("nan")
    return float((w * np.square(values - mean)).sum() / denominator)


def ecdf_differences(
    values: np.ndarray,
    treated: np.ndarray,
    weights: np.ndarray,
    binary: bool,
    order: np.ndarray | None = None,
    *,
    signed: np.ndarray | None = None,
) -> tuple[float, float]:
    """Mean and largest gap between the groups' weighted eCDFs (MatchIt's qqsum, standardized).

    Gaps are taken at each distinct value (after its last unit), so the order of
    tied units does not matter and `order` may be any argsort of `values`. For a
    binary covariate both are |difference in weighted proportions|.
    """
    if binary or signed is None:  # (a given `signed` means both groups have weight)
        wt, wc = weights[treated], weights[~treated]
        if wt.sum() <= 0 or wc.sum() <= 0:
            return float("nan"), float("nan")
        if binary:
            gap = abs(weighted_mean(values[treated], wt) - weighted_mean(values[~treated], wc))
            return gap, gap
        signed = _signed(treated, weights)
    if order is None:
        order = np.argsort(values)
    ordered = values[order]
    cumulative = np.abs(np.cumsum(signed[order]))
    last_of_value = np.append(ordered[1:] != ordered[:-1], True)
    gaps = cumulative[last_of_value]
    return float(gaps.mean()), float(gaps.max())


def _signed(treated: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each unit's step in (comparison eCDF - treated eCDF)."""
    return np.where(treated, -weights / weights[treated].sum(), weights / weights[~treated].sum())


def flag(smd: float) -> str:
    if not np.isfinite(smd):
        return "imbalanced"
    size = abs(smd)
    if size <= GOOD_SMD:
        return "good"
    if size <= ACCEPTABLE_SMD:
        return "acceptable"
    return "imbalanced"


def _standardiser(values: np.ndarray, treated: np.ndarray, estimand: str, binary: bool) -> float:
    """The SMD denominator, from the unmatched sample (MatchIt: s.d.denom by estimand)."""
    return _standardiser_of(values[treated], values[~treated], estimand, binary)


def _standardiser_of(t: np.ndarray, c: np.ndarray, estimand: str, binary: bool) -> float:
    var_t = weighted_variance(t, np.ones(len(t)), binary)
    var_c = weighted_variance(c, np.ones(len(c)), binary)
    if estimand == "ATT":
        return float(np.sqrt(var_t))
    if estimand == "ATC":
        return float(np.sqrt(var_c))
    return float(np.sqrt((var_t + var_c) / 2.0))


def _smd(difference: float, denominator: float) -> float:
    if abs(difference) < 1e-8:
        return 0.0
    if not denominator > 0:
        return float("nan")
    return difference / denominator


class _Groups:
    """What every covariate's row shares: the groups' weights and eCDF steps, computed once."""

    def __init__(self, treated: np.ndarray, weights: np.ndarray) -> None:
        self.ones = np.ones(len(treated))
        self.wt, self.wc = weights[treated], weights[~treated]
        usable_before = self.ones[treated].sum() > 0 and self.ones[~treated].sum() > 0
        usable_after = self.wt.sum() > 0 and self.wc.sum() > 0
        self.signed_before = _signed(treated, self.ones) if usable_before else None
        self.signed_after = _signed(treated, weights) if usable_after else None


def _row(
    name: str, kind: str, values: np.ndarray, treated: np.ndarray, weights: np.ndarray, estimand: str,
    groups: _Groups | None = None,
) -> dict[str, object]:
    binary = kind == "binary"
    groups = groups or _Groups(treated, weights)
    ones = groups.ones
    t, c = values[treated], values[~treated]
    ones_t, ones_c = np.ones(len(t)), np.ones(len(c))  # what ones[treated], ones[~treated] hold
    denominator = _standardiser_of(t, c, estimand, binary)
    wt, wc = groups.wt, groups.wc
    mean_t_before = weighted_mean(t, ones_t)
    mean_c_before = weighted_mean(c, ones_c)
    mean_t_after = weighted_mean(t, wt)
    mean_c_after = weighted_mean(c, wc)
    smd_after = _smd(mean_t_after - mean_c_after, denominator)
    if binary:
        ratio_before = ratio_after = float("nan")
    else:
        ratio_before = _ratio(
            weighted_variance(t, ones_t, False), weighted_variance(c, ones_c, False)
        )
        ratio_after = _ratio(weighted_variance(t, wt, False), weighted_variance(c, wc, False))
    order = None if binary else np.argsort(values)
    ecdf_before = ecdf_differences(values, treated, ones, binary, order, signed=groups.signed_before)
    ecdf_after = ecdf_differences(values, treated, weights, binary, order, signed=groups.signed_after)
    return {
        "ecdf_mean_before": ecdf_before[0],
        "ecdf_mean_after": ecdf_after[0],
        "ecdf_max_before": ecdf_before[1],
        "ecdf_max_after": ecdf_after[1],
        "covariate": name,
        "kind": kind,
        "mean_treatment": mean_t_after,
        "mean_treatment_before": mean_t_before,
        "mean_comparison_before": mean_c_before,
        "mean_comparison_after": mean_c_after,
        "smd_before": _smd(mean_t_before - mean_c_before, denominator),
        "smd_after": smd_after,
        "variance_ratio_before": ratio_before,
        "variance_ratio_after": ratio_after,
        "flag": flag(smd_after),
    }


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def balance_table(
    X: pd.DataFrame,
    treated: np.ndarray,
    weights: np.ndarray,
    *,
    estimand: str = "ATT",
    distance: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per design-matrix column (and first a 'distance' row when given).

    SMDs divide by the SD of the unmatched treated group for the ATT (control
    group for the ATC, pooled for the ATE), the same denominator before and after
    matching; a binary column's SD is sqrt(p(1-p)). Variance ratios are treated /
    comparison (weighted after matching) and NaN for binary columns. Means after
    matching are weighted by the matching weights (units with weight 0 drop out).
    """
    treated = np.asarray(treated, dtype=bool)
    weights = np.asarray(weights, dtype=float)
    groups = _Groups(treated, weights)

    def covariate_row(column: object) -> dict[str, object]:
        values = X[column].to_numpy(dtype=float)
        kind = "binary" if is_binary(values) else "continuous"
        return _row(str(column), kind, values, treated, weights, estimand, groups)

    rows = []
    if distance is not None:
        rows.append(_row("distance", "distance", np.asarray(distance, float), treated, weights, estimand, groups))
    if len(treated) >= PARALLEL_ROWS and len(X.columns) > 1:
        # columns are independent and their numpy work releases the GIL: two at a time, same arithmetic
        with ThreadPoolExecutor(max_workers=2) as pool:
            rows.extend(pool.map(covariate_row, X.columns))
    else:
        rows.extend(covariate_row(column) for column in X.columns)
    return pd.DataFrame(rows, columns=BALANCE_COLUMNS)


def love_plot_data(balance: pd.DataFrame) -> pd.DataFrame:
    """Long table for a Love plot: one row per covariate and stage with |SMD| and its flag."""
    rows = []
    for record in balance.itertuples(index=False):
        for stage in ("before", "after"):
            smd = float(getattr(record, f"smd_{stage}"))
            rows.append({
                "covariate": record.covariate,
                "stage": stage,
                "smd": smd,
                "abs_smd": abs(smd),
                "flag": flag(smd),
            })
    return pd.DataFrame(rows, columns=["covariate", "stage", "smd", "abs_smd", "flag"])


def overlap_plot_data(
    score: np.ndarray, treated: np.ndarray, weights: np.ndarray, *, bins: int = 20
) -> pd.DataFrame:
    """Histogram of the propensity score by group, before (unweighted) and after (matching weights).

    Densities are shares of each group's (weighted) total per bin, on common
    bin edges over [min, max] of the score.
    """
    edges = np.linspace(float(np.min(score)), float(np.max(score)), bins + 1)
    rows = []
    for stage, w in (("before", np.ones(len(score))), ("after", np.asarray(weights, float))):
        for group, members in (("treatment", treated), ("comparison", ~treated)):
            counts, _ = np.histogram(score[members], bins=edges, weights=w[members])
            total = counts.sum()
            share = counts / total if total > 0 else counts
            for i in range(bins):
                rows.append({
                    "stage": stage, "group": group, "bin_low": edges[i], "bin_high": edges[i + 1],
                    "share": float(share[i]),
                })
    return pd.DataFrame(rows)
