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
import pyarrow as pa
import pyarrow.compute as pc

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


def as_text(values: pd.Series) -> pd.Series:
    """`values.astype("string")`; a Categorical converts its categories once and takes them by code."""
    categories = values.cat.categories if isinstance(values.dtype, pd.CategoricalDtype) else None
    if categories is None or not all(isinstance(c, str) for c in categories):
        return values.astype("string")
    codes = values.cat.codes.to_numpy()
    taken = pc.take(pa.array(list(categories), pa.large_string()), pa.array(codes, mask=codes < 0))
    return pd.Series(pd.arrays.ArrowStringArray(taken), index=values.index, name=values.name)


def text_in(values: pd.Series, allowed: tuple[str, ...]) -> np.ndarray:
    """`values.isin(allowed)` as a bool array; a Categorical is tested once per category."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        wanted = [code for code, c in enumerate(values.cat.categories) if c in allowed]
        codes = values.cat.codes.to_numpy()
        if len(wanted) <= 3:
            # comparing the small codes is cheaper than gathering through them
            found = np.zeros(len(codes), dtype=bool)
            for code in wanted:
                found |= codes == code
            return found
        per_category = np.array([c in allowed for c in values.cat.categories] + [False], dtype=bool)
        return per_category[codes]
    return values.isin(allowed).to_numpy(dtype=bool)


def _rank(values: pd.Series, order: tuple[str, ...]) -> np.ndarray:
    """Each value's place in `order` (len(order) for anything else, missing included)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        # one place per category; code -1 (missing) takes the last entry
        places = [order.index(c) if c in order else len(order) for c in values.cat.categories]
        return np.array([*places, len(order)], dtype=np.int64)[values.cat.codes.to_numpy()]
    text = pa.array(values.astype("string"))
    places = pc.index_in(text, value_set=pa.array(order, type=text.type))
    return places.fill_null(len(order)).to_numpy(zero_copy_only=False).astype(np.int64)


def candidate_index_rows(events: pd.DataFrame, period_from: dt.date, period_to: dt.date) -> pd.DataFrame:
    """Proven events that could belong to an occasion whose index date lies in the period.

    Works on any slice of the events table (a Dask partition), keeping every
    row an occasion needs, so occasions split across partitions resolve the
    same way after the slices are put together.
    """
    start = pd.Timestamp(period_from)
    end = pd.Timestamp(period_to)
    proven = text_in(events["outcome_type"], PROVEN_OUTCOMES)
    outcome_in_reach = events["outcome_date"] <= end
    starts_in_time = (events["outcome_date"] >= start) | (
        (events["disposal"] == "custody") & (events["release_date"] >= start)
    )
    keep = proven & outcome_in_reach & starts_in_time
    return events.loc[keep.fillna(False), list(EVENT_COLUMNS_FOR_INDEX)]


