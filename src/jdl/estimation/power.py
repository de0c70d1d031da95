"""Power: people needed to detect a difference, and the minimum detectable effect.

Binary outcomes use Cohen's h (arcsine) with the normal approximation, as
statsmodels' proportion_effectsize + NormalIndPower; counts and continuous
outcomes use the two-sample t-test on a standardised difference (difference /
pooled SD), as statsmodels' TTestIndPower. Both are two-sided.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

POWER = 0.80


def pooled_sd(var_treatment: float, n_treatment: float, var_comparison: float, n_comparison: float) -> float:
    dof = n_treatment + n_comparison - 2
    if dof <= 0:
        return float("nan")
    return math.sqrt(((n_treatment - 1) * var_treatment + (n_comparison - 1) * var_comparison) / dof)


def _solve(binary: bool, **kwargs: float | None) -> float:
    from statsmodels.stats.power import NormalIndPower, TTestIndPower

    engine = NormalIndPower() if binary else TTestIndPower()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        solved = engine.solve_power(alternative="two-sided", **kwargs)
    # statsmodels returns a 1-element array when its root finder falls back to an optimiser
    return float(np.asarray(solved, dtype=float).reshape(-1)[0])


def people_needed(
    *,
    binary: bool,
    treatment_mean: float,
    comparison_mean: float,
    sd: float,
    alpha: float,
    power: float = POWER,
) -> int | None:
    """People in EACH group to detect the observed difference; None when it is 0 or undefined."""
    difference = treatment_mean - comparison_mean
    if difference == 0 or not np.isfinite(difference):
        return None
    if binary:
        from statsmodels.stats.proportion import proportion_effectsize

        effect = abs(float(proportion_effectsize(treatment_mean, comparison_mean)))
    else:
        if not sd > 0:
            return None
        effect = abs(difference) / sd
    if effect == 0:
        return None
    n = _solve(binary, effect_size=effect, nobs1=None, alpha=alpha, power=power, ratio=1.0)
    return math.ceil(n) if np.isfinite(n) else None


def min_detectable_effect(
    *,
    binary: bool,
    comparison_mean: float,
    sd: float,
    n_treatment: float,
    n_comparison: float,
    alpha: float,
    power: float = POWER,
) -> float | None:
    """Smallest |difference| detectable with `power` with these group sizes.

    For a binary outcome the detectable Cohen's h is turned into a change in
    proportion from the comparison rate; of the increase and the decrease, the
    smaller feasible one is reported.
    """
    if n_treatment < 2 or n_comparison < 2:
        return None
    effect = _solve(
        binary,
        effect_size=None,
        nobs1=float(n_treatment),
        alpha=alpha,
        power=power,
        ratio=float(n_comparison) / float(n_treatment),
    )
    if not np.isfinite(effect):
        return None
    if not binary:
        return effect * sd if sd > 0 else None
    phi = math.asin(math.sqrt(min(max(comparison_mean, 0.0), 1.0)))
    changes = []
    for shifted in (phi + effect / 2, phi - effect / 2):
        if 0 <= shifted <= math.pi / 2:
            changes.append(abs(math.sin(shifted) ** 2 - comparison_mean))
    return min(changes) if changes else None
