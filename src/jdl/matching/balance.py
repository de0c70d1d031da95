"""Covariate balance before and after matching, as MatchIt's summary() reports it."""

from __future__ import annotations

from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jdl.matching.background import taken

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
    return bool(((values == 0.0) | (values == 1.0)).all())


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


def _smd(difference: float, denominator: float) -> float:
    if abs(difference) < 1e-8:
        return 0.0
    if not denominator > 0:
        return float("nan")
    return difference / denominator


class _UnitWeights:
    """What weighted_variance computes from weights of 1 for a group of n units, without the
    weights: every normalised weight is the same 1 / n (ones / ones.sum(), the sum being n
    exactly), so w * x is x * (1/n) bit for bit, and the sum of the squared weights is the sum
    of n copies of (1/n)^2."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.inverse = np.float64(1.0) / np.float64(n) if n else np.float64("nan")
        self._denominator: float | None = None

    @property
    def denominator(self) -> float:
        if self._denominator is None:
            self._denominator = 1.0 - float(np.full(self.n, self.inverse * self.inverse).sum())
        return self._denominator

    def mean(self, values: np.ndarray) -> float:
        """weighted_mean(values, ones): x * 1.0 is x, and a sum of ones is n exactly."""
        return float(values.sum() / np.float64(self.n)) if self.n > 0 else float("nan")

    def variance(self, values: np.ndarray, binary: bool) -> float:
        """weighted_variance(values, ones, binary)."""
        if self.n == 0:
            return float("nan")
        mean = float((values * self.inverse).sum())
        if binary:
            return mean * (1.0 - mean)
        if self.denominator <= 0:
            return float("nan")
        return float((np.square(values - mean) * self.inverse).sum() / self.denominator)


def unit_weighted_variance(values: np.ndarray, binary: bool) -> float:
    """weighted_variance(values, np.ones(len(values)), binary), bit for bit, without the weights."""
    return _UnitWeights(len(values)).variance(values, binary)


class _PositiveWeights:
    """weighted_variance's view of one group's matching weights: the units with weight > 0
    (as positions in the whole table) and their normalised weights, computed once."""

    def __init__(self, members: np.ndarray, weights: np.ndarray) -> None:
        positive = weights > 0
        self.all_positive = bool(positive.all())
        self.positions = members if self.all_positive else members[positive]
        kept = weights if self.all_positive else weights[positive]
        self.w = kept / kept.sum() if len(kept) else kept
        self.denominator = 1.0 - float(np.square(self.w).sum()) if len(kept) else float("nan")

    def variance(self, values: np.ndarray, group_values: np.ndarray) -> float:
        """weighted_variance(group_values, group weights, binary=False); `values` is the whole column."""
        if len(self.w) == 0:
            return float("nan")
        kept = group_values if self.all_positive else values[self.positions]
        mean = float((self.w * kept).sum())
        if self.denominator <= 0:
            return float("nan")
        return float((self.w * np.square(kept - mean)).sum() / self.denominator)


class _Sides:
    """The groups and what depends on them alone (not on the weights), computed once."""

    def __init__(self, treated: np.ndarray) -> None:
        self.treated, self.control = treated, ~treated
        self.unit_t = _UnitWeights(int(treated.sum()))
        self.unit_c = _UnitWeights(len(treated) - self.unit_t.n)
        self.usable_before = self.unit_t.n > 0 and self.unit_c.n > 0
        self.signed_before = _signed(treated, np.ones(len(treated))) if self.usable_before else None


class _Groups:
    """What every covariate's row shares: the groups, their weights and eCDF steps, computed once."""

    def __init__(self, treated: np.ndarray, weights: np.ndarray, sides: _Sides | None = None) -> None:
        self.sides = sides if sides is not None else _Sides(treated)
        self.treated, self.control = self.sides.treated, self.sides.control
        self.wt, self.wc = weights[treated], weights[self.control]
        self.wt_sum, self.wc_sum = self.wt.sum(), self.wc.sum()
        self.usable_after = self.wt_sum > 0 and self.wc_sum > 0
        self.signed_after = _signed(treated, weights) if self.usable_after else None
        self.positive_t = _PositiveWeights(np.flatnonzero(treated), self.wt)
        self.positive_c = _PositiveWeights(np.flatnonzero(self.control), self.wc)

    def mean_after(self, group_values: np.ndarray, group_weights: np.ndarray, total: float) -> float:
        """weighted_mean(group_values, group_weights), the total of the weights known."""
        return float((group_values * group_weights).sum() / total) if total > 0 else float("nan")


