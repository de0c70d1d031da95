"""Index events (DESIGN.md §1).

An index event is a proven outcome: a court conviction or a caution (penalty
notices never are). Events sharing a person and an outcome date are one
occasion. The occasion's index date is the release from custody when any of
its sentences is custodial (the latest release, since concurrent sentences end
together in practice) and otherwise the conviction or caution date. The
occasion's offence is its most serious one, so that a custodial sentence for
burglary alongside a fine for a motoring offence is a burglary/custody index.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

PROVEN_OUTCOMES = ("court_conviction", "caution")
DISPOSAL_ORDER = ("custody", "suspended", "community", "fine", "discharge", "caution")
SEVERITY_ORDER = ("indictable", "either_way", "summary")

INDEX_COLUMNS = (
    "person_id",
    "index_date",
    "index_outcome_date",
    "index_offence_group",
    "index_severity",
    "index_disposal",
    "index_sentence_days",
)

EVENT_COLUMNS_FOR_INDEX = (
    "person_id",
    "offence_date",
    "outcome_date",
    "outcome_type",
    "offence_group",
    "severity",
    "disposal",
    "sentence_days",
    "release_date",
)


def _rank(values: pd.Series, order: tuple[str, ...]) -> np.ndarray:
    lookup = {name: rank for rank, name in enumerate(order)}
    return values.map(lookup).fillna(len(order)).to_numpy(dtype=np.int64)


def candidate_index_rows(events: pd.DataFrame, period_from: dt.date, period_to: dt.date) -> pd.DataFrame:
    """Proven events that could belong to an occasion whose index date lies in the period.

    Works on any slice of the events table (a Dask partition), keeping every
    row an occasion needs, so occasions split across partitions resolve the
    same way after the slices are put together.
    """
    start = pd.Timestamp(period_from)
    end = pd.Timestamp(period_to)
    proven = events["outcome_type"].isin(PROVEN_OUTCOMES)
    outcome_in_reach = events["outcome_date"] <= end
    starts_in_time = (events["outcome_date"] >= start) | (
        (events["disposal"] == "custody") & (events["release_date"] >= start)
    )
    keep = proven & outcome_in_reach & starts_in_time
    return events.loc[keep.fillna(False), list(EVENT_COLUMNS_FOR_INDEX)]


def resolve_occasions(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (person, outcome date) occasion with its index date and index offence."""
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in INDEX_COLUMNS})
    frame = rows.assign(
        _disposal_rank=_rank(rows["disposal"], DISPOSAL_ORDER),
        _severity_rank=_rank(rows["severity"], SEVERITY_ORDER),
        _sentence=rows["sentence_days"].fillna(0.0),
        _group=rows["offence_group"].fillna(""),
    )
    frame = frame.sort_values(
        ["person_id", "outcome_date", "_disposal_rank", "_severity_rank", "_sentence", "offence_date", "_group"],
        ascending=[True, True, True, True, False, True, True],
        kind="mergesort",
    )
    custody_release = (
        frame.loc[frame["disposal"] == "custody"]
        .groupby(["person_id", "outcome_date"], sort=False)["release_date"]
        .max()
    )
    lead = frame.drop_duplicates(["person_id", "outcome_date"], keep="first")
    lead = lead.set_index(["person_id", "outcome_date"])
    release = custody_release.reindex(lead.index)
    index_date = release.where(lead["disposal"] == "custody", lead.index.get_level_values("outcome_date"))
    occasions = pd.DataFrame(
        {
            "person_id": lead.index.get_level_values("person_id").astype("int64"),
            "index_date": pd.to_datetime(index_date.to_numpy()).astype("datetime64[ns]"),
            "index_outcome_date": lead.index.get_level_values("outcome_date").astype("datetime64[ns]"),
            "index_offence_group": lead["_group"].to_numpy(),
            "index_severity": lead["severity"].to_numpy(),
            "index_disposal": lead["disposal"].to_numpy(),
            "index_sentence_days": lead["_sentence"].to_numpy(dtype="float64"),
        }
    )
    occasions["index_offence_group"] = occasions["index_offence_group"].astype("string")
    occasions["index_severity"] = occasions["index_severity"].astype("string")
    occasions["index_disposal"] = occasions["index_disposal"].astype("string")
    return occasions.sort_values(["person_id", "index_date", "index_outcome_date"], kind="mergesort").reset_index(
        drop=True
    )


def _dtype(column: str) -> str:
    if column == "person_id":
        return "int64"
    if column in ("index_date", "index_outcome_date"):
        return "datetime64[ns]"
    if column == "index_sentence_days":
        return "float64"
    return "string"
