"""Per-pair criteria for nearest-neighbour matching: covariate calipers and Mahalanobis distance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jdl.errors import JdlUserError, Problem
from jdl.spec.models import CaliperSpec


def _numeric_column(frame: pd.DataFrame, column: str, key: str) -> np.ndarray:
    if column not in frame.columns:
        raise JdlUserError.single(
            key, "column not found in the data", value=column,
            allowed=", ".join(map(str, frame.columns)),
        )
    series = frame[column]
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        raise JdlUserError.single(
            key, "needs a numeric column", value=f"{column} ({series.dtype})",
            hint="use matching.exact for a categorical covariate",
        )
    missing = int(series.isna().sum())
    if missing:
        raise JdlUserError.single(
            key, f"column {column!r}: {missing} of {len(series)} rows have a missing value",
            hint="impute or drop those rows",
        )
    return series.to_numpy(dtype=float)


def covariate_caliper_criteria(
    frame: pd.DataFrame, calipers: dict[str, CaliperSpec], eligible: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(values matrix, absolute widths) for the covariate calipers, as MatchIt's process.caliper.

    scale sd: width times the sample SD of the covariate over retained units.
    A binary covariate cannot carry a caliper (MatchIt refuses too): use exact.
    """
    if not calipers:
        return None, None
    problems: list[Problem] = []
    columns, widths = [], []
    for name, caliper in calipers.items():
        key = f"matching.covariate_calipers.{name}"
        values = _numeric_column(frame, name, key)
        distinct = len(np.unique(values))
        if distinct <= 2:
            problems.append(Problem(
                key, f"column {name!r} has {distinct} distinct values; a caliper needs a "
                "continuous covariate", hint="match it exactly with matching.exact instead",
            ))
            continue
        width = caliper.width
        if caliper.scale == "sd":
            width *= float(np.std(values[eligible], ddof=1))
        columns.append(values)
        widths.append(abs(width))
    if problems:
        raise JdlUserError(problems)
    return np.column_stack(columns), np.asarray(widths)


def _mahalanobis_design(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Numeric columns as they are; a categorical one as all its level dummies / sqrt(2) (MatchIt)."""
    parts = []
    for column in columns:
        key = f"matching.mahalanobis.{column}"
        if column not in frame.columns:
            raise JdlUserError.single(
                key, "column not found in the data", value=column,
                allowed=", ".join(map(str, frame.columns)),
            )
        series = frame[column]
        missing = int(series.isna().sum())
        if missing:
            raise JdlUserError.single(
                key, f"{missing} of {len(series)} rows have a missing value",
                hint="impute or drop those rows",
            )
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            parts.append(series.to_numpy(dtype=float)[:, None])
        else:
            codes, levels = pd.factorize(series, sort=True)
            parts.append(np.eye(len(levels))[codes] / np.sqrt(2.0))
    return np.hstack(parts)


def _generalized_inverse(matrix: np.ndarray) -> np.ndarray:
    """MatchIt's generalized_inverse: SVD, keeping singular values > 1e-8 of the largest."""
    u, d, vt = np.linalg.svd(matrix)
    keep = d > max(1e-8 * d[0], 0.0)
    return (vt[keep].T / d[keep]) @ u[:, keep].T


def mahalanobis_transform(
    frame: pd.DataFrame, columns: list[str], treated: np.ndarray, eligible: np.ndarray
) -> np.ndarray:
    """Rows transformed so that Euclidean distance = Mahalanobis distance (MatchIt's mahvars).

    Columns are standardised, constant columns dropped, and the covariance is
    the pooled within-group covariance of the retained units; its inverse (or
    the generalized inverse when near-singular) is factored by Cholesky.
    """
    X = _mahalanobis_design(frame, columns)
    spread = X.max(axis=0) - X.min(axis=0)
    varying = np.abs(spread) >= np.sqrt(np.finfo(float).eps)
    if not varying.any():
        raise JdlUserError.single(
            "matching.mahalanobis", "every Mahalanobis covariate has a single value",
            value=columns, hint="choose covariates that vary",
        )
    X = X[:, varying]
    X = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1)
    kept = X[eligible]
    group = treated[eligible]
    centred = kept.copy()
    for g in (True, False):
        centred[group == g] -= centred[group == g].mean(axis=0)
    n = len(kept)
    pooled = np.atleast_2d(np.cov(centred, rowvar=False)) * (n - 1) / (n - 2)
    inverse = None
    if np.linalg.det(pooled) > 1e-8:
        try:
            inverse = np.linalg.inv(pooled)
        except np.linalg.LinAlgError:
            inverse = None
    if inverse is None:
        inverse = _generalized_inverse(pooled)
    eigenvalues, vectors = np.linalg.eigh((inverse + inverse.T) / 2)
    root = vectors * np.sqrt(np.clip(eigenvalues, 0, None))
    return X @ root
