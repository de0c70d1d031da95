"""Effect measures beyond the difference: risk ratio and odds ratio (binary), rate ratio (counts).

Each ratio compares the treated mean with the matching-weighted comparison
mean, the same two numbers as weighted_difference. Its interval is a Wald
interval on the log scale by the delta method, using the same covariance
matrix as the difference (the WLS of the outcome on [1, treated] with
standard errors clustered on matched sets, two-way with replacement):
with p1 = b0 + b1 and p0 = b0,

  log RR = log p1 - log p0,  gradient (1/p1 - 1/p0, 1/p1)
  log OR = logit p1 - logit p0,  gradient (1/(p1 q1) - 1/(p0 q0), 1/(p1 q1))

Without clusters and weights this is exactly Katz's (RR) and Woolf's (OR)
interval times the HC1 factor n/(n-2). A count's rate ratio is the ratio of
mean counts per person (everyone has the same follow-up) with the RR formula.
The p-value tests log ratio = 0 against the normal distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from jdl.errors import JdlUserError
from jdl.estimation.estimators import (
    OutcomeKind,
    check_outcome,
    matched_counts,
    matched_view,
    require_both_groups,
)
from jdl.estimation.variance import weighted_regression
from jdl.matching import MatchingResult

RatioName = Literal["risk_ratio", "odds_ratio", "rate_ratio"]


@dataclass(frozen=True)
class Ratio:
    """One ratio of treated to comparison with its log-scale Wald interval."""

    name: RatioName
    estimate: float
    log_se: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True)
class RatioResult:
    """The ratios for one outcome; `ratios` is keyed by name (risk_ratio, odds_ratio or rate_ratio)."""

    estimand: str
    method: str
    kind: OutcomeKind
    parameters: dict[str, Any]
    treatment_mean: float
    comparison_mean: float
    confidence: float
    ratios: dict[str, Ratio]


def _gradients(kind: OutcomeKind, p1: float, p0: float) -> dict[RatioName, tuple[np.ndarray, float]]:
    """For each ratio: the gradient of its log in (b0, b1) and the log ratio."""
    log_ratio = np.log(p1) - np.log(p0)
    ratio_gradient = np.array([1 / p1 - 1 / p0, 1 / p1])
    if kind == "count":
        return {"rate_ratio": (ratio_gradient, log_ratio)}
    odds_gradient = np.array([1 / (p1 * (1 - p1)) - 1 / (p0 * (1 - p0)), 1 / (p1 * (1 - p1))])
    log_odds_ratio = np.log(p1 / (1 - p1)) - np.log(p0 / (1 - p0))
    return {
        "risk_ratio": (ratio_gradient, log_ratio),
        "odds_ratio": (odds_gradient, log_odds_ratio),
    }


def effect_ratios(
    outcome: pd.Series,
    matching: MatchingResult,
    kind: OutcomeKind,
    *,
    confidence: float = 0.95,
    variance: Literal["pair_cluster_robust", "robust"] = "pair_cluster_robust",
) -> RatioResult:
    """Risk and odds ratio (binary) or rate ratio (count) of treated vs weighted comparison.

    A ratio is undefined (NaN, with a reason in parameters["undefined"]) when a
    group's mean is 0 (or, for the odds ratio, 1).
    """
    from scipy import stats

    if kind not in ("binary", "count"):
        raise JdlUserError.single(
            "effect ratio", "ratios are defined for binary and count outcomes",
            value=kind, allowed="binary, count",
        )
    if not outcome.index.equals(matching.units.index):
        raise ValueError("outcome must have the same index as matching.units")
    y = check_outcome(outcome, kind, "outcome")
    data = matched_view(y, matching, variance)
    n_t, n_c = matched_counts(y, matching)
    require_both_groups(n_t, n_c)
    X = np.column_stack([np.ones(len(data.y)), data.treated.astype(float)])
    fit = weighted_regression(data.y, X, data.weights, data.clusters, data.robust_type)
    p0 = float(fit.beta[0])
    p1 = float(fit.beta[0] + fit.beta[1])
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    ratios: dict[str, Ratio] = {}
    undefined: dict[str, str] = {}
    defined = _gradients(kind, p1, p0) if min(p1, p0) > 0 else {}
    for name, (gradient, log_ratio) in defined.items():
        if name == "odds_ratio" and max(p1, p0) >= 1:
            undefined[name] = "a group's proportion is 1"
            continue
        se = float(np.sqrt(max(gradient @ fit.vcov @ gradient, 0.0)))
        p_value = float(2 * stats.norm.sf(abs(log_ratio) / se)) if se > 0 else float(log_ratio == 0)
        ratios[name] = Ratio(
            name=name,
            estimate=float(np.exp(log_ratio)),
            log_se=se,
            ci_low=float(np.exp(log_ratio - z * se)),
            ci_high=float(np.exp(log_ratio + z * se)),
            p_value=p_value,
        )
    if min(p1, p0) <= 0:
        names: tuple[RatioName, ...] = ("rate_ratio",) if kind == "count" else ("risk_ratio", "odds_ratio")
        undefined = dict.fromkeys(names, "a group's mean is 0")
    return RatioResult(
        estimand=matching.estimand,
        method="log-scale Wald interval by the delta method",
        kind=kind,
        parameters={
            "variance": variance,
            "standard_error": data.description,
            "clusters": list(fit.clusters),
            "n_treatment": n_t,
            "n_comparison": n_c,
            "undefined": undefined,
        },
        treatment_mean=p1,
        comparison_mean=p0,
        confidence=confidence,
        ratios=ratios,
    )