def resolve_occasions(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (person, outcome date) occasion with its index date and index offence.

    The occasion's lead row is its first by disposal rank, severity rank, longest
    sentence, offence date and offence group (a stable sort: ties keep row order).
    """
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in INDEX_COLUMNS})
    person = rows["person_id"].to_numpy(dtype=np.int64)
    outcome = sort_key(rows["outcome_date"])
    order = stable_order([outcome, person])
    person_sorted, outcome_sorted = person[order], outcome[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (person_sorted[1:] != person_sorted[:-1]) | (outcome_sorted[1:] != outcome_sorted[:-1])
    occasion = np.cumsum(starts) - 1
    sizes = np.bincount(occasion)
    disposal_rank = _rank(rows["disposal"], DISPOSAL_ORDER)
    sentence = rows["sentence_days"].fillna(0.0).to_numpy(dtype="float64")

    # the lead of a one-row occasion is that row; only shared occasions need the tie-breaking sort
    lead = order[starts]
    shared = sizes[occasion] > 1
    if shared.any():
        members = order[shared]
        # codes in the order of the text, so sorting by them sorts by the text
        group_codes, _ = pd.factorize(_group(rows["offence_group"].iloc[members]), sort=True)
        within = np.lexsort((group_codes, sort_key(rows["offence_date"].iloc[members]), -sentence[members],
                             _rank(rows["severity"].iloc[members], SEVERITY_ORDER), disposal_rank[members],
                             occasion[shared]))
        ranked = members[within]
        first = np.ones(len(ranked), dtype=bool)
        member_occasion = occasion[shared][within]
        first[1:] = member_occasion[1:] != member_occasion[:-1]
        lead[member_occasion[first]] = ranked[first]

    # the latest release of the occasion's custodial sentences
    release = rows["release_date"].to_numpy(dtype="datetime64[ns]").view(np.int64)[order]
    custodial = (disposal_rank[order] == 0) & (release != NAT)
    latest = np.full(len(lead), NAT, dtype=np.int64)
    np.maximum.at(latest, occasion[custodial], release[custodial])
    outcome_dates = rows["outcome_date"].to_numpy(dtype="datetime64[ns]")[lead]
    index_date = np.where(disposal_rank[lead] == 0, latest.view("datetime64[ns]"), outcome_dates)

    occasions = pd.DataFrame(
        {
            "person_id": person_sorted[starts],
            "index_date": index_date.astype("datetime64[ns]"),
            "index_outcome_date": outcome_dates,
            "index_offence_group": _group(rows["offence_group"].iloc[lead]).reset_index(drop=True),
            "index_severity": _text(rows["severity"], lead),
            "index_disposal": _text(rows["disposal"], lead),
            "index_sentence_days": sentence[lead],
        }
    )
    # occasions are in (person, outcome date) order; put them in (person, index date) order
    final = stable_order([occasions["index_outcome_date"].to_numpy().view(np.int64),
                           sort_key(occasions["index_date"]), occasions["person_id"].to_numpy()])
    if (final != np.arange(len(final))).any():
        occasions = occasions.iloc[final]
    return occasions.reset_index(drop=True)


def _group(offence_group: pd.Series) -> pd.Series:
    """The offence group as text, "" when missing."""
    return as_text(offence_group).fillna("")


def _text(values: pd.Series, rows: np.ndarray) -> pd.Series:
    return as_text(values.take(rows)).reset_index(drop=True)


def stable_order(keys: list[np.ndarray]) -> np.ndarray:
    """np.lexsort(keys) (last key most significant), skipping the sort when rows are already in order."""
    size = len(keys[0])
    if size < 2:
        return np.arange(size)
    # neighbours in order on keys[:i+1]: before < after on key i, or equal there and in order on the rest
    in_order = keys[0][:-1] <= keys[0][1:]
    for key in keys[1:]:
        before, after = key[:-1], key[1:]
        in_order &= before == after
        in_order |= before < after
    if in_order.all():
        return np.arange(size)
    packed = _packed(keys)
    return np.lexsort(keys) if packed is None else np.argsort(packed, kind="stable")


DAY_NS = 86_400_000_000_000


def _packed(keys: list[np.ndarray]) -> np.ndarray | None:
    """The keys as one int64 that sorts (and ties) as they do together, when their ranges fit in 62 bits.

    Each key is offset by its minimum, and divided by a day when every value is a whole number of days
    from it (dates), which keeps order and ties exactly. A stable argsort of the packed key is lexsort.
    """
    parts: list[tuple[np.ndarray, int]] = []
    for key in keys:
        values = np.asarray(key)
        if values.dtype.kind not in "iu" or len(values) == 0:
            return None
        low, high = int(values.min()), int(values.max())
        if high - low >= 2**62:
            return None
        span = values.astype(np.int64) - low
        if high - low >= DAY_NS and not (span % DAY_NS).any():
            span //= DAY_NS
        parts.append((span, int(span.max()).bit_length()))
    if sum(bits for _, bits in parts) > 62:
        return None
    packed = np.zeros(len(keys[0]), dtype=np.int64)
    shift = 0
    for span, bits in parts:
        packed |= span << shift
        shift += bits
    return packed


NAT = np.iinfo(np.int64).min


def sort_key(dates: pd.Series) -> np.ndarray:
    """Dates as int64 that sort as pandas sorts them (missing last)."""
    values = dates.to_numpy(dtype="datetime64[ns]").view(np.int64)
    return np.where(values == NAT, np.iinfo(np.int64).max, values)


def _dtype(column: str) -> str:
    if column == "person_id":
        return "int64"
    if column in ("index_date", "index_outcome_date"):
        return "datetime64[ns]"
    if column == "index_sentence_days":
        return "float64"
    return "string"
