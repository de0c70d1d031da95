"""match(): propensity score, distance, common support, caliper, matcher, weights, balance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jdl.errors import EvaluationCannotComplete, JdlUserError
from jdl.matching.background import background_executor
from jdl.matching.balance import PARALLEL_ROWS, EarlyBalance, balance_table
from jdl.matching.design import design_matrix
from jdl.matching.distances import covariate_caliper_criteria, mahalanobis_transform
from jdl.matching.matchers import MATCHERS, MatchingProblem
from jdl.matching.nearest import Caliper, GeneralCriteria
from jdl.matching.propensity import PropensityResult, fit_propensity, propensity_from_column
from jdl.matching.result import UNIT_COLUMNS, DiscardCounts, MatchingResult
from jdl.matching.weights import effective_sample_size, sample_sizes
from jdl.spec.models import MatchingSpec


def treatment_indicator(frame: pd.DataFrame, treatment: str) -> np.ndarray:
    """The treatment column as a bool array; it must be bool or 0/1 with no missing values."""
    if treatment not in frame.columns:
        raise JdlUserError.single(
            f"treatment column {treatment!r}",
            "column not found in the data",
            allowed=", ".join(map(str, frame.columns)),
        )
    column = frame[treatment]
    missing = int(column.isna().sum())
    if missing:
        raise JdlUserError.single(
            f"treatment column {treatment!r}", f"{missing} of {len(column)} rows have no value"
        )
    values = column.to_numpy()
    if values.dtype != bool:
        bad = ~np.isin(values, [0, 1])
        if bad.any():
            raise JdlUserError.single(
                f"treatment column {treatment!r}",
                f"{int(bad.sum())} rows are neither 0 nor 1",
                value=values[bad][0],
                allowed="True/False or 0/1",
            )
    treated = values.astype(bool)
    if treated.all() or not treated.any():
        raise EvaluationCannotComplete(
            f"treatment column {treatment!r}",
            f"matching needs treated and comparison units; got {int(treated.sum())} treated "
            f"of {len(treated)}",
        )
    return treated


def common_support(distance: np.ndarray, treated: np.ndarray, discard: str) -> np.ndarray:
    """MatchIt's discard(): True for units outside the other group's range of the distance."""
    t, c = distance[treated], distance[~treated]
    if discard == "both":
        low, high = max(t.min(), c.min()), min(t.max(), c.max())
        return (distance < low) | (distance > high)
    if discard == "control":
        return ~treated & ((distance < t.min()) | (distance > t.max()))
    if discard == "treated":
        return treated & ((distance < c.min()) | (distance > c.max()))
    return np.zeros(len(distance), dtype=bool)


def _strata(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    if not columns:
        return np.zeros(len(frame), dtype=np.int64)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise JdlUserError.single(
            "matching.exact",
            "exact-matching columns not found in the data",
            value=missing,
            allowed=", ".join(map(str, frame.columns)),
        )
    return frame.groupby(columns, sort=True, dropna=False, observed=True).ngroup().to_numpy(np.int64)


def _propensity(
    frame: pd.DataFrame, X: pd.DataFrame, treated: np.ndarray, spec: MatchingSpec,
    score: np.ndarray | None,
) -> PropensityResult:
    column = spec.propensity.column
    if score is not None:
        if len(score) != len(frame):
            raise JdlUserError.single(
                "matching.propensity",
                f"the score has {len(score)} values for {len(frame)} rows",
            )
        return propensity_from_column(np.asarray(score, float), column=column or "score")
    if column is not None:
        if column not in frame.columns:
            raise JdlUserError.single(
                "matching.propensity.column",
                "score column not found in the data",
                value=column,
                allowed=", ".join(map(str, frame.columns)),
            )
        return propensity_from_column(frame[column].to_numpy(float), column=column)
    return fit_propensity(X, treated, spec.propensity, spec.seed)


def _scaled(
    width: float, scale: str, distance: np.ndarray, propensity: PropensityResult, eligible: np.ndarray
) -> Caliper:
    """A width in absolute units; SDs are sample SDs over all retained units (MatchIt)."""
    if scale == "absolute":
        return Caliper(distance, width)
    values = propensity.linear_predictor if scale == "logit_sd" else distance
    sd = float(np.std(values[eligible], ddof=1))
    return Caliper(values, width * sd)


def _caliper(
    spec: MatchingSpec, distance: np.ndarray, propensity: PropensityResult, eligible: np.ndarray
) -> Caliper | None:
    if spec.caliper is None:
        return None
    return _scaled(spec.caliper.width, spec.caliper.scale, distance, propensity, eligible)


def _criteria(
    frame: pd.DataFrame, spec: MatchingSpec, treated: np.ndarray, eligible: np.ndarray
) -> GeneralCriteria | None:
    if not spec.covariate_calipers and not spec.mahalanobis:
        return None
    values, widths = covariate_caliper_criteria(frame, dict(spec.covariate_calipers), eligible)
    return GeneralCriteria(
        covariate_values=values,
        covariate_widths=widths,
        mahalanobis=mahalanobis_transform(frame, list(spec.mahalanobis), treated, eligible)
        if spec.mahalanobis else None,
    )


def _require_overlap(distance: np.ndarray, treated: np.ndarray, link: str) -> None:
    """Treated and comparison scores must overlap, or no matching can be credible."""
    t, c = distance[treated], distance[~treated]
    if t.min() > c.max() or c.min() > t.max():
        raise EvaluationCannotComplete(
            "matching.propensity",
            f"the treated and comparison groups do not overlap on the propensity score "
            f"({link}): treated {t.min():.4g} to {t.max():.4g}, comparison {c.min():.4g} to "
            f"{c.max():.4g} ({len(t)} treated, {len(c)} comparison units)",
            hint="the groups differ completely on the covariates; check the comparison pool "
            "or the covariates (one may be a proxy for treatment)",
        )


def match(
    frame: pd.DataFrame,
    *,
    treatment: str,
    covariates: list[str],
    spec: MatchingSpec,
    score: np.ndarray | None = None,
) -> MatchingResult:
    """Match comparison units to treated units following MatchIt 4.x conventions.

    frame has one row per unit in a deterministic order (the caller sorts by id):
    the treatment column (bool or 0/1) and the covariates as raw columns. The
    propensity score is fitted on the covariates' design matrix unless `score`
    (or spec.propensity.column) gives it. The distance matched on is the score
    (link "logit") or its linear predictor (link "linear_logit").
    """
    treated = treatment_indicator(frame, treatment)
    X = design_matrix(frame, covariates)
    if len(frame) < PARALLEL_ROWS:
        return _match(frame, X, treated, covariates, spec, score, None)
    # the weight-free half of the balance table runs on a second thread from here: the score's
    # fit and the matcher leave a core idle for long stretches
    background = background_executor("jdl-balance")
    early = EarlyBalance(X, treated, spec.estimand, background)
    try:
        return _match(frame, X, treated, covariates, spec, score, early)
    finally:
        early.cancel()
        background.shutdown(wait=True, cancel_futures=True)


def _match(
    frame: pd.DataFrame, X: pd.DataFrame, treated: np.ndarray, covariates: list[str], spec: MatchingSpec,
    score: np.ndarray | None, early: EarlyBalance | None,
) -> MatchingResult:
    propensity = _propensity(frame, X, treated, spec, score)
    distance = propensity.score if spec.propensity.link == "logit" else propensity.linear_predictor
    _require_overlap(distance, treated, spec.propensity.link)
    discarded = common_support(distance, treated, spec.discard)
    eligible = ~discarded
    caliper = _caliper(spec, distance, propensity, eligible)
    kernel_bandwidth = (
        _scaled(spec.kernel.bandwidth, spec.kernel.scale, distance, propensity, eligible).width
        if spec.method == "kernel" else None
    )
    problem = MatchingProblem(
        treated=treated,
        distance=distance,
        eligible=eligible,
        caliper=caliper,
        exact_strata=_strata(frame, list(spec.exact)),
        covariate_strata=_strata(frame, list(covariates)) if spec.method == "exact" else
        np.zeros(len(frame), dtype=np.int64),
        spec=spec,
        covariates=frame[list(covariates)],
        criteria=_criteria(frame, spec, treated, eligible),
        kernel_bandwidth=kernel_bandwidth,
    )
    assignment = MATCHERS[spec.method](problem)
    weights = assignment.weights
    matched = weights > 0
    n_treated_matched = int((matched & treated).sum())
    n_control_matched = int((matched & ~treated).sum())
    if n_treated_matched == 0 or n_control_matched == 0:
        n_eligible_focal = int((eligible & problem.focal).sum())
        reason = (
            f"; the caliper ({spec.caliper.width} {spec.caliper.scale} = {caliper.width:.4g} "
            f"absolute) left none of the {n_eligible_focal} eligible focal units a match"
            if caliper is not None and spec.caliper is not None else ""
        )
        raise EvaluationCannotComplete(
            "matching",
            f"no matches were found ({n_treated_matched} treated and {n_control_matched} "
            f"comparison units matched){reason}",
            hint="widen or remove the caliper, drop exact-matching covariates, or set discard: none",
        )
    units = pd.DataFrame(
        {
            "treated": treated,
            "propensity_score": propensity.score,
            "distance": distance,
            "weight": weights,
            "subclass": assignment.subclass,
            "matched": matched,
            "discarded": discarded,
        },
        index=frame.index,
        columns=UNIT_COLUMNS,
    )
    balance = balance_table(X, treated, weights, estimand=spec.estimand, distance=distance, early=early)
    parameters = {
        "method": spec.method,
        "estimand": spec.estimand,
        "propensity_model": propensity.model,
        "link": spec.propensity.link,
        "discard": spec.discard,
        "exact": list(spec.exact),
        "caliper": None if spec.caliper is None else {
            "width": spec.caliper.width,
            "scale": spec.caliper.scale,
            "applies_to": "logit of the score" if spec.caliper.scale == "logit_sd" else "distance",
            "absolute": caliper.width if caliper else None,
        },
        "seed": spec.seed,
        "covariates": list(covariates),
        "design_columns": [str(c) for c in X.columns],
        **assignment.parameters,
    }
    return MatchingResult(
        units=units,
        pairs=assignment.pairs,
        balance=balance,
        method=spec.method,
        estimand=spec.estimand,
        parameters=parameters,
        propensity=propensity,
        caliper_absolute=caliper.width if caliper else None,
        n_treated=int(treated.sum()),
        n_treated_matched=n_treated_matched,
        n_control=int((~treated).sum()),
        n_control_matched=n_control_matched,
        effective_sample_size_control=effective_sample_size(weights[~treated & matched]),
        discarded=DiscardCounts(
            treated_outside_support=int((discarded & treated).sum()),
            control_outside_support=int((discarded & ~treated).sum()),
            focal_no_exact_stratum=assignment.focal_no_exact_stratum,
            focal_no_match=assignment.focal_no_match,
        ),
        replace=assignment.with_replacement,
        sample_sizes=sample_sizes(treated, weights, discarded),
    )
