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
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from jdl.cohort import text_in
from jdl.durations import Duration
from jdl.measures import fused, kernels
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
        return self.reoffences.iloc[self._first_rows].set_index("person_id")

    @cached_property
    def positions(self) -> np.ndarray:
        """Each reoffence's row in `index_table`."""
        return kernels.positions(self.index_table["person_id"], self.reoffences["person_id"])

    @cached_property
    def _first_rows(self) -> np.ndarray:
        # a stable sort by person, offence date, severity rank, outcome date; the first row of each person
        severity = _rank(self.reoffences["severity"], SEVERITY_ORDER)
        return kernels.first_rows(self.positions, [
            kernels.nanoseconds(self.reoffences["offence_date"]), severity,
            kernels.nanoseconds(self.reoffences["outcome_date"]),
        ])

    def count(self, keep: np.ndarray | None = None) -> pd.Series:
        """Reoffences (the kept ones) per person, aligned with `index_table`."""
        everything = np.ones(len(self.positions), dtype=bool) if keep is None else keep
        counts = kernels.count_per_person(self.positions, everything, len(self.index_table))
        return pd.Series(counts, index=self.index_table.index)

    def occasions(self, keep: np.ndarray) -> pd.Series:
        """Distinct outcome dates among the kept reoffences per person."""
        dates = kernels.nanoseconds(self.reoffences["outcome_date"])
        counts = kernels.distinct_per_person(self.positions, dates, keep, len(self.index_table))
        return pd.Series(counts, index=self.index_table.index)