def _ecdf_gaps(ordered_signed: np.ndarray, last_of_value: np.ndarray) -> tuple[float, float]:
    gaps = np.abs(np.cumsum(ordered_signed))[last_of_value]
    return float(gaps.mean()), float(gaps.max())


@dataclass(frozen=True)
class _Before:
    """One covariate's numbers that do not depend on the matching weights."""

    name: str
    kind: str
    values: np.ndarray
    denominator: float
    mean_t: float
    mean_c: float
    ratio: float
    ecdf: tuple[float, float]
    order: np.ndarray | None  # continuous: an argsort of the values, and where each distinct value ends
    last_of_value: np.ndarray | None


def _before(name: str, kind: str, values: np.ndarray, estimand: str, sides: _Sides) -> _Before:
    binary = kind == "binary"
    t, c = values[sides.treated], values[sides.control]
    var_t, var_c = sides.unit_t.variance(t, binary), sides.unit_c.variance(c, binary)
    if estimand == "ATT":
        denominator = float(np.sqrt(var_t))
    elif estimand == "ATC":
        denominator = float(np.sqrt(var_c))
    else:
        denominator = float(np.sqrt((var_t + var_c) / 2.0))
    mean_t, mean_c = sides.unit_t.mean(t), sides.unit_c.mean(c)
    nan = float("nan")
    if binary:
        ecdf = (abs(mean_t - mean_c),) * 2 if sides.usable_before else (nan, nan)
        return _Before(name, kind, values, denominator, mean_t, mean_c, nan, ecdf, None, None)
    # not binary: var_t and var_c are already the variances of the ratio (binary=False)
    order = np.argsort(values)
    ordered = values[order]
    last_of_value = np.append(ordered[1:] != ordered[:-1], True)
    ecdf = (_ecdf_gaps(sides.signed_before[order], last_of_value)
            if sides.signed_before is not None else (nan, nan))
    return _Before(name, kind, values, denominator, mean_t, mean_c, _ratio(var_t, var_c), ecdf, order,
                   last_of_value)


def _after(before: _Before, groups: _Groups) -> dict[str, object]:
    values = before.values
    t, c = values[groups.treated], values[groups.control]
    mean_t_after = groups.mean_after(t, groups.wt, groups.wt_sum)
    mean_c_after = groups.mean_after(c, groups.wc, groups.wc_sum)
    smd_after = _smd(mean_t_after - mean_c_after, before.denominator)
    nan = float("nan")
    if before.order is None:
        ratio_after = nan
        ecdf_after = (abs(mean_t_after - mean_c_after),) * 2 if groups.usable_after else (nan, nan)
    else:
        ratio_after = _ratio(groups.positive_t.variance(values, t), groups.positive_c.variance(values, c))
        ecdf_after = (_ecdf_gaps(groups.signed_after[before.order], before.last_of_value)
                      if groups.signed_after is not None else (nan, nan))
    return {
        "ecdf_mean_before": before.ecdf[0],
        "ecdf_mean_after": ecdf_after[0],
        "ecdf_max_before": before.ecdf[1],
        "ecdf_max_after": ecdf_after[1],
        "covariate": before.name,
        "kind": before.kind,
        "mean_treatment": mean_t_after,
        "mean_treatment_before": before.mean_t,
        "mean_comparison_before": before.mean_c,
        "mean_comparison_after": mean_c_after,
        "smd_before": _smd(before.mean_t - before.mean_c, before.denominator),
        "smd_after": smd_after,
        "variance_ratio_before": before.ratio,
        "variance_ratio_after": ratio_after,
        "flag": flag(smd_after),
    }


