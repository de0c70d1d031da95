"""Covariates: what was known about each person at the index date.

Each covariate is a window aggregate of the person's proven history before the
index occasion (or a fact about the person or the index occasion), registered
by name. "Before" means an outcome date earlier than the index occasion's
outcome date, so the index occasion itself, and for a custodial index the
sentence being served, never count as prior history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from jdl.durations import Duration
from jdl.errors import JdlUserError
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
        lookup = self.people.drop_duplicates("person_id").set_index("person_id")[column]
        return self.per_person(lookup)


@dataclass(frozen=True)
class Covariate:
    name: str
    kind: Literal["numeric", "categorical"]
    description: str
    compute: Callable[[CovariateContext, Duration | None], pd.Series]
    takes_window: bool = False


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
        return ctx.person_attribute(column).astype("string").fillna("Unknown")

    return compute


def _index_column(column: str, numeric: bool = False) -> Callable[[CovariateContext, Duration | None], pd.Series]:
    def compute(ctx: CovariateContext, _: Duration | None) -> pd.Series:
        values = ctx.index_table[column]
        return values.astype("float64") if numeric else values.astype("string").fillna("unknown")

    return compute


def _prior_proven_offences(ctx: CovariateContext, window: Duration | None) -> pd.Series:
    counts = ctx.prior(window).groupby("person_id").size()
    return ctx.per_person(counts, fill=0).astype("float64")


def _prior_custodial_sentences(ctx: CovariateContext, window: Duration | None) -> pd.Series:
    prior = ctx.prior(window)
    occasions = prior.loc[prior["disposal"] == "custody"].drop_duplicates(["person_id", "outcome_date"])
    return ctx.per_person(occasions.groupby("person_id").size(), fill=0).astype("float64")


def _prior_cautions(ctx: CovariateContext, window: Duration | None) -> pd.Series:
    prior = ctx.prior(window)
    occasions = prior.loc[prior["disposal"] == "caution"].drop_duplicates(["person_id", "outcome_date"])
    return ctx.per_person(occasions.groupby("person_id").size(), fill=0).astype("float64")


def _first_offence_date(ctx: CovariateContext) -> pd.Series:
    first = ctx.up_to_index().groupby("person_id")["offence_date"].min()
    return pd.to_datetime(ctx.per_person(first))


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
    prior = ctx.prior(None).drop_duplicates(["person_id", "outcome_date"])
    previous = ctx.per_person(prior.groupby("person_id").size(), fill=0).astype("float64")
    first_sanction = ctx.per_person(ctx.up_to_index().groupby("person_id")["outcome_date"].min())
    first_sanction = pd.to_datetime(first_sanction).fillna(ctx.index_table["index_outcome_date"])
    career_years = (ctx.index_table["index_outcome_date"] - first_sanction).dt.days / DAYS_PER_YEAR
    return pd.Series(np.log((previous + 1.0) / (career_years.astype("float64") + 10.0)), index=previous.index)


def _prior_year_reoffending(ctx: CovariateContext, window: Duration | None) -> pd.Series:
    """1 when an offence committed in the year (or `window`) before the index occasion was proven before it.

    The placebo outcome of DESIGN.md's sensitivity checks: reoffending measured
    before the index date, which a programme starting at the index cannot change.
    """
    span = window or Duration(1, "y")
    prior = ctx.prior(None)
    start = prior["index_outcome_date"] - (span.add_to(prior["index_outcome_date"]) - prior["index_outcome_date"])
    recent = prior.loc[prior["offence_date"] >= start]
    return ctx.per_person((recent.groupby("person_id").size() > 0).astype("float64"), fill=0).astype("float64")


for _covariate in (
    Covariate("age_at_index", "numeric", "age in years at the index date", _age_at_index),
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
              _prior_proven_offences, takes_window=True),
    Covariate("prior_custodial_sentences", "numeric", "custodial sentence occasions before the index",
              _prior_custodial_sentences, takes_window=True),
    Covariate("prior_cautions", "numeric", "caution occasions before the index", _prior_cautions,
              takes_window=True),
    Covariate("years_since_first_offence", "numeric", "years from the first proven offence to the index",
              _years_since_first_offence),
    Covariate("age_at_first_offence", "numeric", "age at the first proven offence", _age_at_first_offence),
    Covariate("copas_rate", "numeric", "OGRS Copas rate of proven sanctions", _copas_rate),
    Covariate("prior_year_reoffending", "numeric",
              "1 if an offence in the year before the index occasion was proven before it (placebo outcome)",
              _prior_year_reoffending, takes_window=True),
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
        columns[covariate_column(name, window)] = covariate.compute(ctx, window)
    return pd.DataFrame(columns, index=ctx.index_table.index)
