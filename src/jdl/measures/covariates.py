"""Covariates: what was known about each person at the index date.

Each covariate is a window aggregate of the person's proven history before the
index occasion (or a fact about the person or the index occasion), registered
by name. "Before" means an outcome date earlier than the index occasion's
outcome date, so the index occasion itself, and for a custodial index the
sentence being served, never count as prior history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd

from jdl.cohort import as_text
from jdl.durations import Duration
from jdl.errors import JdlUserError
from jdl.measures import fused, kernels
from jdl.registry import Registry

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class CovariateContext:
    """Everything a covariate may look at, one row per person in `index_table`."""

    index_table: pd.DataFrame  # person_id (unique), index_date, index_outcome_date, index_* columns
    people: pd.DataFrame  # person_id, date_of_birth, sex, ethnicity, region
    history: pd.DataFrame  # proven events (no penalty notices) of these people, any date

    def prior(self, window: Duration | None) -> pd.DataFrame:
        """Proven events before each person's index occasion (optionally within `window`)."""
        joined = self.history.merge(
            self.index_table[["person_id", "index_outcome_date"]], on="person_id", how="inner"
        )
        keep = joined["outcome_date"] < joined["index_outcome_date"]
        if window is not None:
            start = joined["index_outcome_date"] - (
                window.add_to(joined["index_outcome_date"]) - joined["index_outcome_date"]
            )
            keep &= joined["outcome_date"] >= start
        return joined.loc[keep]

    def up_to_index(self) -> pd.DataFrame:
        """Proven events up to and including the index occasion."""
        joined = self.history.merge(
            self.index_table[["person_id", "index_outcome_date"]], on="person_id", how="inner"
        )
        return joined.loc[joined["outcome_date"] <= joined["index_outcome_date"]]

    def per_person(self, values: pd.Series, fill: float | None = None) -> pd.Series:
        aligned = values.reindex(self.index_table["person_id"].to_numpy())
        if fill is not None:
            aligned = aligned.fillna(fill)
        return pd.Series(aligned.to_numpy(), index=self.index_table.index)

    def person_attribute(self, column: str) -> pd.Series:
        rows = self._people_rows
        if rows is not None and (isinstance(self.people[column].dtype, pd.CategoricalDtype)
                                 or self.people[column].dtype.kind == "M"):
            # people in person_id order, one row each (the block pass's): a take, not a reindex; same values
            return pd.Series(self.people[column].array.take(rows, allow_fill=True), index=self.index_table.index)
        values = self._people_by_id[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            # a Categorical stays one (to_numpy would make an object per row); same values
            aligned = values.reindex(self.index_table["person_id"].to_numpy())
            return pd.Series(aligned.array, index=self.index_table.index)
        return self.per_person(values)

    # -- the numpy formulation the built-in covariates use (see jdl.measures.kernels)

    @cached_property
    def _people_rows(self) -> np.ndarray | None:
        """Each index row's row in `people` (-1: none) when people's person_ids are strictly increasing."""
        ids = self.people["person_id"]
        if ids.hasnans or not fused.in_person_order(ids.to_numpy()):
            return None
        ids = ids.to_numpy(dtype=np.int64)
        wanted = self.index_table["person_id"].to_numpy(dtype=np.int64)
        if len(ids) == 0:
            return np.full(len(wanted), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
        return np.where(ids[at] == wanted, at, -1)

    @cached_property
    def _people_by_id(self) -> pd.DataFrame:
        return self.people.drop_duplicates("person_id").set_index("person_id")

    @cached_property
    def rows(self) -> HistoryRows:
        """The history as arrays aligned with each row's person in `index_table`."""
        return HistoryRows.of(self.index_table, self.history)

    def prior_mask(self, window: Duration | None) -> np.ndarray:
        """`prior(window)` as a mask over the history rows."""
        rows = self.rows
        keep = rows.prior.copy()
        if window is not None:
            start = kernels.nanoseconds(_window_start(self.index_table["index_outcome_date"], window))
            row_start = rows.gather(start)
            keep &= kernels.present(row_start) & (rows.outcome >= row_start)
        return keep

    def count(self, keep: np.ndarray) -> pd.Series:
        """Kept history rows per person (0 for none), aligned with `index_table`."""
        counts = kernels.count_per_person(self.rows.position, keep, len(self.index_table))
        return pd.Series(counts, index=self.index_table.index)

    def occasions(self, keep: np.ndarray) -> pd.Series:
        """Distinct outcome dates among the kept rows per person (0 for none)."""
        rows = self.rows
        counts = kernels.distinct_per_person(rows.position, rows.outcome, keep, len(self.index_table))
        return pd.Series(counts, index=self.index_table.index)

    def earliest(self, column: str, keep: np.ndarray) -> pd.Series:
        """The earliest date in `column` among the kept rows per person (NaT for none)."""
        values = kernels.nanoseconds(self.history[column])
        first = kernels.minimum_per_person(self.rows.position, values, keep, len(self.index_table))
        return kernels.as_dates(first).set_axis(self.index_table.index)

    # -- the compiled formulation (jdl.measures.fused) of the covariates that have one

    @cached_property
    def grouped(self) -> GroupedHistory | None:
        """The history grouped by person for the compiled kernels; None unless the index table holds
        one row per person in person_id order (then every covariate takes its own `compute`)."""
        ids = self.index_table["person_id"].to_numpy()
        if self.index_table["person_id"].hasnans or not fused.in_person_order(ids):
            return None
        return GroupedHistory.of(self.index_table, self.history)


@dataclass(frozen=True)
class GroupedHistory:
    """The history's columns the built-in covariates read, grouped by the index table's people."""

    rows: fused.PersonRows
    outcome: np.ndarray  # int64 ns, grouped order
    offence: np.ndarray
    custody: np.ndarray  # bool: disposal is custody
    caution: np.ndarray
    index_outcome: np.ndarray  # per person, int64 ns
    outcome_dates: pd.Series  # the index table's index_outcome_date
    memo: dict[object, object] = field(default_factory=dict)

    @classmethod
    def of(cls, index_table: pd.DataFrame, history: pd.DataFrame) -> GroupedHistory:
        rows = fused.PersonRows.of(index_table["person_id"].to_numpy(), history["person_id"].to_numpy())
        return cls(
            rows=rows,
            outcome=rows.take(fused.nanoseconds(history["outcome_date"])),
            offence=rows.take(fused.nanoseconds(history["offence_date"])),
            custody=rows.take(fused.flag(history["disposal"], "custody")),
            caution=rows.take(fused.flag(history["disposal"], "caution")),
            index_outcome=fused.nanoseconds(index_table["index_outcome_date"]),
            outcome_dates=index_table["index_outcome_date"],
        )

    def window_start(self, window: Duration) -> np.ndarray:
        """Per person, the start of `window` ending at the index occasion (int64 ns)."""
        key = ("start", window)
        if key not in self.memo:
            self.memo[key] = fused.nanoseconds(_window_start(self.outcome_dates, window))
        return self.memo[key]  # type: ignore[return-value]

    def prior_counts(self, window: Duration | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per person: prior rows, prior custodial occasions, prior caution occasions, prior occasions."""
        key = ("prior", window)
        if key not in self.memo:
            lower = self.index_outcome if window is None else self.window_start(window)
            self.memo[key] = fused.prior_counts(self.rows.starts, self.rows.ends, self.outcome, self.index_outcome,
                                                lower, window is not None, self.custody, self.caution)
        return self.memo[key]  # type: ignore[return-value]

    def earliest(self, column: Literal["offence", "outcome"]) -> np.ndarray:
        """Per person, the earliest date of `column` up to the index occasion, or the index occasion's
        outcome date when there is none (int64 ns)."""
        key = ("earliest", column)
        if key not in self.memo:
            values = self.offence if column == "offence" else self.outcome
            first = fused.earliest_up_to_index(self.rows.starts, self.rows.ends, values, self.outcome,
                                               self.index_outcome)
            self.memo[key] = np.where(first == fused.NAT, self.index_outcome, first)
        return self.memo[key]  # type: ignore[return-value]


@dataclass(frozen=True)
class HistoryRows:
    """Each history row's person position in the index table and its dates as int64 ns."""

    position: np.ndarray  # -1: the person is not in the index table
    clipped: np.ndarray  # position with -1 as 0, to gather per-person values
    outcome: np.ndarray
    prior: np.ndarray  # outcome date before the person's index occasion's outcome date
    up_to_index: np.ndarray  # outcome date on or before it

    @classmethod
    def of(cls, index_table: pd.DataFrame, history: pd.DataFrame) -> HistoryRows:
        position = kernels.positions(index_table["person_id"], history["person_id"])
        matched = position >= 0
        clipped = np.where(matched, position, 0)
        outcome = kernels.nanoseconds(history["outcome_date"])
        index_outcome = kernels.nanoseconds(index_table["index_outcome_date"])
        row_index = _gather(index_outcome, clipped)
        comparable = matched & kernels.present(outcome) & kernels.present(row_index)
        return cls(
            position=position, clipped=clipped, outcome=outcome,
            prior=comparable & (outcome < row_index),
            up_to_index=comparable & (outcome <= row_index),
        )

    def gather(self, per_person: np.ndarray) -> np.ndarray:
        """A per-person int64 array at each history row (meaningful where `position >= 0`)."""
        return _gather(per_person, self.clipped)


def _gather(per_person: np.ndarray, clipped: np.ndarray) -> np.ndarray:
    if len(per_person) == 0:
        return np.full(len(clipped), kernels.NAT, dtype=np.int64)
    return per_person[clipped]


def _window_start(dates: pd.Series, window: Duration) -> pd.Series:
    """The start of a window of `window` ending at each date (calendar-aware)."""
    return dates - (window.add_to(dates) - dates)


@dataclass(frozen=True)
class Covariate:
    name: str
    kind: Literal["numeric", "categorical"]
    description: str
    compute: Callable[[CovariateContext, Duration | None], pd.Series]
    takes_window: bool = False
    # the same values from the compiled kernels (`CovariateContext.grouped`); None: `compute` only
    fused: Callable[[CovariateContext, GroupedHistory, Duration | None], np.ndarray] | None = None


COVARIATES: Registry[Covariate] = Registry("covariate", "covariates")


def register_covariate(covariate: Covariate) -> Covariate:
    return COVARIATES.register(covariate.name, covariate)


def covariate_column(name: str, window: Duration | None) -> str:
    """The column a covariate is written to: windowed versions carry their window."""
    return name if window is None else f"{name}_{window}"


def _age_at_index(ctx: CovariateContext, _: Duration | None) -> pd.Series:
    dob = ctx.person_attribute("date_of_birth")
    days = (ctx.index_table["index_date"] - pd.to_datetime(dob)).dt.days
    return days.astype("float64") / DAYS_PER_YEAR


def _attribute(column: str) -> Callable[[CovariateContext, Duration | None], pd.Series]:
    def compute(ctx: CovariateContext, _: Duration | None) -> pd.Series:
        return as_text(ctx.person_attribute(column)).fillna("Unknown")

    return compute


def _index_column(column: str, numeric: bool = False) -> Callable[[CovariateContext, Duration | None], pd.Series]:
    def compute(ctx: CovariateContext, _: Duration | None) -> pd.Series:
        values = ctx.index_table[column]
        return values.astype("float64") if numeric else values.astype("string").fillna("unknown")

    return compute


def _prior_proven_offences(ctx: CovariateContext, window: Duration | None) -> pd.Series:
    return ctx.count(ctx.prior_mask(window))


def _disposal_is(ctx: CovariateContext, disposal: str) -> np.ndarray:
    return (ctx.history["disposal"] == disposal).fillna(False).to_numpy(dtype=bool)


def _prior_custodial_sentences(ctx: CovariateContext, window: Duration | None) -> pd.Series:
    return ctx.occasions(ctx.prior_mask(window) & _disposal_is(ctx, "custody"))


def _prior_cautions(ctx: CovariateContext, window: Duration | None) -> pd.Series:
    return ctx.occasions(ctx.prior_mask(window) & _disposal_is(ctx, "caution"))


def _first_offence_date(ctx: CovariateContext) -> pd.Series:
    return ctx.earliest("offence_date", ctx.rows.up_to_index)


def _years_since_first_offence(ctx: CovariateContext, _: Duration | None) -> pd.Series:
    first = _first_offence_date(ctx).fillna(ctx.index_table["index_outcome_date"])
    days = (ctx.index_table["index_outcome_date"] - first).dt.days.clip(lower=0)
    return days.astype("float64") / DAYS_PER_YEAR


def _age_at_first_offence(ctx: CovariateContext, _: Duration | None) -> pd.Series:
    first = _first_offence_date(ctx).fillna(ctx.index_table["index_outcome_date"])
    dob = pd.to_datetime(ctx.person_attribute("date_of_birth"))
    return (first - dob).dt.days.astype("float64") / DAYS_PER_YEAR


def _copas_rate(ctx: CovariateContext, _: Duration | None) -> pd.Series:
    """OGRS-style Copas rate: ln((previous sanction occasions + 1) / (years in career + 10))."""
    previous = ctx.occasions(ctx.rows.prior)
    first_sanction = ctx.earliest("outcome_date", ctx.rows.up_to_index)
    first_sanction = first_sanction.fillna(ctx.index_table["index_outcome_date"])
    career_years = (ctx.index_table["index_outcome_date"] - first_sanction).dt.days / DAYS_PER_YEAR
    return pd.Series(np.log((previous + 1.0) / (career_years.astype("float64") + 10.0)), index=previous.index)


def _prior_year_reoffending(ctx: CovariateContext, window: Duration | None) -> pd.Series:
    """1 when an offence committed in the year (or `window`) before the index occasion was proven before it.

    The placebo outcome of DESIGN.md's sensitivity checks: reoffending measured
    before the index date, which a programme starting at the index cannot change.
    """
    span = window or Duration(1, "y")
    rows = ctx.rows
    start = rows.gather(kernels.nanoseconds(_window_start(ctx.index_table["index_outcome_date"], span)))
    offence = kernels.nanoseconds(ctx.history["offence_date"])
    recent = rows.prior & kernels.present(start) & kernels.present(offence) & (offence >= start)
    return (ctx.count(recent) > 0).astype("float64")


def _fused_count(which: int) -> Callable[[CovariateContext, GroupedHistory, Duration | None], np.ndarray]:
    def compute(_: CovariateContext, grouped: GroupedHistory, window: Duration | None) -> np.ndarray:
        return grouped.prior_counts(window)[which]

    return compute


def _fused_years_since_first_offence(ctx: CovariateContext, grouped: GroupedHistory, _: Duration | None
                                     ) -> np.ndarray:
    days = fused.whole_days(grouped.index_outcome, grouped.earliest("offence"))
    return np.where(days < 0, 0.0, days) / DAYS_PER_YEAR


def _fused_age_at_first_offence(ctx: CovariateContext, grouped: GroupedHistory, _: Duration | None) -> np.ndarray:
    dob = fused.nanoseconds(pd.to_datetime(ctx.person_attribute("date_of_birth")))
    return fused.whole_days(grouped.earliest("offence"), dob) / DAYS_PER_YEAR


def _fused_age_at_index(ctx: CovariateContext, _: GroupedHistory, __: Duration | None) -> np.ndarray:
    dob = fused.nanoseconds(pd.to_datetime(ctx.person_attribute("date_of_birth")))
    return fused.whole_days(fused.nanoseconds(ctx.index_table["index_date"]), dob) / DAYS_PER_YEAR


def _fused_copas_rate(ctx: CovariateContext, grouped: GroupedHistory, _: Duration | None) -> np.ndarray:
    previous = grouped.prior_counts(None)[3]
    career_years = fused.whole_days(grouped.index_outcome, grouped.earliest("outcome")) / DAYS_PER_YEAR
    return np.log((previous + 1.0) / (career_years + 10.0))


def _fused_prior_year_reoffending(ctx: CovariateContext, grouped: GroupedHistory, window: Duration | None
                                  ) -> np.ndarray:
    lower = grouped.window_start(window or Duration(1, "y"))
    return fused.any_offence_since(grouped.rows.starts, grouped.rows.ends, grouped.offence, grouped.outcome,
                                   grouped.index_outcome, lower)


for _covariate in (
    Covariate("age_at_index", "numeric", "age in years at the index date", _age_at_index,
              fused=_fused_age_at_index),
    Covariate("sex", "categorical", "sex (people table)", _attribute("sex")),
    Covariate("ethnicity", "categorical", "ethnicity (people table)", _attribute("ethnicity")),
    Covariate("region", "categorical", "region (people table)", _attribute("region")),
    Covariate("index_offence_group", "categorical", "offence group of the index offence",
              _index_column("index_offence_group")),
    Covariate("index_disposal", "categorical", "disposal of the index occasion", _index_column("index_disposal")),
    Covariate("index_severity", "categorical", "court outcome severity of the index offence",
              _index_column("index_severity")),
    Covariate("index_sentence_days", "numeric", "custodial sentence length at the index (0 if none)",
              _index_column("index_sentence_days", numeric=True)),
    Covariate("prior_proven_offences", "numeric", "proven offences before the index occasion",
              _prior_proven_offences, takes_window=True, fused=_fused_count(0)),
    Covariate("prior_custodial_sentences", "numeric", "custodial sentence occasions before the index",
              _prior_custodial_sentences, takes_window=True, fused=_fused_count(1)),
    Covariate("prior_cautions", "numeric", "caution occasions before the index", _prior_cautions,
              takes_window=True, fused=_fused_count(2)),
    Covariate("years_since_first_offence", "numeric", "years from the first proven offence to the index",
              _years_since_first_offence, fused=_fused_years_since_first_offence),
    Covariate("age_at_first_offence", "numeric", "age at the first proven offence", _age_at_first_offence,
              fused=_fused_age_at_first_offence),
    Covariate("copas_rate", "numeric", "OGRS Copas rate of proven sanctions", _copas_rate,
              fused=_fused_copas_rate),
    Covariate("prior_year_reoffending", "numeric",
              "1 if an offence in the year before the index occasion was proven before it (placebo outcome)",
              _prior_year_reoffending, takes_window=True, fused=_fused_prior_year_reoffending),
):
    register_covariate(_covariate)


def compute_covariates(
    ctx: CovariateContext, requested: list[tuple[str, Duration | None]]
) -> pd.DataFrame:
    """The requested covariates as columns aligned with `ctx.index_table`."""
    columns: dict[str, pd.Series] = {}
    for name, window in requested:
        covariate = COVARIATES[name]
        if window is not None and not covariate.takes_window:
            raise JdlUserError.single(
                f"spec covariates ({name})",
                "this covariate takes no window",
                value=str(window),
                allowed="window on: " + ", ".join(sorted(n for n, c in COVARIATES.items() if c.takes_window)),
            )
        columns[covariate_column(name, window)] = compute_covariate(ctx, covariate, window)
    return pd.DataFrame(columns, index=ctx.index_table.index)


def compute_covariate(ctx: CovariateContext, covariate: Covariate, window: Duration | None,
                      allow_fused: bool = True) -> pd.Series:
    """One covariate's values aligned with `ctx.index_table`: from the compiled kernels when it has them
    and the index table allows it (`CovariateContext.grouped`), else from its `compute`."""
    if allow_fused and covariate.fused is not None and ctx.grouped is not None:
        return pd.Series(covariate.fused(ctx, ctx.grouped, window), index=ctx.index_table.index)
    return covariate.compute(ctx, window)
