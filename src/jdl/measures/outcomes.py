"""Outcome measures: proven reoffending after the index date (DESIGN.md §1).

A proven reoffence is an offence committed after the index date and no later
than the end of the follow-up window, proven by a court conviction or caution
no later than the end of the follow-up window plus the waiting period.
Penalty notices never count. Each measure is registered by name and yields one
or more outcome columns, each knowing how it is shown and which way is better.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from jdl.durations import Duration
from jdl.registry import Registry

PROVEN_OUTCOMES = ("court_conviction", "caution")
SEVERITY_ORDER = ("indictable", "either_way", "summary")


@dataclass(frozen=True)
class OutcomeColumn:
    name: str
    label: str
    kind: Literal["binary", "count", "continuous"]
    display: Literal["percent", "per_100", "days"]
    population: Literal["all", "reoffenders"]
    lower_is_better: bool = True


@dataclass(frozen=True)
class ReoffenceContext:
    """Proven reoffences of each person in `index_table`, under one follow-up definition."""

    index_table: pd.DataFrame  # person_id (unique), index_date
    reoffences: pd.DataFrame  # person_id, offence_date, outcome_date, disposal, severity, days_after_index
    follow_up: Duration
    waiting_period: Duration

    def per_person(self, values: pd.Series, fill: float | None = 0.0) -> pd.Series:
        aligned = values.reindex(self.index_table["person_id"].to_numpy())
        if fill is not None:
            aligned = aligned.fillna(fill)
        return pd.Series(aligned.to_numpy(dtype="float64"), index=self.index_table.index)

    def first_reoffences(self) -> pd.DataFrame:
        """Each reoffender's first proven reoffence (earliest offence; the most serious on a tie)."""
        ranked = self.reoffences.assign(
            _severity_rank=self.reoffences["severity"]
            .map({s: i for i, s in enumerate(SEVERITY_ORDER)})
            .fillna(len(SEVERITY_ORDER))
        )
        ranked = ranked.sort_values(
            ["person_id", "offence_date", "_severity_rank", "outcome_date"], kind="mergesort"
        )
        return ranked.drop_duplicates("person_id", keep="first").set_index("person_id")


@dataclass(frozen=True)
class Measure:
    name: str
    description: str
    columns: tuple[OutcomeColumn, ...]
    compute: Callable[[ReoffenceContext], dict[str, pd.Series]]


MEASURES: Registry[Measure] = Registry("measure", "outcomes.measures")


def register_measure(measure: Measure) -> Measure:
    return MEASURES.register(measure.name, measure)


def proven_reoffences(
    index_table: pd.DataFrame, history: pd.DataFrame, follow_up: Duration, waiting_period: Duration
) -> pd.DataFrame:
    """The events that are proven reoffences of each person, by the DESIGN.md definition."""
    joined = history.merge(index_table[["person_id", "index_date"]], on="person_id", how="inner")
    window_end = follow_up.add_to(joined["index_date"])
    proven_by = waiting_period.add_to(window_end)
    keep = (
        joined["outcome_type"].isin(PROVEN_OUTCOMES)
        & (joined["offence_date"] > joined["index_date"])
        & (joined["offence_date"] <= window_end)
        & (joined["outcome_date"] <= proven_by)
    )
    reoffences = joined.loc[keep.fillna(False)].copy()
    reoffences["days_after_index"] = (reoffences["offence_date"] - reoffences["index_date"]).dt.days
    return reoffences


def _reoffending_rate(ctx: ReoffenceContext) -> dict[str, pd.Series]:
    counts = ctx.reoffences.groupby("person_id").size()
    return {"reoffending_rate": (ctx.per_person(counts) > 0).astype("float64")}


def _reoffending_frequency(ctx: ReoffenceContext) -> dict[str, pd.Series]:
    return {"reoffending_frequency": ctx.per_person(ctx.reoffences.groupby("person_id").size())}


def _days_to_first(ctx: ReoffenceContext) -> dict[str, pd.Series]:
    first = ctx.first_reoffences()["days_after_index"]
    return {"days_to_first_reoffence": ctx.per_person(first, fill=None)}


