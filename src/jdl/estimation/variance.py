"""Variance of a weighted difference or regression coefficient: cluster-robust sandwich and cluster bootstrap.

The point estimate is the coefficient on treatment in a weighted least-squares
regression of the outcome on an intercept and the treatment indicator (the
difference between the weighted group means), optionally plus covariates
(regression adjustment). The sandwich follows R's sandwich::vcovCL(type =
"HC1", cadjust = TRUE): for each clustering dimension (and, for two-way
clustering, their intersection with a minus sign) the cluster-summed scores'
cross-product times G/(G-1), all times (n-1)/(n-k). With one dimension this is
exactly statsmodels' WLS(...).fit(cov_type="cluster") (tests check it).

The default (estimator.variance: pair_cluster_robust) is this analytic
sandwich, clustered on matched sets -- and, when controls are matched with
replacement, two-way clustered on matched set and unit, because a control
reused in several sets correlates them. Matchers whose strata are not pairs
(exact, coarsened exact, subclassification) get sandwich::vcovHC(type = "HC3")
instead, as MatchIt's "Estimating effects" guide does: their strata are few
and large, and cluster-robust SEs need many small clusters. It is the default because it is
deterministic (results.json is byte-reproducible without a seed), costs one
pass over the data, is what MatchIt's documentation recommends after matching
(Austin & Small 2014; Abadie & Spiess 2022), and the coverage study
(benchmarks/coverage_study.py) shows near-nominal 95% coverage for the JDL
standard design (1:5 nearest neighbour with replacement, 0.2 SD caliper).

The bootstrap resamples whole matched sets with the matching weights held
fixed. With replacement the sets share controls, and resampling sets alone
treats each reuse of a control as an independent draw: in the coverage study
that bootstrap's SE was 17% too small and its 95% interval covered 88%. So,
with replacement, the bootstrap is Owen's (2007) pigeonhole bootstrap over the
two crossed factors: matched sets and comparison units are resampled
independently and a control's row in a set gets weight w × a_set × b_unit (a
treated row w × a_set). It is slightly conservative (it adds the cell-level
variance that the two-way sandwich subtracts). Its default interval is the percentile interval (kept as the default
so recorded runs reproduce); `interval: bca` gives Efron's bias-corrected and
accelerated interval, with the bias correction z0 from the share of draws below
the estimate and the acceleration from the delete-one-cluster jackknife. Its
p-value inverts the same interval: the largest alpha whose interval still
contains zero. Neither bootstrap re-runs the matching, so, like the sandwich,
it treats the matched sample as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class WeightedDifference:
    treatment_mean: float
    comparison_mean: float
    difference: float
    se: float
    df: int
    clusters: tuple[int, ...]  # number of clusters per dimension


@dataclass(frozen=True)
class WeightedRegression:
    """WLS coefficients with their cluster-robust (or HC1) covariance matrix."""

    beta: np.ndarray
    vcov: np.ndarray
    df: int
    clusters: tuple[int, ...]  # number of clusters per dimension


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64), len(uniques)


def pair_codes(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Codes of the (first, second) pairs in order of first appearance (a MultiIndex's factorize).

    Each side is factorized, and the pairs of codes as one int64: the same
    numbering without building a tuple per row.
    """
    first_codes, _ = pd.factorize(np.asarray(first), sort=False)
    second_codes, second_values = pd.factorize(np.asarray(second), sort=False)
    if (first_codes < 0).any() or (second_codes < 0).any():  # missing values: as a MultiIndex treats them
        return pd.MultiIndex.from_arrays([first, second]).factorize()[0]
    combined = first_codes.astype(np.int64) * max(len(second_values), 1) + second_codes
    return pd.factorize(combined, sort=False)[0]


RobustType = Literal["HC1", "HC3"]


