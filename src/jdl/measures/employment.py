"""Employment and benefit covariates and outcomes, from the optional spell tables.

A spell is one person's period in employment (HMRC) or on a benefit (DWP),
from start_date to end_date inclusive; a missing end_date means the spell was
still going on when the data were extracted, so it runs through any window.

Outcomes use the reoffending follow-up window: the day after the index date
to the index date plus the follow-up, both inclusive (as for reoffences, a
spell counts when it overlaps that window; a spell ending on the index date
does not count, one starting on the last day of the window does). Days are
counted once however many spells overlap. Covariates look at the index date
itself (a spell covering it) or at the look-back window, the day before the
index date back to the index date minus the window (default one year), both
inclusive. Benefit measures count out-of-work benefits only.

These measures and covariates are registered in the same registries as the
reoffending ones (so specs name them the same way), but they are computed
here, from the spells, by `compute_spell_features`; the engine splits them
off with `spell_feature_names`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jdl.durations import Duration
from jdl.measures.covariates import (
    COVARIATES,
    Covariate,
    CovariateContext,
    covariate_column,
    register_covariate,
)
from jdl.measures.outcomes import (
    MEASURES,
    Measure,
    OutcomeColumn,
    ReoffenceContext,
    register_measure,
)

EMPLOYMENT = "employment"
BENEFITS = "benefits"
OUT_OF_WORK = "out_of_work"
DEFAULT_LOOK_BACK = Duration(1, "y")
# A day number past any real date: an ongoing spell's end.
_ONGOING = np.iinfo(np.int64).max // 4

Spells = Mapping[str, pd.DataFrame]  # table name -> valid rows (person_id, start_date, end_date[, benefit_type])


@dataclass(frozen=True)
class SpellMeasure(Measure):
    """A measure computed from a spell table rather than from the proven reoffences."""

    table: str = EMPLOYMENT
    spell_compute: Callable[[SpellContext], dict[str, pd.Series]] | None = None


@dataclass(frozen=True)
class SpellCovariate(Covariate):
    """A covariate computed from a spell table rather than from the offending history."""

    table: str = EMPLOYMENT
    spell_compute: Callable[[SpellContext, Duration | None], pd.Series] | None = None


@dataclass(frozen=True)
class SpellContext:
    """The people of `index_table` (unique person_id, index_date), their spells and the follow-up."""

    index_table: pd.DataFrame
    spells: Spells
    follow_up: Duration

    def rows(self, table: str) -> pd.DataFrame:
        """person_id, start and end as day numbers (ongoing: far future) of this table's spells."""
        frame = self.spells[table]
        if table == BENEFITS:
            frame = frame.loc[(frame["benefit_type"] == OUT_OF_WORK).fillna(False).to_numpy(dtype=bool)]
        end = _day_numbers(frame["end_date"])
        return pd.DataFrame({
            "person_id": frame["person_id"].to_numpy(dtype=np.int64),
            "start": _day_numbers(frame["start_date"]),
            "end": np.where(end == _MISSING_DAY, _ONGOING, end),
        })

    def index_days(self) -> np.ndarray:
        return _day_numbers(self.index_table["index_date"])

    def follow_up_window(self) -> tuple[np.ndarray, np.ndarray]:
        """Per person: the day after the index date and the last day of the follow-up (inclusive)."""
        index = self.index_table["index_date"]
        end = _day_numbers(self.follow_up.add_to(index))
        return self.index_days() + 1, end

    def look_back_window(self, window: Duration | None) -> tuple[np.ndarray, np.ndarray]:
        """Per person: the index date minus the window, and the day before the index date (inclusive)."""
        span = window or DEFAULT_LOOK_BACK
        # calendar arithmetic backwards: a year before 10 Jan 2020 is 10 Jan 2019
        start = Duration(-span.amount, span.unit).add_to(self.index_table["index_date"])
        return _day_numbers(start), self.index_days() - 1

    def days_in(self, table: str, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        """Days of each person's [first, last] covered by at least one spell (overlaps counted once)."""
        spells = self.rows(table)
        owner = pd.Series(np.arange(len(self.index_table)), index=self.index_table["person_id"].to_numpy())
        position = owner.reindex(spells["person_id"].to_numpy()).to_numpy()
        present = ~np.isnan(position)
        position = position[present].astype(np.int64)
        start = np.maximum(spells["start"].to_numpy()[present], first[position])
        end = np.minimum(spells["end"].to_numpy()[present], last[position])
        inside = start <= end
        position, start, end = position[inside], start[inside], end[inside]
        order = np.lexsort((start, position))
        position, start, end = position[order], start[order], end[order]
        # a sweep over each person's spells by start: a day already covered by an earlier spell
        # (the running maximum of ends) is not counted again
        reach = pd.Series(end).groupby(position).cummax().groupby(position).shift(1).to_numpy()
        fresh_from = np.where(np.isnan(reach), start, np.maximum(start, np.nan_to_num(reach) + 1))
        counted = np.clip(end - fresh_from + 1, 0, None)
        return np.bincount(position, weights=counted, minlength=len(self.index_table))

    def per_person(self, values: np.ndarray) -> pd.Series:
        return pd.Series(np.asarray(values, dtype="float64"), index=self.index_table.index)


_MISSING_DAY = np.iinfo(np.int64).min


def _day_numbers(values: pd.Series) -> np.ndarray:
    """Dates as int64 day numbers (missing: the smallest int64)."""
    days = pd.to_datetime(values).to_numpy(dtype="datetime64[D]")
    numbers = days.astype(np.int64)
    numbers[np.isnat(days)] = _MISSING_DAY
    return numbers


def _follow_up_days(table: str) -> Callable[[SpellContext], np.ndarray]:
    def days(ctx: SpellContext) -> np.ndarray:
        first, last = ctx.follow_up_window()
        return ctx.days_in(table, first, last)

    return days


def _rate(name: str, table: str) -> Callable[[SpellContext], dict[str, pd.Series]]:
    def compute(ctx: SpellContext) -> dict[str, pd.Series]:
        return {name: ctx.per_person(_follow_up_days(table)(ctx) > 0)}

    return compute


def _days(name: str, table: str) -> Callable[[SpellContext], dict[str, pd.Series]]:
    def compute(ctx: SpellContext) -> dict[str, pd.Series]:
        return {name: ctx.per_person(_follow_up_days(table)(ctx))}

    return compute


def _at_index(table: str) -> Callable[[SpellContext, Duration | None], pd.Series]:
    def compute(ctx: SpellContext, _: Duration | None) -> pd.Series:
        index = ctx.index_days()
        return ctx.per_person(ctx.days_in(table, index, index) > 0)

    return compute


def _days_before(table: str) -> Callable[[SpellContext, Duration | None], pd.Series]:
    def compute(ctx: SpellContext, window: Duration | None) -> pd.Series:
        first, last = ctx.look_back_window(window)
        return ctx.per_person(ctx.days_in(table, first, last))

    return compute


def _from_spells(kind: str, name: str) -> Callable[..., object]:
    """The registries' `compute` slot: spell features are computed by `compute_spell_features`."""

    def compute(ctx: ReoffenceContext | CovariateContext, *_: object) -> object:
        raise TypeError(f"{kind} {name} is computed from spell tables by jdl.measures.employment."
                        "compute_spell_features, not from the offending history")

    return compute


def _measure(name: str, table: str, description: str, column: OutcomeColumn,
             compute: Callable[[SpellContext], dict[str, pd.Series]]) -> SpellMeasure:
    return SpellMeasure(name, description, (column,), _from_spells("measure", name),  # type: ignore[arg-type]
                        table=table, spell_compute=compute)


def _covariate(name: str, table: str, description: str,
               compute: Callable[[SpellContext, Duration | None], pd.Series], *, takes_window: bool) -> SpellCovariate:
    return SpellCovariate(name, "numeric", description, _from_spells("covariate", name),  # type: ignore[arg-type]
                          takes_window, table=table, spell_compute=compute)


for _spell_measure in (
    _measure("employment_rate", EMPLOYMENT,
             "share of people employed at any point in the follow-up window",
             OutcomeColumn("employment_rate", "Proportion employed at any point in the follow-up",
                           "binary", "percent", "all", lower_is_better=False),
             _rate("employment_rate", EMPLOYMENT)),
    _measure("days_employed", EMPLOYMENT,
             "days in employment within the follow-up window, per person",
             OutcomeColumn("days_employed", "Days employed in the follow-up", "continuous", "days", "all",
                           lower_is_better=False),
             _days("days_employed", EMPLOYMENT)),
    _measure("benefit_rate", BENEFITS,
             "share of people on an out-of-work benefit at any point in the follow-up window",
             OutcomeColumn("benefit_rate", "Proportion on an out-of-work benefit at any point in the follow-up",
                           "binary", "percent", "all"),
             _rate("benefit_rate", BENEFITS)),
    _measure("days_on_out_of_work_benefit", BENEFITS,
             "days on an out-of-work benefit within the follow-up window, per person",
             OutcomeColumn("days_on_out_of_work_benefit", "Days on an out-of-work benefit in the follow-up",
                           "continuous", "days", "all"),
             _days("days_on_out_of_work_benefit", BENEFITS)),
):
    register_measure(_spell_measure)

for _spell_covariate in (
    _covariate("employed_at_index", EMPLOYMENT, "1 if an employment spell covers the index date",
               _at_index(EMPLOYMENT), takes_window=False),
    _covariate("days_employed_before_index", EMPLOYMENT,
               "days employed in the look-back window before the index date (default 1y)",
               _days_before(EMPLOYMENT), takes_window=True),
    _covariate("on_benefit_at_index", BENEFITS, "1 if an out-of-work benefit spell covers the index date",
               _at_index(BENEFITS), takes_window=False),
    _covariate("days_on_out_of_work_benefit_before_index", BENEFITS,
               "days on an out-of-work benefit in the look-back window before the index date (default 1y)",
               _days_before(BENEFITS), takes_window=True),
):
    register_covariate(_spell_covariate)


def table_needed(name: str) -> str | None:
    """The spell table a covariate or measure name needs (None: it needs no spell table)."""
    for registry in (MEASURES, COVARIATES):
        if name in registry:
            item = registry[name]
            if isinstance(item, SpellMeasure | SpellCovariate):
                return item.table
    return None


def spell_feature_names(
    covariates: Sequence[tuple[str, Duration | None]], measures: Sequence[str]
) -> tuple[list[tuple[str, Duration | None]], list[str]]:
    """The requested covariates and measures that come from spell tables."""
    return ([c for c in covariates if isinstance(COVARIATES[c[0]], SpellCovariate)],
            [m for m in measures if isinstance(MEASURES[m], SpellMeasure)])


def tables_needed(covariates: Sequence[tuple[str, Duration | None]], measures: Sequence[str]) -> list[str]:
    """The spell tables these covariates and measures read, in a fixed order."""
    names = [c for c, _ in covariates] + list(measures)
    wanted = {table_needed(n) for n in names} - {None}
    return [t for t in (EMPLOYMENT, BENEFITS) if t in wanted]


def compute_spell_features(
    index_table: pd.DataFrame,
    spells: Spells,
    *,
    covariates: Sequence[tuple[str, Duration | None]],
    measures: Sequence[str],
    follow_up: Duration,
) -> pd.DataFrame:
    """Spell covariate and outcome columns aligned with `index_table` (one row per person)."""
    ctx = SpellContext(index_table, spells, follow_up)
    columns: dict[str, pd.Series] = {}
    for name, window in covariates:
        covariate = COVARIATES[name]
        assert isinstance(covariate, SpellCovariate) and covariate.spell_compute is not None
        _require(spells, covariate.table, f"covariate {name}")
        columns[covariate_column(name, window)] = covariate.spell_compute(ctx, window)
    for name in measures:
        measure = MEASURES[name]
        assert isinstance(measure, SpellMeasure) and measure.spell_compute is not None
        _require(spells, measure.table, f"measure {name}")
        computed = measure.spell_compute(ctx)
        for column in measure.columns:
            columns[column.name] = computed[column.name]
    return pd.DataFrame(columns, index=index_table.index)


def _require(spells: Spells, table: str, what: str) -> None:
    if table not in spells:
        # the spec check (engine.checks) reports this as bad input before any data is read
        raise ValueError(f"{what} needs the {table} table (data.national_records.{table})")


__all__ = [
    "BENEFITS",
    "EMPLOYMENT",
    "SpellContext",
    "SpellCovariate",
    "SpellMeasure",
    "Spells",
    "compute_spell_features",
    "spell_feature_names",
    "table_needed",
    "tables_needed",
]