def _rank(values: pd.Series, order: tuple[str, ...]) -> np.ndarray:
    """Each value's place in `order` (len(order) for anything else, missing included)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        # one place per category; code -1 (missing) takes the last entry
        per_category = pd.Index(list(order)).get_indexer(values.cat.categories.astype(object))
        places = np.append(np.where(per_category < 0, len(order), per_category), len(order))
        return places[values.cat.codes.to_numpy()].astype(np.int64)
    codes = pd.Index(list(order)).get_indexer(values.astype(object).to_numpy())
    return np.where(codes < 0, len(order), codes).astype(np.int64)


@dataclass(frozen=True)
class Measure:
    name: str
    description: str
    columns: tuple[OutcomeColumn, ...]
    compute: Callable[[ReoffenceContext], dict[str, pd.Series]]
    # the same values from the compiled kernel (`FusedReoffences`); None: `compute` only
    fused: Callable[[FusedReoffences], dict[str, np.ndarray]] | None = None


MEASURES: Registry[Measure] = Registry("measure", "outcomes.measures")


def register_measure(measure: Measure) -> Measure:
    return MEASURES.register(measure.name, measure)


def proven_reoffences(
    index_table: pd.DataFrame, history: pd.DataFrame, follow_up: Duration, waiting_period: Duration
) -> pd.DataFrame:
    """The events that are proven reoffences of each person, by the DESIGN.md definition.

    The history's rows in order with the person's index_date, as an inner merge
    with `index_table` (one row per person) gives, and days_after_index.
    """
    position = kernels.positions(index_table["person_id"], history["person_id"])
    matched = position >= 0
    clipped = np.where(matched, position, 0)
    index_dates = index_table["index_date"]
    window_end = follow_up.add_to(index_dates)
    proven_by = waiting_period.add_to(window_end)

    def at_rows(per_person: pd.Series) -> np.ndarray:
        values = kernels.nanoseconds(per_person)
        return values[clipped] if len(values) else np.full(len(clipped), kernels.NAT, dtype=np.int64)

    index_at, end_at, proven_at = at_rows(index_dates), at_rows(window_end), at_rows(proven_by)
    offence = kernels.nanoseconds(history["offence_date"])
    outcome = kernels.nanoseconds(history["outcome_date"])
    comparable = (matched & kernels.present(index_at) & kernels.present(end_at) & kernels.present(proven_at)
                  & kernels.present(offence) & kernels.present(outcome))
    keep = (
        comparable
        & text_in(history["outcome_type"], PROVEN_OUTCOMES)
        & (offence > index_at)
        & (offence <= end_at)
        & (outcome <= proven_at)
    )
    reoffences = history.loc[keep].copy()
    # the labels an inner merge gives: the row's number among the history rows that matched a person
    reoffences.index = pd.Index(np.cumsum(matched)[keep] - 1)
    reoffences["index_date"] = pd.Series(index_at[keep].view("datetime64[ns]"), index=reoffences.index).astype(
        index_dates.dtype
    )
    reoffences["days_after_index"] = (reoffences["offence_date"] - reoffences["index_date"]).dt.days
    return reoffences


@dataclass(frozen=True)
class FusedReoffences:
    """Per person of the index table (one row each, in person_id order), from `fused.reoffences`."""

    count: np.ndarray  # proven reoffences, float64
    custodial_occasions: np.ndarray  # distinct outcome dates of custodial reoffences, float64
    first_offence: np.ndarray  # int64 ns offence date of the first reoffence (NaT: none)
    first_severity: np.ndarray  # SEVERITY_ORDER rank of the first reoffence's severity (-1: none)
    index_at: np.ndarray  # int64 ns index date

    @classmethod
    def of(cls, index_table: pd.DataFrame, history: pd.DataFrame, follow_up: Duration,
           waiting_period: Duration) -> FusedReoffences:
        index_dates = index_table["index_date"]
        window_end = follow_up.add_to(index_dates)
        rows = fused.PersonRows.of(index_table["person_id"].to_numpy(), history["person_id"].to_numpy())
        index_at = fused.nanoseconds(index_dates)
        count, custodial, first_offence, first_severity = fused.reoffences(
            rows.starts, rows.ends,
            rows.take(fused.nanoseconds(history["offence_date"])),
            rows.take(fused.nanoseconds(history["outcome_date"])),
            rows.take(text_in(history["outcome_type"], PROVEN_OUTCOMES)),
            index_at, fused.nanoseconds(window_end), fused.nanoseconds(waiting_period.add_to(window_end)),
            rows.take(fused.flag(history["disposal"], "custody")),
            rows.take(_rank(history["severity"], SEVERITY_ORDER)),
        )
        return cls(count, custodial, first_offence, first_severity, index_at)


def _fused_days_to_first(stats: FusedReoffences) -> dict[str, np.ndarray]:
    return {"days_to_first_reoffence": fused.whole_days(stats.first_offence, stats.index_at)}


def _fused_first_severity(stats: FusedReoffences) -> dict[str, np.ndarray]:
    return {f"first_reoffence_{level}": (stats.first_severity == rank).astype("float64")
            for rank, level in enumerate(SEVERITY_ORDER)}


def _reoffending_rate(ctx: ReoffenceContext) -> dict[str, pd.Series]:
    return {"reoffending_rate": (ctx.count() > 0).astype("float64")}


def _reoffending_frequency(ctx: ReoffenceContext) -> dict[str, pd.Series]:
    return {"reoffending_frequency": ctx.count()}


def _days_to_first(ctx: ReoffenceContext) -> dict[str, pd.Series]:
    first = ctx.first_reoffences()["days_after_index"]
    return {"days_to_first_reoffence": ctx.per_person(first, fill=None)}


def _custodial(ctx: ReoffenceContext) -> np.ndarray:
    return (ctx.reoffences["disposal"] == "custody").fillna(False).to_numpy(dtype=bool)


def _custody_rate(ctx: ReoffenceContext) -> dict[str, pd.Series]:
    return {"custody_rate": (ctx.occasions(_custodial(ctx)) > 0).astype("float64")}


def _custody_frequency(ctx: ReoffenceContext) -> dict[str, pd.Series]:
    return {"custody_frequency": ctx.occasions(_custodial(ctx))}


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
        lambda s: {"reoffending_rate": (s.count > 0).astype("float64")},
    ),
    Measure(
        "reoffending_frequency",
        "proven reoffences per person",
        (OutcomeColumn("reoffending_frequency", "Frequency of proven reoffences", "count", "per_100", "all"),),
        _reoffending_frequency,
        lambda s: {"reoffending_frequency": s.count},
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
        _fused_days_to_first,
    ),
    Measure(
        "custody_rate",
        "share of people given a custodial sentence for a proven reoffence",
        (OutcomeColumn("custody_rate", "Custodial sentence rate for reoffences", "binary", "percent", "all"),),
        _custody_rate,
        lambda s: {"custody_rate": (s.custodial_occasions > 0).astype("float64")},
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
        lambda s: {"custody_frequency": s.custodial_occasions},
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
        _fused_first_severity,
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
    allow_fused: bool = True,
) -> tuple[pd.DataFrame, list[OutcomeColumn]]:
    """Outcome columns aligned with `index_table`, and their descriptions in spec order.

    Measures with a compiled formulation (`Measure.fused`) take it when the index table holds one row
    per person in person_id order (and `allow_fused`); the others are computed from the proven reoffences.
    """
    measures = [MEASURES[name] for name in measure_names]
    ids = index_table["person_id"]
    fusable = allow_fused and not ids.hasnans and fused.in_person_order(ids.to_numpy())
    stats = (FusedReoffences.of(index_table, history, follow_up, waiting_period)
             if fusable and any(m.fused is not None for m in measures) else None)
    ctx: ReoffenceContext | None = None
    values: dict[str, pd.Series] = {}
    described: list[OutcomeColumn] = []
    for measure in measures:
        if stats is not None and measure.fused is not None:
            computed = {name: pd.Series(column, index=index_table.index)
                        for name, column in measure.fused(stats).items()}
        else:
            if ctx is None:
                reoffences = proven_reoffences(index_table, history, follow_up, waiting_period)
                ctx = ReoffenceContext(index_table, reoffences, follow_up, waiting_period)
            computed = measure.compute(ctx)
        for column in measure.columns:
            values[column.name] = computed[column.name]
            described.append(column)
    return pd.DataFrame(values, index=index_table.index), described


def follow_up_complete(index_dates: pd.Series, follow_up: Duration, waiting_period: Duration,
                       records_end: pd.Timestamp) -> np.ndarray:
    """Whether each index date's follow-up and waiting period end by the records' last outcome date."""
    return (waiting_period.add_to(follow_up.add_to(index_dates)) <= records_end).to_numpy()