def _row(name: str, kind: str, values: np.ndarray, estimand: str, groups: _Groups) -> dict[str, object]:
    """One covariate's balance row, with the arithmetic of weighted_mean, weighted_variance and
    ecdf_differences (bit for bit; tested) but each pass over the rows done once."""
    return _after(_before(name, kind, values, estimand, groups.sides), groups)


def _covariate_before(X: pd.DataFrame, column: object, estimand: str, sides: _Sides) -> _Before:
    values = X[column].to_numpy(dtype=float)
    kind = "binary" if is_binary(values) else "continuous"
    return _before(str(column), kind, values, estimand, sides)


class EarlyBalance:
    """The weight-free half of every covariate's balance row (the groups' means and variances
    before matching, the sort of a continuous column and its eCDF gaps before), started on a
    background thread before the weights are known: the propensity fit and the matcher leave a
    core idle for long stretches. balance_table takes a column's half when its task has started
    (waiting for it to finish) and computes it itself otherwise, so every number comes from the
    same arithmetic either way."""

    def __init__(self, X: pd.DataFrame, treated: np.ndarray, estimand: str, executor: Executor) -> None:
        self.X, self.estimand = X, estimand
        self.sides = _Sides(np.asarray(treated, dtype=bool))
        self._pending: dict[object, Future[_Before]] = {
            column: executor.submit(_covariate_before, X, column, estimand, self.sides) for column in X.columns
        }

    def take(self, column: object) -> _Before:
        return taken(self._pending.pop(column),
                     lambda: _covariate_before(self.X, column, self.estimand, self.sides))

    def cancel(self) -> None:
        """Drop the tasks not started yet (balance_table will not ask for them)."""
        for future in self._pending.values():
            future.cancel()


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


def balance_table(
    X: pd.DataFrame,
    treated: np.ndarray,
    weights: np.ndarray,
    *,
    estimand: str = "ATT",
    distance: np.ndarray | None = None,
    early: EarlyBalance | None = None,
) -> pd.DataFrame:
    """One row per design-matrix column (and first a 'distance' row when given).

    SMDs divide by the SD of the unmatched treated group for the ATT (control
    group for the ATC, pooled for the ATE), the same denominator before and after
    matching; a binary column's SD is sqrt(p(1-p)). Variance ratios are treated /
    comparison (weighted after matching) and NaN for binary columns. Means after
    matching are weighted by the matching weights (units with weight 0 drop out).
    `early`: the weight-free halves of the rows, started on X and these groups (EarlyBalance).
    """
    treated = np.asarray(treated, dtype=bool)
    weights = np.asarray(weights, dtype=float)
    if early is not None and early.estimand != estimand:
        raise ValueError("the early balance was started for another estimand")
    groups = _Groups(treated, weights, early.sides if early is not None else None)

    def covariate_row(column: object) -> dict[str, object]:
        if early is not None:
            return _after(early.take(column), groups)
        return _after(_covariate_before(X, column, estimand, groups.sides), groups)

    def distance_row() -> dict[str, object]:
        return _row("distance", "distance", np.asarray(distance, float), estimand, groups)

    rows = []
    if len(treated) >= PARALLEL_ROWS and len(X.columns) > 1:
        # rows are independent and their numpy work releases the GIL: two at a time, same arithmetic;
        # the distance row (a sort of every unit's distance) is queued first, as the longest
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(distance_row) if distance is not None else None
            covariate_rows = list(pool.map(covariate_row, X.columns))
            if first is not None:
                rows.append(first.result())
            rows.extend(covariate_rows)
    else:
        if distance is not None:
            rows.append(distance_row())
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
