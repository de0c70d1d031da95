"""Subgroup analyses: the evaluation re-matched within each level of one column.

A level is reported only when enough participants were matched and every
covariate is balanced after matching; otherwise the reason is reported
instead of numbers. Subgroups split by a participant-only column (an
organisation's own column such as attendance) draw their comparison group
from the whole pool.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from jdl.errors import JdlUserError
from jdl.estimation import estimate
from jdl.estimation.disclosure import apply_disclosure
from jdl.matching import match
from jdl.measures import OutcomeColumn
from jdl.spec import Spec
from jdl.spec.models import SubgroupSpec


def level_labels(values: pd.Series, bands: list[float] | None) -> pd.Series:
    """Each row's level: a band label for numeric columns with bands, else the value itself."""
    if bands is None:
        return values.astype("string")
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    edges = [-np.inf, *bands, np.inf]
    labels = []
    for low, high in itertools.pairwise(edges):
        if np.isinf(low):
            labels.append(f"under {high:g}")
        elif np.isinf(high):
            labels.append(f"{low:g} and over")
        else:
            labels.append(f"{low:g} to under {high:g}")
    index = np.searchsorted(np.asarray(bands, dtype=float), numbers, side="right")
    out = pd.Series(np.asarray(labels, dtype=object)[np.minimum(index, len(labels) - 1)], index=values.index,
                    dtype="string")
    return out.mask(np.isnan(numbers))


def _level_order(labels: pd.Series, bands: list[float] | None) -> list[str]:
    present = [str(v) for v in pd.unique(labels.dropna())]
    if bands is None:
        return sorted(present)
    order = {label: i for i, label in enumerate(level_labels(pd.Series([-np.inf, *bands]), bands))}
    return sorted(present, key=lambda label: order.get(label, len(order)))


def run_subgroups(
    spec: Spec,
    frame: pd.DataFrame,
    covariate_columns: list[str],
    outcome_columns: list[OutcomeColumn],
    primary: str,
    *,
    participant_only: set[str],
    exact_columns: list[str],
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    primary_column = next(c for c in outcome_columns if c.name == primary)
    treated = frame["treated"].to_numpy(dtype=bool)
    for position, subgroup in enumerate(spec.subgroups):
        if subgroup.by not in frame.columns:
            raise JdlUserError.single(
                f"spec subgroups.{position}.by", "no such column to split by", value=subgroup.by,
                allowed=", ".join(sorted(set(covariate_columns) | participant_only)),
            )
        labels = level_labels(frame[subgroup.by], subgroup.bands)
        for level in _level_order(labels[treated], subgroup.bands):
            in_level = (labels == level).fillna(False).to_numpy()
            keep = (treated & in_level) | (~treated if subgroup.by in participant_only else ~treated & in_level)
            results.append(
                _one_level(spec, subgroup, level, frame.loc[keep].reset_index(drop=True), covariate_columns,
                           primary_column, exact_columns)
            )
    return results


def _one_level(
    spec: Spec,
    subgroup: SubgroupSpec,
    level: str,
    sub: pd.DataFrame,
    covariate_columns: list[str],
    primary: OutcomeColumn,
    exact_columns: list[str],
) -> dict[str, Any]:
    entry: dict[str, Any] = {"by": subgroup.by, "level": level, "status": "not_reported", "reason": None,
                             "n_treatment": int(sub["treated"].sum()), "n_comparison": 0,
                             "max_abs_smd_after": None, "primary": None}
    constant = {c for c in covariate_columns if sub[c].nunique(dropna=False) <= 1}
    covariates = [c for c in covariate_columns if c not in constant]
    matching_spec = spec.matching.model_copy(update={"exact": [c for c in exact_columns if c not in constant]})
    try:
        matching = match(sub, treatment="treated", covariates=covariates, spec=matching_spec)
    except JdlUserError as error:
        entry["reason"] = f"matching failed: {error.render()}"
        return entry
    entry["n_treatment"] = int(matching.n_treated_matched)
    entry["n_comparison"] = int(matching.n_control_matched)
    after = matching.balance.loc[matching.balance["covariate"] != "distance", "smd_after"].abs()
    entry["max_abs_smd_after"] = float(after.max()) if len(after) else 0.0
    minimum = subgroup.min_size or spec.cohort.min_size
    if matching.n_treated_matched < minimum:
        entry["reason"] = f"only {matching.n_treated_matched} participants matched (minimum {minimum})"
        return entry
    if entry["max_abs_smd_after"] > subgroup.max_smd:
        entry["reason"] = (f"covariates not balanced after matching (largest |SMD| "
                           f"{entry['max_abs_smd_after']:.2f} > {subgroup.max_smd:.2f})")
        return entry
    result = estimate(sub[primary.name], matching, spec.estimator, kind=primary.kind,
                      covariates=sub[covariates])
    measure = apply_disclosure(
        {"kind": primary.kind, "display": primary.display, "population": primary.population,
         "lower_is_better": primary.lower_is_better, "label": primary.label,
         "treatment": result.treatment_mean, "comparison": result.comparison_mean,
         "difference": result.difference, "se": result.se, "ci_low": result.ci_low, "ci_high": result.ci_high,
         "p_value": result.p_value, "significant": bool(result.significant),
         "n_treatment": int(result.n_treatment), "n_comparison": int(result.n_comparison)},
        treated_reoffenders=None, name=primary.name,
    )
    entry.update(status="reported", primary=measure)
    return entry
