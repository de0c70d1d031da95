"""Variance of a weighted difference in means: cluster-robust sandwich and cluster bootstrap.

The point estimate is the coefficient on treatment in a weighted least-squares
regression of the outcome on an intercept and the treatment indicator, i.e. the
difference between the weighted group means. The sandwich follows R's
sandwich::vcovCL(type = "HC1", cadjust = TRUE): for each clustering dimension
(and, for two-way clustering, their intersection with a minus sign) the
cluster-summed scores' cross-product times G/(G-1), all times (n-1)/(n-k).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(values, sort=False)
    return codes.astype(np.int64), len(uniques)


def weighted_difference(
    y: np.ndarray,
    treated: np.ndarray,
    weights: np.ndarray,
    clusters: list[np.ndarray] | None = None,
) -> WeightedDifference:
    """WLS of y on [1, treated] with HC1 (no clusters) or cluster-robust (1 or 2 dims) SE."""
    n = len(y)
    k = 2
    X = np.column_stack([np.ones(n), treated.astype(float)])
    XtWX = X.T @ (X * weights[:, None])
    beta = np.linalg.solve(XtWX, X.T @ (weights * y))
    residual = y - X @ beta
    scores = X * (weights * residual)[:, None]
    dims: list[np.ndarray] = list(clusters) if clusters else [np.arange(n)]
    signs = [1.0] * len(dims)
    if len(dims) == 2:
        pair = pd.MultiIndex.from_arrays([dims[0], dims[1]])
        dims.append(pair.factorize()[0])
        signs.append(-1.0)
    elif len(dims) > 2:
        raise ValueError("at most two clustering dimensions are supported")
    meat = np.zeros((k, k))
    counts = []
    for dim, sign in zip(dims, signs, strict=True):
        codes, g = _codes(np.asarray(dim))
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
    treat_mean = float(beta[0] + beta[1])
    return WeightedDifference(
        treatment_mean=treat_mean,
        comparison_mean=float(beta[0]),
        difference=float(beta[1]),
        se=float(np.sqrt(max(vcov[1, 1], 0.0))),
        df=n - k,
        clusters=tuple(counts[: len(clusters)] if clusters else ()),
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