def weighted_regression(
    y: np.ndarray,
    X: np.ndarray,
    weights: np.ndarray | None,
    clusters: list[np.ndarray] | None = None,
    robust_type: RobustType = "HC1",
    *,
    gram: np.ndarray | None = None,
) -> WeightedRegression:
    """WLS of y on X (which carries its own intercept) with cluster-robust (1 or 2 dims) SEs or,
    without clusters, the heteroskedasticity-robust `robust_type` (HC1 or HC3).

    `weights` None means a weight of 1 for every row: the same arithmetic (w * v is v) without
    the products; `gram` is X'WX when the caller knows it exactly.
    """
    n, k = X.shape
    if gram is not None:
        XtWX = gram
    else:
        XtWX = X.T @ (X.copy() if weights is None else X * weights[:, None])
    beta = np.linalg.solve(XtWX, X.T @ (y if weights is None else weights * y))
    residual = y - X @ beta
    scores = X * (residual if weights is None else weights * residual)[:, None]
    if not clusters and robust_type == "HC3":
        return _hc3(X, np.ones(n) if weights is None else weights, XtWX, beta, scores)
    # HC1 (no clusters): every row is its own cluster (only their number is used)
    dims: list[np.ndarray] = list(clusters) if clusters else [np.empty(0)]
    signs = [1.0] * len(dims)
    if len(dims) == 2:
        dims.append(pair_codes(dims[0], dims[1]))
        signs.append(-1.0)
    elif len(dims) > 2:
        raise ValueError("at most two clustering dimensions are supported")
    meat = np.zeros((k, k))
    counts = []
    for dim, sign in zip(dims, signs, strict=True):
        # HC1 (no clusters): every row is its own cluster, no need to factorize n distinct ids
        codes, g = (None, n) if not clusters else _codes(np.asarray(dim))
        counts.append(g)
        if g < n:
            summed = np.column_stack(
                [np.bincount(codes, weights=scores[:, j], minlength=g) for j in range(k)]
            )
        else:
            summed = scores
        adjust = g / (g - 1) if g > 1 else 1.0
        meat += sign * adjust * (summed.T @ summed)
    bread = np.linalg.inv(XtWX)
    vcov = bread @ meat @ bread * (n - 1) / (n - k)
    return WeightedRegression(
        beta=beta,
        vcov=vcov,
        df=n - k,
        clusters=tuple(counts[: len(clusters)] if clusters else ()),
    )


def _hc3(
    X: np.ndarray, weights: np.ndarray, XtWX: np.ndarray, beta: np.ndarray, scores: np.ndarray
) -> WeightedRegression:
    """sandwich::vcovHC(type = "HC3") of a weighted lm: each score divided by (1 - leverage),
    leverage h_i = w_i x_i' (X'WX)^-1 x_i, and no degrees-of-freedom factor."""
    n, k = X.shape
    bread = np.linalg.inv(XtWX)
    leverage = weights * np.einsum("ij,jk,ik->i", X, bread, X)
    # a unit with leverage 1 is fitted exactly (its score is 0); R's 0/0 would give NaN
    room = 1.0 - leverage
    scaled = np.divide(scores, room[:, None], out=np.zeros_like(scores), where=(room > 1e-12)[:, None])
    vcov = bread @ (scaled.T @ scaled) @ bread
    return WeightedRegression(beta=beta, vcov=vcov, df=n - k, clusters=())


def weighted_difference(
    y: np.ndarray,
    treated: np.ndarray,
    weights: np.ndarray | None,
    clusters: list[np.ndarray] | None = None,
    robust_type: RobustType = "HC1",
) -> WeightedDifference:
    """WLS of y on [1, treated] with cluster-robust (1 or 2 dims) or HC1/HC3 SE.

    `weights` None: every row weighs 1. X'X is then [[n, n_t], [n_t, n_t]] exactly (sums of
    products of 0s and 1s are exact in any order), so it is not summed over the rows.
    """
    X = np.column_stack([np.ones(len(y)), treated.astype(float)])
    gram = None
    if weights is None and len(y) < 2**53:
        n_treated = float(np.count_nonzero(treated))
        gram = np.array([[float(len(y)), n_treated], [n_treated, n_treated]])
    fit = weighted_regression(y, X, weights, clusters, robust_type, gram=gram)
    return WeightedDifference(
        treatment_mean=float(fit.beta[0] + fit.beta[1]),
        comparison_mean=float(fit.beta[0]),
        difference=float(fit.beta[1]),
        se=float(np.sqrt(max(fit.vcov[1, 1], 0.0))),
        df=fit.df,
        clusters=fit.clusters,
    )


