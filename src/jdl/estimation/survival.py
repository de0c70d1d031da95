"""Kaplan-Meier curves of time to first proven reoffence, per group, as chart data.

Everyone is followed for the same window, so a person who did not reoffend is
censored at the end of the follow-up. The comparison curve is weighted by the
matching weights (statsmodels' SurvfuncRight with freq_weights: at each event
time the weighted number at risk and the weighted number of events), so it
estimates the treated group's curve had they not been treated (for the ATT).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from jdl.errors import JdlUserError
from jdl.matching import MatchingResult


@dataclass(frozen=True)
class SurvivalCurve:
    """A step function: survival[i] holds from time[i] until time[i+1]; time[0] = 0, survival[0] = 1."""

    time: tuple[float, ...]
    survival: tuple[float, ...]
    n_at_risk: tuple[float, ...]  # weighted number at risk just before each time
    n_events: tuple[float, ...]  # weighted number of events at each time


@dataclass(frozen=True)
class KaplanMeierResult:
    estimand: str
    method: str
    parameters: dict[str, Any]
    curves: dict[str, SurvivalCurve]  # "treatment", "comparison"


def kaplan_meier(time: np.ndarray, event: np.ndarray, weights: np.ndarray | None = None) -> SurvivalCurve:
    """Weighted Kaplan-Meier estimate (statsmodels SurvfuncRight), starting at (0, 1)."""
    from statsmodels.duration.survfunc import SurvfuncRight

    fit = SurvfuncRight(
        np.asarray(time, float), np.asarray(event, float),
        freq_weights=None if weights is None else np.asarray(weights, float),
    )
    return SurvivalCurve(
        time=(0.0, *map(float, fit.surv_times)),
        survival=(1.0, *map(float, fit.surv_prob)),
        n_at_risk=(float(fit.n_risk[0]) if len(fit.n_risk) else 0.0, *map(float, fit.n_risk)),
        n_events=(0.0, *map(float, fit.n_events)),
    )


def time_to_first_reoffence_curves(
    days_to_first: pd.Series, matching: MatchingResult, *, follow_up_days: float
) -> KaplanMeierResult:
    """Curves per group from days to first proven reoffence (NaN: no reoffence in the window)."""
    if not days_to_first.index.equals(matching.units.index):
        raise ValueError("days_to_first must have the same index as matching.units")
    days = pd.to_numeric(days_to_first, errors="coerce").to_numpy(float)
    late = days[~np.isnan(days)] > follow_up_days
    if late.any() or (days[~np.isnan(days)] < 0).any():
        raise JdlUserError.single(
            "days_to_first_reoffence",
            "days to first reoffence must lie between 0 and the follow-up",
            value=float(days[~np.isnan(days)][late][0]) if late.any() else "a negative value",
            allowed=f"0 to {follow_up_days}",
        )
    units = matching.units
    weights = units["weight"].to_numpy(float)
    treated = units["treated"].to_numpy(bool)
    event = ~np.isnan(days)
    time = np.where(event, days, follow_up_days)
    curves = {}
    for label, members in (("treatment", treated), ("comparison", ~treated)):
        rows = members & (weights > 0)
        curves[label] = kaplan_meier(time[rows], event[rows], weights[rows])
    return KaplanMeierResult(
        estimand=matching.estimand,
        method="Kaplan-Meier (statsmodels SurvfuncRight, matching weights as freq_weights)",
        parameters={"follow_up_days": follow_up_days, "censoring": "end of follow-up"},
        curves=curves,
    )