def _custodial(ctx: ReoffenceContext) -> pd.DataFrame:
    custody = ctx.reoffences.loc[ctx.reoffences["disposal"] == "custody"]
    return custody.drop_duplicates(["person_id", "outcome_date"])


def _custody_rate(ctx: ReoffenceContext) -> dict[str, pd.Series]:
    counts = _custodial(ctx).groupby("person_id").size()
    return {"custody_rate": (ctx.per_person(counts) > 0).astype("float64")}


def _custody_frequency(ctx: ReoffenceContext) -> dict[str, pd.Series]:
    return {"custody_frequency": ctx.per_person(_custodial(ctx).groupby("person_id").size())}


def _first_severity(ctx: ReoffenceContext) -> dict[str, pd.Series]:
    severity = ctx.first_reoffences()["severity"]
    return {
        f"first_reoffence_{level}": ctx.per_person((severity == level).astype("float64"))
        for level in SEVERITY_ORDER
    }


_SEVERITY_LABELS = {"indictable": "indictable", "either_way": "either way", "summary": "summary"}

for _measure in (
    Measure(
        "reoffending_rate",
        "share of people with at least one proven reoffence",
        (OutcomeColumn("reoffending_rate", "Proven reoffending rate", "binary", "percent", "all"),),
        _reoffending_rate,
    ),
    Measure(
        "reoffending_frequency",
        "proven reoffences per person",
        (OutcomeColumn("reoffending_frequency", "Frequency of proven reoffences", "count", "per_100", "all"),),
        _reoffending_frequency,
    ),
    Measure(
        "days_to_first_reoffence",
        "days from the index date to the first proven reoffence, among reoffenders",
        (
            OutcomeColumn(
                "days_to_first_reoffence",
                "Days to first proven reoffence (reoffenders)",
                "continuous",
                "days",
                "reoffenders",
                lower_is_better=False,
            ),
        ),
        _days_to_first,
    ),
    Measure(
        "custody_rate",
        "share of people given a custodial sentence for a proven reoffence",
        (OutcomeColumn("custody_rate", "Custodial sentence rate for reoffences", "binary", "percent", "all"),),
        _custody_rate,
    ),
    Measure(
        "custody_frequency",
        "custodial sentence occasions for proven reoffences, per person",
        (
            OutcomeColumn(
                "custody_frequency", "Frequency of custodial sentences for reoffences", "count", "per_100", "all"
            ),
        ),
        _custody_frequency,
    ),
    Measure(
        "first_reoffence_severity",
        "court outcome severity of the first proven reoffence",
        tuple(
            OutcomeColumn(
                f"first_reoffence_{level}",
                f"First proven reoffence {_SEVERITY_LABELS[level]}",
                "binary",
                "percent",
                "all",
            )
            for level in SEVERITY_ORDER
        ),
        _first_severity,
    ),
):
    register_measure(_measure)


def compute_outcomes(
    index_table: pd.DataFrame,
    history: pd.DataFrame,
    *,
    measure_names: list[str],
    follow_up: Duration,
    waiting_period: Duration,
) -> tuple[pd.DataFrame, list[OutcomeColumn]]:
    """Outcome columns aligned with `index_table`, and their descriptions in spec order."""
    reoffences = proven_reoffences(index_table, history, follow_up, waiting_period)
    ctx = ReoffenceContext(index_table, reoffences, follow_up, waiting_period)
    values: dict[str, pd.Series] = {}
    described: list[OutcomeColumn] = []
    for name in measure_names:
        measure = MEASURES[name]
        computed = measure.compute(ctx)
        for column in measure.columns:
            values[column.name] = computed[column.name]
            described.append(column)
    return pd.DataFrame(values, index=index_table.index), described


def follow_up_complete(index_dates: pd.Series, follow_up: Duration, waiting_period: Duration,
                       records_end: pd.Timestamp) -> np.ndarray:
    """Whether each index date's follow-up and waiting period end by the records' last outcome date."""
    return (waiting_period.add_to(follow_up.add_to(index_dates)) <= records_end).to_numpy()
