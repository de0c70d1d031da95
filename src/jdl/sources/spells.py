"""Optional national tables of spells: employment (HMRC) and benefits (DWP).

Each row is one spell of one person: a start date and an end date (blank: the
spell was still going on when the data were extracted). The tables join the
offending records on person_id and are read like the events: fragment by
fragment, normalised in Arrow, with every row that breaks the contract kept
and marked with a reason for the rejects file. The block pass reads only the
rows of the block's person_id range, with the range pushed into the Parquet
scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from jdl.sources.layout import Fragment
from jdl.sources.national import (
    REJECT_COLUMN,
    TableContract,
    TableSource,
    normalise_table,
    open_table,
)

if TYPE_CHECKING:
    import dask.dataframe as dd

# out_of_work: Jobseeker's Allowance, Employment and Support Allowance, Income Support, and
# Universal Credit with work-search or no work requirements (the DWP "out-of-work benefits");
# other: anything else (disability, carer's and in-work benefits).
BENEFIT_TYPES = ("out_of_work", "other")

EMPLOYMENT = TableContract(
    name="employment",
    required=("person_id", "start_date", "end_date"),
    dates=("start_date", "end_date"),
    categories={},
    nullable=("end_date",),
)
BENEFITS = TableContract(
    name="benefits",
    required=("person_id", "benefit_type", "start_date", "end_date"),
    dates=("start_date", "end_date"),
    categories={"benefit_type": BENEFIT_TYPES},
    nullable=("end_date",),
)
SPELL_CONTRACTS: dict[str, TableContract] = {"employment": EMPLOYMENT, "benefits": BENEFITS}
END_BEFORE_START = "end_date is before start_date"
PERSON_ID_PROBLEM = "person_id is missing or not a whole number"


def spec_key(table: str) -> str:
    return f"data.national_records.{table}"


def open_spell_table(table: str, location: str) -> TableSource:
    """Find a spell table's files and check its columns (a JdlUserError naming file and column)."""
    return open_table(location, SPELL_CONTRACTS[table], spec_key(table))


def normalise_spells(table: pa.Table, contract: TableContract) -> pd.DataFrame:
    """Contract dtypes and reject reasons, plus the spell rule: an end never before its start."""
    frame = normalise_table(table, contract, list(contract.required))
    ends_early = np.asarray((frame["end_date"] < frame["start_date"]).fillna(False), dtype=bool)
    unflagged = frame[REJECT_COLUMN].isna().to_numpy()
    if (ends_early & unflagged).any():
        reasons = frame[REJECT_COLUMN].copy()
        reasons[ends_early & unflagged] = END_BEFORE_START
        frame[REJECT_COLUMN] = reasons
    return frame


@dataclass(frozen=True)
class PersonRange:
    """The person_ids a block owns: [low, high] (None: unbounded), plus rows with unusable ids.

    The ranges of a pass's blocks tile every possible person_id, and exactly one
    block takes the rows whose person_id is missing, so every row of a spell
    table is read, and every reject reported, exactly once.
    """

    low: int | None
    high: int | None
    takes_bad_ids: bool = False

    def overlaps(self, fragment: Fragment) -> bool:
        if not fragment.has_range:
            return True
        assert fragment.person_min is not None and fragment.person_max is not None
        return not ((self.high is not None and fragment.person_min > self.high)
                    or (self.low is not None and fragment.person_max < self.low))


def block_ranges(bounds: Sequence[tuple[int, int]]) -> list[PersonRange]:
    """Ranges tiling all person_ids, one per block, from the blocks' sorted (min, max) ids."""
    ranges = []
    for position, (_low, high) in enumerate(bounds):
        low = None if position == 0 else bounds[position - 1][1] + 1
        last = position == len(bounds) - 1
        ranges.append(PersonRange(low, None if last else high, takes_bad_ids=position == 0))
    return ranges


def read_spells(
    source: TableSource,
    *,
    person_range: PersonRange | None = None,
    person_ids: np.ndarray | None = None,
) -> pd.DataFrame:
    """All rows (normalised, with reasons) of the fragments a range or id list can touch.

    `person_range` keeps the rows of that range (and, when it takes them, rows
    without a usable person_id); `person_ids` keeps only those people. Either
    filter is pushed into the Parquet scan when person_id is stored as integers.
    """
    fragments = [f for f in source.fragments()
                 if person_range is None or person_range.overlaps(f)]
    frames = [_read_fragment(source, f, person_range, person_ids) for f in fragments]
    frames = [f for f in frames if len(f)]
    if not frames:
        return source.empty(list(source.contract.required))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _read_fragment(
    source: TableSource, fragment: Fragment, person_range: PersonRange | None, person_ids: np.ndarray | None
) -> pd.DataFrame:
    columns = list(source.contract.required)
    pushed = False
    if fragment.fmt == "parquet":
        table, pushed = _scan(fragment, columns, person_range, person_ids)
    else:
        frame = pd.read_csv(fragment.path.removeprefix("file://"), usecols=columns, dtype=str,
                            encoding="utf-8-sig")
        table = pa.Table.from_pandas(frame[columns], preserve_index=False)
    normalised = normalise_spells(table, source.contract)
    if pushed:
        return normalised
    keep = np.ones(len(normalised), dtype=bool)
    ids = normalised["person_id"].to_numpy()
    bad_id = (normalised[REJECT_COLUMN] == PERSON_ID_PROBLEM).fillna(False).to_numpy(dtype=bool)
    if person_range is not None:
        keep &= ~bad_id
        if person_range.low is not None:
            keep &= ids >= person_range.low
        if person_range.high is not None:
            keep &= ids <= person_range.high
        if person_range.takes_bad_ids:
            keep |= bad_id
    if person_ids is not None:
        keep &= np.isin(ids, person_ids) & ~bad_id
    return normalised.loc[keep].reset_index(drop=True)


