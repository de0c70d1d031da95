"""Covariates as a numeric design matrix, like R's model.matrix without the intercept."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from jdl.errors import JdlUserError, Problem

# Frames of at least this many rows prepare their columns on two threads.
PARALLEL_ROWS = 200_000


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series)


def _levels(series: pd.Series, distinct: list[object] | None = None) -> list[object]:
    """Observed levels: a categorical's own category order, otherwise sorted (as R does)."""
    observed = set(series.unique() if distinct is None else distinct)
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [c for c in series.cat.categories if c in observed]
    return sorted(observed, key=str)


def _column_parts(
    frame: pd.DataFrame, column: str
) -> tuple[dict[str, np.ndarray | tuple[np.ndarray, int]], Problem | None]:
    """One covariate's design columns (a numeric column's values, or (codes, code) per dummy), or
    the problem that keeps it out."""
    if column not in frame.columns:
        return {}, Problem(
            f"covariate {column!r}",
            "column not found in the data",
            allowed=", ".join(map(str, frame.columns)),
        )
    series = frame[column]
    if isinstance(series, pd.DataFrame):
        return {}, Problem(
            f"covariate {column!r}",
            f"the data have {series.shape[1]} columns with this name",
            hint="each covariate must be one column; rename or drop the duplicates",
        )
    missing = int(series.isna().sum())
    if missing:
        return {}, Problem(
            f"covariate {column!r}",
            f"{missing} of {len(series)} rows have a missing value",
            hint="impute or drop those rows, or leave the covariate out",
        )
    numeric = _is_numeric(series)
    if numeric:
        values = series.to_numpy(dtype=float)
        single = len(values) == 0 or bool(values.min() == values.max())  # no value is missing here
    else:
        codes, uniques = pd.factorize(series)
        single = len(uniques) < 2
    if single:
        value = series.iloc[0] if len(series) else None
        return {}, Problem(
            f"covariate {column!r}",
            f"all {len(series)} rows have the same value, so it cannot be adjusted for",
            value=value,
            hint="leave the covariate out",
        )
    if numeric:
        return {column: values}, None
    # one pass to codes, then a dummy per level (the same 0/1 values as comparing every row)
    code_of = {value: code for code, value in enumerate(uniques.tolist())}
    return {f"{column}{level}": (codes, code_of[level]) for level in _levels(series, list(code_of))[1:]}, None


def _write(row: np.ndarray, part: np.ndarray | tuple[np.ndarray, int]) -> None:
    if isinstance(part, tuple):
        np.equal(part[0], part[1], out=row, casting="unsafe")
    else:
        row[:] = part


def design_matrix(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Numeric and boolean columns as float; other columns as treatment-contrast dummies.

    Dummies are named f"{column}{level}" with levels sorted (a categorical keeps
    its category order) and the first level dropped, as R's model.matrix does
    with treatment contrasts. Missing values, or a column with a single value,
    are user errors naming the column; all such problems are reported at once.
    """
    # each design column: a numeric column's values, or (codes, code) for one level's dummy
    parts: dict[str, np.ndarray | tuple[np.ndarray, int]] = {}
    problems: list[Problem] = []
    if len(frame) >= PARALLEL_ROWS and len(columns) > 1:
        # columns are independent (pandas and Arrow release the GIL in their passes): two at a time,
        # their parts and problems kept in the order of the columns
        with ThreadPoolExecutor(max_workers=2) as pool:
            described = list(pool.map(lambda column: _column_parts(frame, column), columns))
    else:
        described = [_column_parts(frame, column) for column in columns]
    for column_parts, problem in described:
        if problem is not None:
            problems.append(problem)
        parts.update(column_parts)
    if problems:
        raise JdlUserError(problems)
    names = list(parts)
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise JdlUserError.single(
            "covariates",
            "two covariates produce design-matrix columns with the same name",
            value=duplicated,
            hint="rename one of the columns or its levels",
        )
    # written straight into one block laid out as pandas keeps a float frame (a row per column),
    # so the frame is built around it without copying the columns again
    block = np.empty((len(names), len(frame)))
    if len(frame) >= PARALLEL_ROWS and len(names) > 1:
        with ThreadPoolExecutor(max_workers=2) as pool:  # rows of the block written two at a time
            list(pool.map(_write, block, parts.values()))
    else:
        for row, part in zip(block, parts.values(), strict=True):
            _write(row, part)
    return pd.DataFrame(block.T, index=frame.index, columns=names, copy=False)
