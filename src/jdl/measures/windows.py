"""Several follow-up windows: every outcome column once per window, on the same people.

The primary window's columns keep their plain names (`reoffending_rate`), so a
spec with one window has exactly the columns it always had; each further
window's columns carry the window, as windowed covariates do
(`reoffending_rate_2y`). Each window is `compute_outcomes` as it stands, called
once per window: a window changes which events count, never how a measure is
computed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pandas as pd

from jdl.durations import Duration
from jdl.measures.outcomes import OutcomeColumn, compute_outcomes


def window_column_name(name: str, window: Duration, primary: Duration) -> str:
    """The column an outcome is written to in `window`: plain in the primary window."""
    return name if window == primary else f"{name}_{window}"


def windowed_columns(
    columns: Sequence[OutcomeColumn], window: Duration, primary: Duration
) -> list[OutcomeColumn]:
    """`columns` renamed for `window` (labels stay: the report names the window beside them)."""
    return [dataclasses.replace(column, name=window_column_name(column.name, window, primary))
            for column in columns]


def windowed_outcomes(
    index_table: pd.DataFrame,
    history: pd.DataFrame,
    *,
    measure_names: list[str],
    windows: Sequence[Duration],
    waiting_period: Duration,
) -> tuple[pd.DataFrame, list[OutcomeColumn]]:
    """Outcome columns of every window, aligned with `index_table`: the primary (first) window's
    columns first, then each further window's, each window in spec order of the measures."""
    primary = windows[0]
    frames: list[pd.DataFrame] = []
    described: list[OutcomeColumn] = []
    for window in windows:
        values, columns = compute_outcomes(
            index_table, history, measure_names=measure_names, follow_up=window, waiting_period=waiting_period,
        )
        renamed = windowed_columns(columns, window, primary)
        frames.append(values.rename(columns={old.name: new.name for old, new in zip(columns, renamed, strict=True)}))
        described.extend(renamed)
    outcomes = frames[0] if len(frames) == 1 else pd.concat(frames, axis=1)
    return outcomes, described
