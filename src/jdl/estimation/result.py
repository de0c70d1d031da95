"""The estimated difference between the treatment and comparison groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EstimateResult:
    """One measure's estimate with its uncertainty and power.

    difference = treatment_mean - comparison_mean; the interval and p-value are
    at `confidence`; `significant` means the interval excludes zero at alpha =
    1 - confidence. n_treatment / n_comparison count units with weight > 0 and
    an outcome. people_needed: when not significant, people needed in each group
    to detect the observed difference with 80% power (None when significant or
    when the difference is 0); min_detectable_effect: the smallest difference
    (in the outcome's units, as a magnitude) detectable with 80% power with the
    achieved sample sizes.

    For estimators that model rather than average (regression_adjustment, ipw,
    aipw, meta-learners) treatment_mean is the estimated mean outcome of the
    estimand's population under treatment (for the ATT: the treated's observed
    mean) and comparison_mean = treatment_mean - difference, the estimated
    counterfactual mean. `parameters` records the variance method, standard
    error, reference distribution and every setting used.
    """

    estimand: str
    method: str
    parameters: dict[str, Any]
    treatment_mean: float
    comparison_mean: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    confidence: float
    n_treatment: int
    n_comparison: int
    people_needed: int | None
    min_detectable_effect: float | None
    effective_n_comparison: float | None = None