def cluster_bootstrap(
    y: np.ndarray,
    treated: np.ndarray,
    weights: np.ndarray,
    clusters: np.ndarray,
    *,
    reps: int,
    seed: int,
) -> np.ndarray:
    """Weighted differences in means over `reps` resamples of whole clusters (with replacement).

    Matching weights are held fixed; a replicate without a treated or a
    comparison outcome gives NaN.
    """
    codes, g = _codes(clusters)
    wy = weights * y
    sums = np.column_stack(
        [
            np.bincount(codes, weights=np.where(treated, wy, 0.0), minlength=g),
            np.bincount(codes, weights=np.where(treated, weights, 0.0), minlength=g),
            np.bincount(codes, weights=np.where(treated, 0.0, wy), minlength=g),
            np.bincount(codes, weights=np.where(treated, 0.0, weights), minlength=g),
        ]
    )
    rng = np.random.default_rng(seed)
    chunk = max(1, min(reps, 5_000_000 // max(g, 1)))
    out = np.empty(reps)
    done = 0
    while done < reps:
        size = min(chunk, reps - done)
        draws = rng.integers(0, g, size=(size, g))
        flat = (draws + (np.arange(size) * g)[:, None]).ravel()
        counts = np.bincount(flat, minlength=size * g).reshape(size, g).astype(float)
        totals = counts @ sums
        with np.errstate(divide="ignore", invalid="ignore"):
            out[done : done + size] = totals[:, 0] / totals[:, 1] - totals[:, 2] / totals[:, 3]
        done += size
    return out


def _cluster_sums(
    y: np.ndarray, treated: np.ndarray, weights: np.ndarray, codes: np.ndarray, g: int
) -> np.ndarray:
    wy = weights * y
    return np.column_stack(
        [
            np.bincount(codes, weights=np.where(treated, wy, 0.0), minlength=g),
            np.bincount(codes, weights=np.where(treated, weights, 0.0), minlength=g),
            np.bincount(codes, weights=np.where(treated, 0.0, wy), minlength=g),
            np.bincount(codes, weights=np.where(treated, 0.0, weights), minlength=g),
        ]
    )


def _difference_from_totals(totals: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return totals[..., 0] / totals[..., 1] - totals[..., 2] / totals[..., 3]


def jackknife_difference(
    y: np.ndarray, treated: np.ndarray, weights: np.ndarray, clusters: np.ndarray
) -> np.ndarray:
    """The weighted difference in means leaving out each cluster in turn (NaN when undefined)."""
    codes, g = _codes(clusters)
    sums = _cluster_sums(y, treated, weights, codes, g)
    return _difference_from_totals(sums.sum(axis=0)[None, :] - sums)


def _resample_counts(rng: np.random.Generator, g: int, size: int) -> np.ndarray:
    draws = rng.integers(0, g, size=(size, g))
    flat = (draws + (np.arange(size) * g)[:, None]).ravel()
    return np.bincount(flat, minlength=size * g).reshape(size, g).astype(float)


def _wls_cluster_sums(
    y: np.ndarray, X: np.ndarray, weights: np.ndarray, codes: np.ndarray, g: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster X'WX (g x k*k) and X'Wy (g x k)."""
    k = X.shape[1]
    wX = X * weights[:, None]
    cross = np.einsum("ni,nj->nij", wX, X).reshape(len(y), k * k)
    xtwx = np.zeros((g, k * k))
    np.add.at(xtwx, codes, cross)
    xtwy = np.zeros((g, k))
    np.add.at(xtwy, codes, wX * y[:, None])
    return xtwx, xtwy


def _solve_coefficient(xtwx: np.ndarray, xtwy: np.ndarray, k: int, coefficient: int) -> np.ndarray:
    out = np.full(len(xtwx), np.nan)
    matrices = xtwx.reshape(-1, k, k)
    for i in range(len(xtwx)):
        try:
            out[i] = np.linalg.solve(matrices[i], xtwy[i])[coefficient]
        except np.linalg.LinAlgError:
            continue
        # a resample that loses a whole group leaves X'WX singular in exact arithmetic but
        # not always in floating point; such a solution is meaningless
        if np.linalg.cond(matrices[i]) > 1e12:
            out[i] = np.nan
    return out


def cluster_bootstrap_wls(
    y: np.ndarray,
    X: np.ndarray,
    weights: np.ndarray,
    clusters: np.ndarray,
    *,
    reps: int,
    seed: int,
    coefficient: int = 1,
) -> np.ndarray:
    """One WLS coefficient over `reps` resamples of whole clusters; singular resamples give NaN."""
    codes, g = _codes(clusters)
    k = X.shape[1]
    xtwx, xtwy = _wls_cluster_sums(y, X, weights, codes, g)
    rng = np.random.default_rng(seed)
    out = np.empty(reps)
    chunk = max(1, min(reps, 2_000_000 // max(g, 1)))
    done = 0
    while done < reps:
        size = min(chunk, reps - done)
        counts = _resample_counts(rng, g, size)
        out[done : done + size] = _solve_coefficient(counts @ xtwx, counts @ xtwy, k, coefficient)
        done += size
    return out


def jackknife_wls(
    y: np.ndarray, X: np.ndarray, weights: np.ndarray, clusters: np.ndarray, *, coefficient: int = 1
) -> np.ndarray:
    """One WLS coefficient leaving out each cluster in turn (NaN when singular)."""
    codes, g = _codes(clusters)
    k = X.shape[1]
    xtwx, xtwy = _wls_cluster_sums(y, X, weights, codes, g)
    return _solve_coefficient(
        xtwx.sum(axis=0)[None, :] - xtwx, xtwy.sum(axis=0)[None, :] - xtwy, k, coefficient
    )


def pigeonhole_bootstrap_wls(
    y: np.ndarray,
    X: np.ndarray,
    weights: np.ndarray,
    sets: np.ndarray,
    units: np.ndarray,
    *,
    reps: int,
    seed: int,
    coefficient: int = 1,
) -> np.ndarray:
    """One WLS coefficient over `reps` pigeonhole resamples (Owen 2007) of sets x units.

    Row r gets weight weights[r] * a[sets[r]] * b[units[r]], with a and b
    independent multinomial resampling counts of the sets and of the units; a
    row with units[r] < 0 (a treated row, nested in its set) gets only a.
    Singular resamples give NaN.
    """
    set_codes, g = _codes(sets)
    has_unit = units >= 0
    unit_codes = np.zeros(len(units), np.int64)
    unit_codes[has_unit], u = _codes(units[has_unit])
    k = X.shape[1]
    wX = X * weights[:, None]
    cross = np.einsum("ni,nj->nij", wX, X).reshape(len(y), k * k)
    moment = wX * y[:, None]
    rng = np.random.default_rng(seed)
    out = np.empty(reps)
    chunk = max(1, min(reps, 20_000_000 // max(len(y) + g + u, 1)))
    done = 0
    while done < reps:
        size = min(chunk, reps - done)
        set_counts = _resample_counts(rng, g, size)
        unit_counts = _resample_counts(rng, u, size)
        multipliers = set_counts[:, set_codes] * np.where(has_unit, unit_counts[:, unit_codes], 1.0)
        out[done : done + size] = _solve_coefficient(
            multipliers @ cross, multipliers @ moment, k, coefficient
        )
        done += size
    return out


@dataclass(frozen=True)
class BootstrapInterval:
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    interval: str
    failed_replicates: int
    bias_correction: float | None = None  # z0 (BCa only)
    acceleration: float | None = None  # a (BCa only)


def bootstrap_interval(
    draws: np.ndarray,
    estimate: float,
    *,
    alpha: float,
    interval: str = "percentile",
    jackknife: np.ndarray | None = None,
) -> BootstrapInterval:
    """Percentile or BCa interval, SE and p-value from bootstrap draws of a statistic.

    BCa (Efron 1987; Efron & Tibshirani 1993, ch. 14): z0 = Φ⁻¹(share of draws
    below the estimate, ties counted half); a = Σ d³ / (6 (Σ d²)^1.5) with d the
    jackknife mean minus each delete-one-cluster estimate; the interval's ends
    are the draws' quantiles at Φ(z0 + (z0 + z)/(1 - a (z0 + z))) for z = ±z_{α/2}.
    The p-value is the α at which an end of the interval reaches 0.
    """
    from scipy import stats

    finite = np.sort(draws[np.isfinite(draws)])
    failed = int(len(draws) - len(finite))
    se = float(np.std(finite, ddof=1))
    below_zero = float(np.mean(finite <= 0))
    above_zero = float(np.mean(finite >= 0))
    if interval == "percentile":
        low, high = (float(q) for q in np.quantile(finite, [alpha / 2, 1 - alpha / 2]))
        p_value = float(min(1.0, 2 * min(below_zero, above_zero)))
        return BootstrapInterval(se, low, high, p_value, "percentile", failed)
    if interval != "bca":
        raise ValueError(f"unknown bootstrap interval {interval!r}")
    if jackknife is None:
        raise ValueError("the BCa interval needs the jackknife estimates")
    share_below = (np.sum(finite < estimate) + 0.5 * np.sum(finite == estimate)) / len(finite)
    share_below = min(max(share_below, 0.5 / len(finite)), 1 - 0.5 / len(finite))
    z0 = float(stats.norm.ppf(share_below))
    leave_one_out = jackknife[np.isfinite(jackknife)]
    d = leave_one_out.mean() - leave_one_out
    denominator = 6.0 * float(np.sum(d**2)) ** 1.5
    acceleration = float(np.sum(d**3) / denominator) if denominator > 0 else 0.0

    def adjusted(z: float) -> float:
        return float(stats.norm.cdf(z0 + (z0 + z) / (1 - acceleration * (z0 + z))))

    z_alpha = float(stats.norm.ppf(alpha / 2))
    low, high = (
        float(np.quantile(finite, adjusted(z))) for z in (z_alpha, -z_alpha)
    )
    # invert: the BCa level whose lower (or upper) end sits at zero
    share_at_zero = min(max(below_zero, 0.5 / len(finite)), 1 - 0.5 / len(finite))
    w = float(stats.norm.ppf(share_at_zero)) - z0
    z_zero = w / (1 + acceleration * w) - z0
    tail = float(stats.norm.cdf(z_zero))
    p_value = float(min(1.0, 2 * min(tail, 1 - tail)))
    return BootstrapInterval(se, low, high, p_value, "bca", failed, z0, acceleration)