def _scan(
    fragment: Fragment, columns: list[str], person_range: PersonRange | None, person_ids: np.ndarray | None
) -> tuple[pa.Table, bool]:
    """The fragment's columns, and whether the filters were pushed into the scan."""
    if "://" in fragment.path:
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        filesystem, inner = fsspec.core.url_to_fs(fragment.path)
        arrow_fs: pafs.FileSystem = PyFileSystem(FSSpecHandler(filesystem))
    else:
        arrow_fs, inner = pafs.LocalFileSystem(), fragment.path
    piece = ds.ParquetFileFormat().make_fragment(inner, filesystem=arrow_fs)
    if fragment.row_groups is not None:
        piece = piece.subset(row_group_ids=list(fragment.row_groups))
    if not pa.types.is_integer(piece.physical_schema.field("person_id").type):
        return piece.to_table(columns=columns), False
    person = ds.field("person_id")
    row_filter: ds.Expression | None = None
    if person_range is not None:
        in_range = person.is_valid()
        if person_range.low is not None:
            in_range &= person >= person_range.low
        if person_range.high is not None:
            in_range &= person <= person_range.high
        row_filter = in_range | person.is_null() if person_range.takes_bad_ids else in_range
    if person_ids is not None:
        chosen = person.isin(pa.array(np.asarray(person_ids, dtype=np.int64)))
        row_filter = chosen if row_filter is None else row_filter & chosen
    return piece.to_table(columns=columns, filter=row_filter), True


def valid_spells(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows that keep the contract, without the reason column, in a stable order."""
    return sorted_spells(frame.loc[frame[REJECT_COLUMN].isna()].drop(columns=[REJECT_COLUMN]))


def sorted_spells(frame: pd.DataFrame) -> pd.DataFrame:
    """Spells by person, start, end (ongoing last) and type: the same order however they were read."""
    order = ["person_id", "start_date", "end_date"] + (["benefit_type"] if "benefit_type" in frame else [])
    return frame.sort_values(order, kind="mergesort", na_position="last").reset_index(drop=True)


def spell_rejects(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """table, person_id (blank when unusable) and reason of the rows that break the contract."""
    rejected = frame.loc[frame[REJECT_COLUMN].notna(), ["person_id", REJECT_COLUMN]]
    reasons = f"{table} table: " + rejected[REJECT_COLUMN].astype("string")
    ids = rejected["person_id"].astype("Int64").mask(rejected[REJECT_COLUMN] == PERSON_ID_PROBLEM)
    out = pd.DataFrame({"table": pd.array([table] * len(rejected), dtype="string"),
                        "person_id": ids.array, "reason": reasons.array})
    return sorted_rejects(out)


def sorted_rejects(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["table", "person_id", "reason"], kind="mergesort", na_position="first").reset_index(
        drop=True)


def read_spell_fragment(source: TableSource, fragment: Fragment) -> pd.DataFrame:
    """Every row of one fragment, normalised, with the reject column."""
    return _read_fragment(source, fragment, None, None)


def read_lazily(source: TableSource) -> dd.DataFrame:
    """The whole table as a Dask frame of normalised fragments (for the repartitioning fallback)."""
    import dask.dataframe as dd  # only the repartitioning fallback uses Dask DataFrames (~0.5 s to import)

    meta = source.empty(list(source.contract.required))
    return dd.from_map(_SpellFragmentReader(source), source.fragments(), meta=meta, enforce_metadata=False,
                       label=f"read-{source.contract.name}")


@dataclass(frozen=True)
class _SpellFragmentReader:
    """A picklable `read_spell_fragment` for `dd.from_map` (runs on the workers)."""

    source: TableSource

    def __call__(self, fragment: Fragment) -> pd.DataFrame:
        return read_spell_fragment(self.source, fragment)


__all__ = [
    "BENEFITS",
    "BENEFIT_TYPES",
    "EMPLOYMENT",
    "SPELL_CONTRACTS",
    "PersonRange",
    "block_ranges",
    "normalise_spells",
    "open_spell_table",
    "read_lazily",
    "read_spell_fragment",
    "read_spells",
    "sorted_rejects",
    "sorted_spells",
    "spec_key",
    "spell_rejects",
    "valid_spells",
]
