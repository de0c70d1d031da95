"""Per-person aggregates of event rows, in numpy.

Covariates and outcomes are window aggregates of each person's events. The
straightforward formulation merges the events with the index table and groups
by person; at national scale the merges, group-bys and string comparisons
dominate. These kernels work on each event row's position in the index table
(one row per person) instead: counts are `np.bincount`, minima `np.minimum.at`,
distinct occasions a stable sort. Each gives exactly what the pandas
formulation gives (tests/test_measure_kernels.py checks them against it):
integer counts and date minima have no rounding to differ in.

Dates are compared as int64 nanoseconds; NaT is the smallest int64, so every
comparison masks it out first, as pandas' comparisons with NaT are False.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NAT = np.iinfo(np.int64).min


def positions(index_person_ids: pd.Series, person_ids: pd.Series) -> np.ndarray:
    """Each row's position in the index table by person_id (-1: the person is not in it).

    The index table holds one row per person (callers check `unique_ids` first).
    """
    index = pd.Index(np.asarray(index_person_ids, dtype=np.int64))
    return np.asarray(index.get_indexer(np.asarray(person_ids, dtype=np.int64)), dtype=np.int64)


def unique_ids(index_person_ids: pd.Series) -> bool:
    return bool(pd.Index(index_person_ids).is_unique)


def nanoseconds(dates: pd.Series | np.ndarray) -> np.ndarray:
    """Dates as int64 nanoseconds (NaT as `NAT`)."""
    return np.asarray(dates, dtype="datetime64[ns]").view(np.int64)


def present(values: np.ndarray) -> np.ndarray:
    return values != NAT


def count_per_person(position: np.ndarray, keep: np.ndarray, people: int) -> np.ndarray:
    """Rows kept per person, as float64 (what groupby().size() reindexed with fill 0 gives)."""
    return np.bincount(position[keep], minlength=people).astype("float64")


def distinct_per_person(position: np.ndarray, values: np.ndarray, keep: np.ndarray, people: int) -> np.ndarray:
    """Distinct `values` per person among the kept rows, as float64 (drop_duplicates then size)."""
    where = position[keep]
    chosen = values[keep]
    if len(where) == 0:
        return np.zeros(people, dtype="float64")
    # (person, value) pairs as one int64 key; distinct keys by hashing, not sorting
    codes, uniques = pd.factorize(chosen)
    pairs = pd.unique(where.astype(np.int64) * len(uniques) + codes)
    return np.bincount(pairs // len(uniques), minlength=people).astype("float64")


def minimum_per_person(position: np.ndarray, values: np.ndarray, keep: np.ndarray, people: int) -> np.ndarray:
    """The smallest of each person's kept int64 values (`NAT` where a person has none)."""
    keep = keep & present(values)
    out = np.full(people, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(out, position[keep], values[keep])
    out[out == np.iinfo(np.int64).max] = NAT
    return out


def first_rows(position: np.ndarray, sort_keys: list[np.ndarray]) -> np.ndarray:
    """Row numbers of each person's first row when sorted by `sort_keys` (stable, most significant first).

    What a stable sort by person then the keys, followed by drop_duplicates(person), keeps.
    """
    if len(position) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((*reversed(sort_keys), position))
    ordered = position[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return order[first]


def as_dates(values: np.ndarray) -> pd.Series:
    """int64 nanoseconds back to datetime64[ns] (NaT kept)."""
    return pd.Series(values.view("datetime64[ns]"))
