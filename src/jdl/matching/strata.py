"""Stratification rules of MatchIt: propensity subclasses (with "scooting") and CEM coarsening."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from jdl.errors import JdlUserError


def quantile_subclasses(
    distance: np.ndarray, basis: np.ndarray, eligible: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """MatchIt's subclass boundaries and codes (0 = not in a subclass).

    Boundaries are R's type-7 quantiles of distance[basis] at 0, 1/count, ..., 1
    (basis: treated for the ATT, controls for the ATC, everyone for the ATE,
    discarded units included, as MatchIt does); eligible units get
    findInterval(all.inside = TRUE), i.e. 1..count.
    """
    cuts = np.quantile(distance[basis], np.linspace(0, 1, count + 1))
    codes = np.clip(np.searchsorted(cuts, distance, side="right"), 1, count)
    return np.where(eligible, codes, 0).astype(np.int64), cuts


def scoot(codes: np.ndarray, treated: np.ndarray, distance: np.ndarray, min_n: int = 1) -> np.ndarray:
    """MatchIt's subclass_scoot: move edge units so every subclass has >= min_n of each group.

    codes: 1.. per unit (all units here are in a subclass). A subclass lacking a
    group takes, from the nearer side (weighted by distance in subclasses), the
    unit of that group with the most extreme distance next to it.
    """
    labels = np.unique(codes)
    n_sub = len(labels)
    sub = np.searchsorted(labels, codes) + 1  # 1..n_sub
    groups = [bool(g) for g in pd.unique(treated)]
    for group in groups:
        if int((treated == group).sum()) < n_sub * min_n:
            raise JdlUserError.single(
                "matching.subclasses",
                f"not enough {'treated' if group else 'comparison'} units to put {min_n} in each "
                f"of {n_sub} subclasses",
                value=n_sub,
                hint="use fewer subclasses",
            )
    for group in groups:
        members = np.flatnonzero(treated == group)
        if len(members) == n_sub:
            sub[members] = np.arange(1, n_sub + 1)
    table = {g: np.bincount(sub[treated == g], minlength=n_sub + 1)[1:].astype(np.int64) for g in groups}
    if all((table[g] >= min_n).all() for g in groups):
        return sub

    def soft(values: np.ndarray) -> np.ndarray:
        return np.maximum(values - 1, 0)

    for group in groups:
        counts = table[group]
        for _ in range(min_n):
            while (counts == 0).any():
                first_0 = int(np.flatnonzero(counts == 0)[0]) + 1  # 1-based, as in R
                positions = np.arange(1, n_sub + 1)
                left = positions < first_0
                right = positions > first_0
                take_left = first_0 == n_sub or (
                    first_0 != 1
                    and float((soft(counts[left]) / np.abs(first_0 - positions[left])).sum())
                    >= float((soft(counts[right]) / np.abs(first_0 - positions[right])).sum())
                )
                if take_left:
                    source = int(positions[left][counts[left] > 0].max())
                    pool = (treated == group) & (sub == source)
                    extreme = distance[pool].max()
                else:
                    source = int(positions[right][counts[right] > 0].min())
                    pool = (treated == group) & (sub == source)
                    extreme = distance[pool].min()
                mover = int(np.flatnonzero(pool & (distance == extreme))[0])
                sub[mover] = first_0
                counts[first_0 - 1] = 1
                counts[source - 1] -= 1
            counts -= 1
    return sub


def _r_seq_breaks(low: float, high: float, bins: int) -> np.ndarray:
    """seq(low, high, length = bins + 1) as R computes it, with the ends set to -Inf and Inf."""
    if bins == 1 or low == high:
        inner = np.empty(0)
    else:
        inner = low + np.arange(1, bins) * ((high - low) / bins)
    return np.concatenate(([-np.inf], inner, [np.inf]))


def _nclass_sturges(x: np.ndarray) -> int:
    return math.ceil(math.log2(len(x)) + 1)


def _nclass_scott(x: np.ndarray) -> int:
    h = 3.5 * math.sqrt(float(np.var(x, ddof=1))) * len(x) ** (-1 / 3)
    return max(1, math.ceil((x.max() - x.min()) / h)) if h > 0 else 1


def _signif(x: np.ndarray, digits: int) -> np.ndarray:
    with np.errstate(divide="ignore"):
        magnitude = np.where(x == 0, 0, np.floor(np.log10(np.abs(x))))
    factor = 10.0 ** (digits - 1 - magnitude)
    return np.round(x * factor) / factor


def _nclass_fd(x: np.ndarray) -> int:
    rounded = np.sort(_signif(x, 5))
    h = 2 * float(np.subtract(*np.quantile(rounded, [0.75, 0.25])))
    alpha = 1 / 4
    while h == 0 and (alpha := alpha / 2) >= 1 / 512:
        high, low = np.quantile(rounded, [1 - alpha, alpha])
        h = float(high - low) / (1 - 2 * alpha)
    if h > 0:
        return max(1, math.ceil((x.max() - x.min()) / (h * len(x) ** (-1 / 3))))
    return 1


def coarsen(values: np.ndarray, rule: int | list[float] | str) -> np.ndarray | None:
    """Bin codes of one numeric covariate as MatchIt's cem_matchit; None drops the covariate.

    rule: a number of equal-width bins over [min, max] (0: no coarsening; 1: drop
    the covariate), a list of cut points, "sturges" | "fd" | "scott", or "qN"
    (N quantile bins). Bins are left-closed, as R's findInterval.
    """
    if isinstance(rule, str):
        if rule.startswith("q"):
            q = int(rule[1:])
            cut_values = np.quantile(values, np.arange(1, q) / q)
            breaks = np.concatenate(([-np.inf], np.unique(cut_values), [np.inf]))
            return np.searchsorted(breaks, values, side="right")
        bins = {"sturges": _nclass_sturges, "fd": _nclass_fd, "scott": _nclass_scott}[rule](values)
    elif isinstance(rule, list):
        breaks = np.concatenate(([-np.inf], np.unique(np.asarray(rule, float)), [np.inf]))
        return np.searchsorted(breaks, values, side="right")
    else:
        if rule == 0:
            return np.unique(values, return_inverse=True)[1]
        if rule == 1:
            return None
        bins = rule
    breaks = _r_seq_breaks(float(values.min()), float(values.max()), bins)
    return np.searchsorted(breaks, values, side="right")


def cem_strata(covariates: pd.DataFrame, cutpoints: dict[str, int | list[float] | str]) -> np.ndarray:
    """One integer code per unit for the combination of coarsened covariate values.

    Numeric (and boolean) covariates are coarsened with their rule (default
    Sturges); other covariates are matched exactly on their values.
    """
    unknown = sorted(set(cutpoints) - set(covariates.columns))
    if unknown:
        raise JdlUserError.single(
            "matching.cutpoints",
            "cut points are given for columns that are not covariates",
            value=unknown,
            allowed=", ".join(map(str, covariates.columns)),
        )
    parts: dict[str, np.ndarray] = {}
    for column in covariates.columns:
        series = covariates[column]
        numeric = pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
        if not numeric:
            if column in cutpoints:
                raise JdlUserError.single(
                    f"matching.cutpoints.{column}",
                    "cut points apply to numeric covariates; this one is matched exactly",
                    value=str(series.dtype),
                    hint="remove the entry",
                )
            parts[str(column)] = pd.factorize(series, sort=True)[0]
            continue
        codes = coarsen(series.to_numpy(dtype=float), cutpoints.get(str(column), "sturges"))
        if codes is not None:
            parts[str(column)] = np.asarray(codes, dtype=np.int64)
    if not parts:
        return np.zeros(len(covariates), dtype=np.int64)
    frame = pd.DataFrame(parts, index=covariates.index)
    return frame.groupby(list(frame.columns), sort=True).ngroup().to_numpy(np.int64)
