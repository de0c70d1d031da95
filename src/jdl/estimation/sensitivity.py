"""Sensitivity to unmeasured confounding: Rosenbaum bounds, the E-value, a placebo outcome.

Rosenbaum bounds (Rosenbaum 2002, Observational Studies, §4.3-4.4): within a
matched set, two units with the same observed covariates may differ in their
odds of treatment by at most a factor Γ. For a binary outcome and matched sets
of one treated unit and m - 1 controls (the JDL design: each treated person
with their k matches), the statistic is the number of treated people with the
outcome value in the direction of the observed effect (e.g. NOT reoffending,
when the treated reoffend less). If a set has c units with that value, the
treated unit is one of them with probability at most Γc / (Γc + m - c); the
sets are independent, so the upper bound on the one-sided p-value is the
upper tail of a sum of independent Bernoullis (computed exactly, or by the
normal approximation with continuity correction beyond 3,000 informative
sets). For 1:1 pairs this is the McNemar bound: with D discordant pairs and T
of them favouring treatment, p⁺(Γ) = P(Binomial(D, Γ/(1+Γ)) ≥ T).
The reported Γ is where p⁺ reaches alpha (a one-sided test in the direction
of the observed effect; pass alpha = (1 - confidence) / 2 for the one-sided
half of the headline's two-sided test).

Approximation with replacement: a control matched to several treated people
appears in each of their sets, so the sets are not independent; the bound
then treats each appearance as a separate control (the sets' structure is kept,
the dependence ignored), as the pair-level analysis of the sandwich does not.
Weighted matched sets (caliper leaving fewer than k matches) need no weights:
each set is its own stratum. Stratification methods (exact, subclass) have no
matched sets and are not supported.

E-value (VanderWeele & Ding 2017): for a risk ratio RR > 1,
E = RR + sqrt(RR (RR - 1)); for RR < 1 use 1/RR. For the interval, the limit
closest to 1 is used, and the E-value is 1 when the interval includes 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jdl.estimation.estimators import OutcomeKind, check_outcome, estimate
from jdl.estimation.result import EstimateResult
from jdl.matching import MatchingResult
from jdl.spec.models import EstimatorSpec

EXACT_LIMIT = 3000
GAMMA_GRID = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0)


@dataclass(frozen=True)
class RosenbaumResult:
    """Upper bounds on the one-sided p-value as the hidden bias Γ grows.

    gamma_critical: the Γ at which the bound reaches alpha (1.0 when the result
    is not significant even without hidden bias; None when it stays below alpha
    up to gamma_max, i.e. the result is at least that robust). `available` is
    False (with `note`) for designs without matched sets.
    """

    method: str
    available: bool
    alpha: float
    direction: str  # "treated lower" or "treated higher"
    statistic: int
    n_sets: int
    n_informative_sets: int
    gamma_critical: float | None
    gamma_max: float
    grid: tuple[tuple[float, float], ...]  # (Γ, upper-bound p-value)
    note: str


def poisson_binomial_upper_tail(probabilities: np.ndarray, at_least: int) -> float:
    """P(sum of independent Bernoulli(probabilities) >= at_least), exactly by convolution."""
    if at_least <= 0:
        return 1.0
    if at_least > len(probabilities):
        return 0.0
    distribution = np.ones(1)
    for p in probabilities:
        distribution = np.concatenate([distribution * (1 - p), [0.0]]) + np.concatenate(
            [[0.0], distribution * p]
        )
    return float(min(1.0, distribution[at_least:].sum()))


def _upper_tail(probabilities: np.ndarray, at_least: int) -> float:
    from scipy import stats

    if len(probabilities) <= EXACT_LIMIT:
        return poisson_binomial_upper_tail(probabilities, at_least)
    mean = probabilities.sum()
    sd = math.sqrt(float(np.sum(probabilities * (1 - probabilities))))
    return float(stats.norm.sf((at_least - 0.5 - mean) / sd)) if sd > 0 else float(at_least <= mean)


@dataclass(frozen=True)
class MatchedSets:
    set_size: np.ndarray  # m: units in each set with an outcome
    with_value: np.ndarray  # c: units in the set with the outcome value counted
    treated_has_value: np.ndarray  # bool per set


def matched_sets(y: np.ndarray, matching: MatchingResult, value: float) -> MatchedSets:
    pairs = matching.pairs
    focal = pairs.drop_duplicates("subclass")[["subclass", "treated_row"]]
    members = pd.concat(
        [
            pd.DataFrame({"subclass": focal["subclass"].to_numpy(), "row": focal["treated_row"].to_numpy(),
                          "is_treated": True}),
            pd.DataFrame({"subclass": pairs["subclass"].to_numpy(), "row": pairs["control_row"].to_numpy(),
                          "is_treated": False}),
        ],
        ignore_index=True,
    )
    members["y"] = y[members["row"].to_numpy()]
    members = members[~np.isnan(members["y"].to_numpy())]
    members["has_value"] = members["y"].to_numpy() == value
    grouped = members.groupby("subclass", sort=True)
    summary = pd.DataFrame(
        {
            "m": grouped.size(),
            "c": grouped["has_value"].sum(),
            "treated_count": grouped["is_treated"].sum(),
            "treated_value": members[members["is_treated"]].groupby("subclass")["has_value"].first(),
        }
    )
    summary = summary[(summary["treated_count"] == 1) & (summary["m"] >= 2)]
    return MatchedSets(
        set_size=summary["m"].to_numpy(float),
        with_value=summary["c"].to_numpy(float),
        treated_has_value=summary["treated_value"].to_numpy(bool),
    )


def _unavailable(alpha: float, gamma_max: float, note: str) -> RosenbaumResult:
    return RosenbaumResult(
        method="Rosenbaum bounds for a binary outcome in matched sets", available=False,
        alpha=alpha, direction="", statistic=0, n_sets=0, n_informative_sets=0,
        gamma_critical=None, gamma_max=gamma_max, grid=(), note=note,
    )


def rosenbaum_bounds(
    outcome: pd.Series,
    matching: MatchingResult,
    *,
    alpha: float = 0.05,
    gamma_max: float = 5.0,
) -> RosenbaumResult:
    """Rosenbaum bounds for a 0/1 outcome over the matched sets (see the module docstring)."""
    if matching.pairs.empty or matching.estimand != "ATT":
        return _unavailable(
            alpha, gamma_max,
            "needs matched sets of one treated person and their matches (nearest-neighbour "
            "matching for the ATT)",
        )
    y = check_outcome(outcome, "binary", "outcome")
    observed = matched_sets(y, matching, 1.0)
    # direction of the observed effect: treated outcome total vs its expectation with no effect
    expected = float(np.sum(observed.with_value / observed.set_size))
    treated_total = int(observed.treated_has_value.sum())
    lower = treated_total <= expected
    value = 0.0 if lower else 1.0
    sets = observed if not lower else matched_sets(y, matching, value)
    statistic = int(sets.treated_has_value.sum())
    certain = sets.with_value == sets.set_size
    informative = (sets.with_value > 0) & ~certain
    needed = statistic - int(certain.sum())
    m, c = sets.set_size[informative], sets.with_value[informative]

    def p_upper(gamma: float) -> float:
        return _upper_tail(gamma * c / (gamma * c + m - c), needed)

    grid = tuple((g, p_upper(g)) for g in GAMMA_GRID if g <= gamma_max)
    if p_upper(1.0) >= alpha:
        gamma_critical: float | None = 1.0
    elif p_upper(gamma_max) < alpha:
        gamma_critical = None
    else:
        from scipy import optimize

        gamma_critical = float(
            optimize.brentq(lambda g: p_upper(g) - alpha, 1.0, gamma_max, xtol=1e-6)
        )
    note = (
        "controls reused across sets (matching with replacement) are counted in each set; "
        "the sets' dependence is ignored"
        if matching.replace else "matched sets are disjoint"
    )
    return RosenbaumResult(
        method="Rosenbaum bounds for a binary outcome in matched sets "
        + ("(exact)" if informative.sum() <= EXACT_LIMIT else "(normal approximation)"),
        available=True,
        alpha=alpha,
        direction="treated lower" if lower else "treated higher",
        statistic=statistic,
        n_sets=len(sets.set_size),
        n_informative_sets=int(informative.sum()),
        gamma_critical=gamma_critical,
        gamma_max=gamma_max,
        grid=grid,
        note=note,
    )


@dataclass(frozen=True)
class EValueResult:
    """E-values of a risk ratio and of the limit of its interval closest to 1."""

    method: str
    risk_ratio: float
    ci_low: float
    ci_high: float
    e_value: float
    e_value_ci: float


def _e(rr: float) -> float:
    rr = 1 / rr if rr < 1 else rr
    return rr + math.sqrt(rr * (rr - 1))


def e_value(risk_ratio: float, ci_low: float, ci_high: float) -> EValueResult:
    """VanderWeele & Ding's E-value for a risk ratio and its confidence interval."""
    if not (risk_ratio > 0 and ci_low > 0 and ci_high > 0):
        raise ValueError("risk ratio and its limits must be positive")
    ci_value = 1.0 if ci_low <= 1 <= ci_high else _e(ci_low if risk_ratio > 1 else ci_high)
    return EValueResult(
        method="E-value (VanderWeele & Ding 2017)",
        risk_ratio=risk_ratio,
        ci_low=ci_low,
        ci_high=ci_high,
        e_value=_e(risk_ratio),
        e_value_ci=ci_value,
    )


@dataclass(frozen=True)
class PlaceboResult:
    """The headline estimator applied to an outcome measured before the index date."""

    outcome: str
    estimate: EstimateResult
    consistent_with_no_effect: bool  # its interval includes 0
    note: str


def placebo_estimate(
    pre_index_outcome: pd.Series,
    matching: MatchingResult,
    spec: EstimatorSpec,
    *,
    kind: OutcomeKind,
    name: str = "placebo",
    covariates: pd.DataFrame | None = None,
) -> PlaceboResult:
    """Estimate the 'effect' on a pre-index outcome, which the intervention cannot have changed.

    A significant difference points to residual confounding (or to a placebo
    outcome that was itself matched on, which makes the check uninformative).
    """
    result = estimate(pre_index_outcome, matching, spec, kind=kind, covariates=covariates)
    consistent = bool(result.ci_low <= 0 <= result.ci_high)
    note = (
        "no difference detected before the index date" if consistent
        else "the groups already differed before the index date: residual confounding is likely"
    )
    return PlaceboResult(outcome=name, estimate=result, consistent_with_no_effect=consistent, note=note)
