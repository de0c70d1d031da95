"""Reading the national records (people and events) lazily, fragment by fragment.

A location is a Parquet or CSV file, a folder of partitions, a glob, or an
fsspec URL. Columns are checked against the data contract before any work is
scheduled. Only the columns a stage asks for are read, row filters are pushed
into the Parquet scan, and values are normalised fragment by fragment in Arrow
(never a whole table in one pandas frame); rows that break the contract are
marked with a reason (never dropped silently) so the engine can write them to
the rejects file.
"""

from __future__ import annotations

import csv
import glob
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from jdl.errors import JdlUserError

if TYPE_CHECKING:
    import dask.dataframe as dd
from jdl.sources.layout import Fragment, parquet_fragments

REJECT_COLUMN = "_reject_reason"
# Text columns of few distinct values, read from Parquet as dictionaries.
DICTIONARY_TEXT = ("offence_group", "region")

OUTCOME_TYPES = ("court_conviction", "caution", "pnd")
SEVERITIES = ("indictable", "either_way", "summary")
DISPOSALS = ("custody", "suspended", "community", "fine", "discharge", "caution", "pnd")
SEXES = ("M", "F")
ETHNICITIES = ("White", "Black", "Asian", "Mixed", "Other", "Unknown")


@dataclass(frozen=True)
class TableContract:
    name: str
    required: tuple[str, ...]
    dates: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    nullable: tuple[str, ...]


PEOPLE = TableContract(
    name="people",
    required=("person_id", "pnc_id", "forename", "surname", "date_of_birth", "sex", "ethnicity", "region"),
    dates=("date_of_birth",),
    categories={"sex": SEXES, "ethnicity": ETHNICITIES},
    nullable=("pnc_id", "forename", "surname", "ethnicity", "region"),
)

EVENTS = TableContract(
    name="events",
    required=(
        "person_id",
        "offence_date",
        "outcome_date",
        "outcome_type",
        "offence_group",
        "severity",
        "disposal",
        "sentence_days",
        "release_date",
    ),
    dates=("offence_date", "outcome_date", "release_date"),
    categories={"outcome_type": OUTCOME_TYPES, "severity": SEVERITIES, "disposal": DISPOSALS},
    nullable=("offence_group", "sentence_days", "release_date"),
)


def _is_url(location: str) -> bool:
    return "://" in location


def _expand(location: str, spec_key: str) -> list[str]:
    """The files a location names, in a stable order."""
    if _is_url(location):
        fs, _, paths = fsspec.get_fs_token_paths(location)
        files: list[str] = []
        for path in sorted(paths):
            if fs.isdir(path):
                files.extend(sorted(p for p in fs.find(path) if _data_suffix(p)))
            else:
                files.append(path)
        protocol = location.split("://", 1)[0]
        return [p if "://" in p else f"{protocol}://{p}" for p in files]
    path = Path(location)
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and _data_suffix(str(p)))
    elif any(ch in location for ch in "*?["):
        files = sorted(p for p in glob.glob(location, recursive=True) if Path(p).is_file())
    elif path.is_file():
        files = [str(path)]
    else:
        raise JdlUserError.single(
            f"spec {spec_key}",
            "no such file or folder",
            value=location,
            hint="paths are relative to the folder you run jdl from",
        )
    if not files:
        raise JdlUserError.single(
            f"spec {spec_key}",
            "no Parquet or CSV files found",
            value=location,
            allowed="a .parquet/.csv file, a folder of them, or a glob",
        )
    return files


def _data_suffix(path: str) -> bool:
    return path.endswith((".parquet", ".csv", ".pq"))


def _format_of(files: list[str], spec_key: str) -> str:
    kinds = {"csv" if f.endswith(".csv") else "parquet" for f in files}
    if len(kinds) > 1:
        raise JdlUserError.single(
            f"spec {spec_key}", "mixes CSV and Parquet files", allowed="one format per table"
        )
    return kinds.pop()


def _columns_of(first_file: str, fmt: str) -> list[str]:
    if fmt == "parquet":
        with fsspec.open(first_file, "rb") as handle:
            return list(pq.read_schema(handle).names)
    with fsspec.open(first_file, "rt", encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), [])  # a header may quote its names
    return [c.strip() for c in header]


@dataclass(frozen=True)
class TableSource:
    """A national table: where it is, its format and the files it is made of."""

    contract: TableContract
    location: str
    files: tuple[str, ...]
    fmt: str
    spec_key: str

    def _check_columns(self, columns: Sequence[str]) -> list[str]:
        unknown = [c for c in columns if c not in self.contract.required]
        if unknown:
            raise ValueError(f"columns {unknown} are not in the {self.contract.name} contract")
        return list(columns)

    def fragments(self) -> list[Fragment]:
        """The pieces a pass reads independently, with person_id ranges from Parquet statistics."""
        if self.fmt == "parquet":
            return [fragment for path in self.files for fragment in parquet_fragments(path)]
        return [Fragment(path, "csv", rows=_csv_rows_estimate(path)) for path in self.files]

    def read_fragment(
        self, fragment: Fragment, columns: Sequence[str], person_ids: np.ndarray | None = None,
        *, categorical: bool = False,
    ) -> pd.DataFrame:
        """One fragment's `columns`, normalised, with the reject column.

        `person_ids` keeps only those people's rows; for Parquet the filter is
        pushed into the scan (row groups whose statistics exclude every id are
        skipped, and the rest are filtered before any pandas conversion).
        """
        wanted = self._check_columns(columns)
        pushed = False
        if fragment.fmt == "parquet":
            # columns with few distinct values are read as dictionaries: each value is checked once
            dictionary = [c for c in wanted if c in self.contract.categories or c in DICTIONARY_TEXT]
            table, pushed = _scan_parquet(fragment, wanted, person_ids, dictionary)
        else:
            frame = pd.read_csv(_local_or_url(fragment.path), usecols=wanted, dtype=str, encoding="utf-8-sig")
            table = pa.Table.from_pandas(frame[wanted], preserve_index=False)
        normalised = normalise_table(table, self.contract, wanted, categorical=categorical)
        if person_ids is not None and not pushed:
            normalised = normalised.loc[normalised["person_id"].isin(person_ids)].reset_index(drop=True)
        return normalised

    def read_fragment_selected(
        self, fragment: Fragment, columns: Sequence[str], key_columns: Sequence[str],
        select: Callable[[pd.DataFrame], np.ndarray] | Callable[[pa.Table], np.ndarray],
        *, arrow_select: bool = False,
    ) -> pd.DataFrame:
        """`read_fragment(fragment, columns)` restricted to the rows `select` keeps.

        `select` sees only `key_columns` (normalised, with the reject column of
        those columns); the other columns are normalised for the kept rows alone,
        which saves converting, say, ten million names to keep a few thousand.
        A row's values and reject reason depend on that row alone, so the result
        is the same rows as filtering the whole fragment whenever the reject
        reasons come from `key_columns` (the caller's contract). `arrow_select`:
        `select` sees the Arrow table of `key_columns` as read instead (not
        normalised, no reject column), and answers for the normalised rows.
        """
        wanted = self._check_columns(columns)
        keys = self._check_columns(key_columns)
        if fragment.fmt == "parquet":
            # the other columns are read as dictionaries too: most of their rows are dropped
            # unconverted, and a dictionary column's text is trimmed once per distinct value
            dictionary = [c for c in wanted if c in self.contract.categories or c in DICTIONARY_TEXT
                          or c not in keys]
            table, _ = _scan_parquet(fragment, wanted, None, dictionary)
        else:
            frame = pd.read_csv(_local_or_url(fragment.path), usecols=wanted, dtype=str, encoding="utf-8-sig")
            table = pa.Table.from_pandas(frame[wanted], preserve_index=False)
        key_table = table.select(keys)
        chosen = select(key_table if arrow_select else normalise_table(key_table, self.contract, keys))  # type: ignore[arg-type]
        keep = np.asarray(chosen, dtype=bool)
        return normalise_table(table.filter(pa.array(keep)), self.contract, wanted)

    def read_arrow(self, fragment: Fragment, columns: Sequence[str], dictionary_columns: Sequence[str] = ()) -> pa.Table:
        """One Parquet fragment's `columns` as stored (not normalised), `dictionary_columns` as dictionaries."""
        if fragment.fmt != "parquet":
            raise ValueError("read_arrow reads Parquet fragments")
        wanted = self._check_columns(columns)
        table, _ = _scan_parquet(fragment, wanted, None, [c for c in dictionary_columns if c in wanted])
        return table

    def read(self, columns: Sequence[str]) -> dd.DataFrame:
        """Lazily read `columns` (plus nothing else), normalised to the contract's dtypes."""
        import dask.dataframe as dd  # only the CSV and shuffle paths use Dask DataFrames

        wanted = self._check_columns(columns)
        if self.fmt == "csv":
            frame = dd.read_csv(list(self.files), usecols=wanted, dtype=str, blocksize="64MB",
                                encoding="utf-8-sig")
            meta = _normalise(frame._meta, self.contract, wanted)
            return frame.map_partitions(_normalise, self.contract, wanted, meta=meta, enforce_metadata=False)
        fragments = [f for f in self.fragments() if f.rows] or self.fragments()[:1]
        meta = self.empty(wanted)
        return dd.from_map(_FragmentReader(self, tuple(wanted)), fragments, meta=meta,
                           enforce_metadata=False, label=f"read-{self.contract.name}")

    def empty(self, columns: Sequence[str]) -> pd.DataFrame:
        """A frame with no rows and the dtypes `read_fragment` gives (from the first file's schema)."""
        wanted = self._check_columns(columns)
        if self.fmt == "parquet":
            with fsspec.open(self.files[0], "rb") as handle:
                schema = pq.read_schema(handle)
            table = pa.schema([schema.field(c) for c in wanted]).empty_table()
        else:
            table = pa.schema([(c, pa.string()) for c in wanted]).empty_table()
        return normalise_table(table, self.contract, wanted)

    def max_from_statistics(self, column: str) -> object | None:
        """The largest value of `column` the Parquet statistics record (None if unknown)."""
        if self.fmt != "parquet":
            return None
        best = None
        for path in self.files:
            with fsspec.open(path, "rb") as handle:
                metadata = pq.ParquetFile(handle).metadata
            names = [metadata.schema.column(i).name for i in range(metadata.num_columns)]
            if column not in names:
                return None
            index = names.index(column)
            for group in range(metadata.num_row_groups):
                stats = metadata.row_group(group).column(index).statistics
                if metadata.row_group(group).num_rows == 0:
                    continue
                if stats is None or not stats.has_min_max:
                    return None
                best = stats.max if best is None else max(best, stats.max)
        return best


@dataclass(frozen=True)
class _FragmentReader:
    """A picklable `read_fragment` for `dd.from_map` (runs on the workers)."""

    source: TableSource
    columns: tuple[str, ...]

    def __call__(self, fragment: Fragment) -> pd.DataFrame:
        return self.source.read_fragment(fragment, self.columns)


def _local_or_url(path: str) -> str:
    return path.removeprefix("file://")


def _csv_rows_estimate(path: str) -> int:
    """Rows of a CSV file, guessed from its size (only used to size partitions)."""
    try:
        size = fsspec.core.url_to_fs(path)[0].size(fsspec.core.url_to_fs(path)[1])
    except (OSError, ValueError):
        return 1
    return max(1, int(size or 0) // 64)


def _scan_parquet(
    fragment: Fragment, columns: list[str], person_ids: np.ndarray | None, dictionary: Sequence[str] = ()
) -> tuple[pa.Table, bool]:
    """The fragment's columns, and whether the person_id filter was pushed into the scan."""
    if _is_url(fragment.path):
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        filesystem, inner = fsspec.core.url_to_fs(fragment.path)
        arrow_fs: pafs.FileSystem = PyFileSystem(FSSpecHandler(filesystem))
    else:
        arrow_fs, inner = pafs.LocalFileSystem(), _local_or_url(fragment.path)
    options = ds.ParquetReadOptions(dictionary_columns=list(dictionary)) if dictionary else None
    piece = ds.ParquetFileFormat(read_options=options).make_fragment(inner, filesystem=arrow_fs)
    if fragment.row_groups is not None:
        piece = piece.subset(row_group_ids=list(fragment.row_groups))
    row_filter = None
    if person_ids is not None and "person_id" in columns:
        stored = piece.physical_schema.field("person_id").type
        if pa.types.is_integer(stored):
            row_filter = ds.field("person_id").isin(pa.array(np.asarray(person_ids, dtype=np.int64)))
    return piece.to_table(columns=columns, filter=row_filter), row_filter is not None


def open_table(location: str, contract: TableContract, spec_key: str) -> TableSource:
    """Find a table's files and check its columns against the data contract."""
    files = _expand(location, spec_key)
    fmt = _format_of(files, spec_key)
    present = _columns_of(files[0], fmt)
    missing = [c for c in contract.required if c not in present]
    if missing:
        raise JdlUserError.single(
            f"{files[0]} ({contract.name} table, spec {spec_key})",
            f"missing required column(s) {', '.join(missing)}",
            allowed=f"the {contract.name} table needs: {', '.join(contract.required)}",
            hint=f"columns found: {', '.join(present)}",
        )
    return TableSource(contract, location, tuple(files), fmt, spec_key)


_STRING = pd.StringDtype()


def _to_pandas(column: pa.ChunkedArray) -> pd.Series:
    return column.to_pandas(types_mapper={pa.string(): _STRING, pa.large_string(): _STRING}.get)


def _strings(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as trimmed text (what pandas' astype("string").str.strip() gives)."""
    if pa.types.is_dictionary(column.type) and _is_text(column.type.value_type):
        encoded = _dictionary(column)
        return pa.chunked_array([pc.take(_trimmed(encoded.dictionary), encoded.indices)])
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.cast(column, pa.string())
    return pc.utf8_trim_whitespace(column.cast(pa.string()))


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _trimmed(values: pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(values.cast(pa.string()))


def _dictionary(column: pa.ChunkedArray) -> pa.DictionaryArray:
    """A dictionary-typed column as one array over one dictionary."""
    if column.num_chunks > 1:
        # a Parquet row group's batches share one dictionary: unifying is then nearly free, and the
        # indices are only concatenated (combine_chunks would remap every index)
        chunks = column.unify_dictionaries().chunks
        indices = pa.concat_arrays([chunk.indices for chunk in chunks])
        return pa.DictionaryArray.from_arrays(indices, chunks[0].dictionary)
    combined = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if len(combined) == 0 and not isinstance(combined, pa.DictionaryArray):
        return pa.DictionaryArray.from_arrays(pa.array([], pa.int32()), pa.array([], pa.string()))
    return combined


def _blank(values: pd.Series) -> np.ndarray:
    """Missing or empty-text cells."""
    missing = np.array(values.isna(), dtype=bool)
    if pd.api.types.is_string_dtype(values.dtype):
        text = values.astype("string").str.strip()
        missing |= np.array((text == "").fillna(True), dtype=bool)
    return missing


def _blank_arrow(column: pa.ChunkedArray) -> np.ndarray:
    missing = column.is_null().to_numpy(zero_copy_only=False)
    if _is_text(column.type):
        empty = pc.equal(pc.utf8_trim_whitespace(column), "").fill_null(True)
        missing |= empty.to_numpy(zero_copy_only=False)
    return np.asarray(missing, dtype=bool)


def _is_date_type(kind: pa.DataType) -> bool:
    return pa.types.is_date(kind) or pa.types.is_timestamp(kind)


def _as_dates(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Dates as datetime64[ns] and a mask of cells that held something that is not a date."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[ns]"), np.zeros(len(values), dtype=bool)
    if not pd.api.types.is_string_dtype(values.dtype):
        converted = pd.to_datetime(values, errors="coerce").astype("datetime64[ns]")
        return converted, np.array(converted.isna() & values.notna(), dtype=bool)
    text = values.astype("string").str.strip()
    converted = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")
    bad = np.array(converted.isna(), dtype=bool) & ~_blank(values)
    return converted, bad


class _Coded:
    """A column as dictionary indices (null: missing) into values (None: no value).

    Whatever depends on a cell's value alone is computed once per distinct value
    and spread to the rows with one lookup; a lookup that gives the same answer
    for every value is not spread at all.
    """

    def __init__(self, indices: pa.Array, values: list[str | None]) -> None:
        self.indices = indices
        self.values = values
        self._positions: np.ndarray | None = None

    @property
    def positions(self) -> np.ndarray:
        """The indices as numpy, missing ones pointing one past the values (computed once)."""
        if self._positions is None:
            if self.indices.null_count:
                filled = self.indices.fill_null(len(self.values))
            else:
                filled = self.indices
            self._positions = filled.to_numpy(zero_copy_only=False)
        return self._positions

    def per_row(self, per_value: list[object], missing: object, dtype: type) -> np.ndarray:
        """A value for each distinct value, spread to the rows (`missing` for missing cells)."""
        return np.array([*per_value, missing], dtype=dtype).take(self.positions)

    def any_row(self, per_value: list[bool], missing: bool) -> np.ndarray | None:
        """`per_row` of a yes/no per value, or None when no row can be a yes."""
        used = any(per_value) or (missing and self.indices.null_count > 0)
        return self.per_row(per_value, missing, bool) if used else None

    def text(self) -> pa.Array:
        return pc.take(pa.array(self.values, pa.string()), self.indices)

    def series(self, categorical: bool) -> pd.Series:
        if not categorical:
            return _to_pandas(pa.chunked_array([self.text()]))
        # categories in text order, so that sorting by codes sorts by text
        categories = sorted({v for v in self.values if v is not None})
        place = {c: i for i, c in enumerate(categories)}
        # the codes pandas keeps for so few categories (int8), looked up straight into that dtype
        kind = np.int8 if len(categories) < 127 else np.int32
        codes = self.per_row([place.get(v, -1) if v is not None else -1 for v in self.values], -1, kind)
        dtype = pd.CategoricalDtype(categories=categories, ordered=False)
        return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype, validate=False), copy=False)


def _canonical_codes(
    column: pa.ChunkedArray, allowed: tuple[str, ...], name: str
) -> tuple[_Coded, list[bool] | np.ndarray]:
    """Canonical spellings of a categorical column, and its blank cells (missing or empty text).

    Each distinct value is normalised and checked once, on the column's dictionary.
    The blank cells come per distinct value (missing indices are blank) when the
    column is text, else per row.
    """
    canonical = {a.lower(): a for a in allowed}
    if name == "sex":
        canonical.update({"male": "M", "female": "F"})
    if pa.types.is_dictionary(column.type) and _is_text(column.type.value_type):
        encoded = _dictionary(column)
    elif _is_text(column.type):
        encoded = pc.dictionary_encode(column.cast(pa.string())).combine_chunks()
    else:
        absent = _blank_arrow(column)
        try:
            text = pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _Coded(pa.nulls(len(column), pa.int32()), []), absent
        encoded = pc.dictionary_encode(text).combine_chunks()
    values = encoded.dictionary.cast(pa.string())
    uniques = values.to_pylist()
    mapped = [canonical.get(str(u).strip().lower().replace(" ", "_").replace("-", "_")) for u in uniques]
    coded = _Coded(encoded.indices, mapped)
    if pa.types.is_dictionary(column.type) or _is_text(column.type):
        blank_values = pc.equal(pc.utf8_trim_whitespace(values), "").fill_null(True).to_pylist()
        return coded, blank_values
    return coded, absent


class _Reasons:
    """The first reason each row breaks the contract (codes, turned into text once at the end)."""

    def __init__(self, rows: int) -> None:
        self.codes = np.zeros(rows, dtype=np.int16)
        self.texts: list[str] = []

    def flag(self, mask: np.ndarray | pd.Series | None, reason: str) -> None:
        if mask is None:  # no row can break this rule
            return
        hit = np.asarray(mask, dtype=bool) & (self.codes == 0)
        if hit.any():
            if reason not in self.texts:
                self.texts.append(reason)
            self.codes[hit] = self.texts.index(reason) + 1

    def column(self) -> pd.Series:
        if not self.texts:
            return _to_pandas(pa.chunked_array([pa.nulls(len(self.codes), pa.string())]))
        indices = pa.array(self.codes.astype(np.int32) - 1, mask=self.codes == 0)
        text = pc.take(pa.array(self.texts, pa.string()), indices)
        return _to_pandas(pa.chunked_array([text]))


def _nulls(column: pa.ChunkedArray) -> np.ndarray | None:
    """The missing cells of an Arrow column, or None when it has none."""
    return column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None


def _category_column(
    raw: pa.ChunkedArray, column: str, contract: TableContract, reasons: _Reasons, categorical: bool,
    *, series: bool = True,
) -> tuple[pd.Series | None, _Coded]:
    allowed = contract.categories[column]
    coded, absent = _canonical_codes(raw, allowed, column)
    if isinstance(absent, list):  # blank per distinct value: rows are looked up only if some can break a rule
        invalid = [value is None and not blank for value, blank in zip(coded.values, absent, strict=True)]
        reasons.flag(coded.any_row(invalid, False), f"{column} is not one of {', '.join(allowed)}")
        if column not in contract.nullable:
            reasons.flag(coded.any_row(absent, True), f"{column} is missing")
    else:
        has_no_value = coded.per_row([v is None for v in coded.values], True, bool)
        reasons.flag(has_no_value & ~absent, f"{column} is not one of {', '.join(allowed)}")
        if column not in contract.nullable:
            reasons.flag(absent, f"{column} is missing")
    return (coded.series(categorical) if series else None), coded


def normalise_table(
    table: pa.Table, contract: TableContract, columns: Sequence[str], *, categorical: bool = False
) -> pd.DataFrame:
    """Contract dtypes for one fragment, and a reason for every row that breaks the contract.

    Typed Parquet columns (integers, dates, text) are converted in Arrow; text
    that has to be parsed (CSV) goes through pandas' parsers. `categorical`:
    categorical columns, and text columns read as dictionaries, become pandas
    Categoricals (categories in text order) instead of strings: the same
    values, without a Python-visible string per row. The frame's columns are
    not consolidated into 2-D blocks (that would copy them all once more).
    """
    rows = table.num_rows
    out: dict[str, pd.Series] = {}
    coded_columns: dict[str, _Coded] = {}
    reasons = _Reasons(rows)
    for column in columns:
        raw = table.column(column)
        kind = raw.type
        if column == "person_id":
            if pa.types.is_integer(kind):
                reasons.flag(_nulls(raw), "person_id is missing or not a whole number")
                filled = raw.fill_null(-1) if raw.null_count else raw
                out[column] = pd.Series(pc.cast(filled, pa.int64()).to_numpy(), dtype="int64", copy=False)
            else:
                values = _to_pandas(raw)
                ids = values if pd.api.types.is_integer_dtype(values.dtype) else pd.to_numeric(
                    values, errors="coerce")
                reasons.flag(ids.isna().to_numpy(), "person_id is missing or not a whole number")
                out[column] = ids.fillna(-1).astype("int64").reset_index(drop=True)
        elif column in contract.dates:
            if _is_date_type(kind):
                stamps = pc.cast(raw, pa.timestamp("ns"))
                dates = pd.Series(stamps.to_numpy(), dtype="datetime64[ns]", copy=False)
                missing = _nulls(raw)
            else:
                dates, bad = _as_dates(_to_pandas(raw))
                dates = dates.reset_index(drop=True)
                reasons.flag(bad, f"{column} is not a date (allowed: YYYY-MM-DD)")
                missing = dates.isna().to_numpy()
            if column not in contract.nullable:
                reasons.flag(missing, f"{column} is missing")
            out[column] = dates
        elif column == "sentence_days":
            if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind):
                days = pd.Series(pc.cast(raw, pa.float64()).to_numpy(zero_copy_only=False), dtype="float64",
                                 copy=False)
            else:
                values = _to_pandas(raw)
                days = pd.to_numeric(values, errors="coerce").astype("float64").reset_index(drop=True)
                reasons.flag(days.isna().to_numpy() & ~_blank(values), "sentence_days is not a number")
            out[column] = days
        elif column in contract.categories:
            values, coded_columns[column] = _category_column(raw, column, contract, reasons, categorical)
            assert values is not None
            out[column] = values
        elif categorical and pa.types.is_dictionary(kind) and _is_text(kind.value_type):
            encoded = _dictionary(raw)
            out[column] = _Coded(encoded.indices, _trimmed(encoded.dictionary).to_pylist()).series(True)
        else:
            out[column] = _to_pandas(_strings(raw))
    if contract.name == "events" and {"offence_date", "outcome_date"} <= set(columns):
        reasons.flag(_before(out["outcome_date"], out["offence_date"]), "outcome_date is before offence_date")
    if contract.name == "events" and {"disposal", "release_date", "outcome_date"} <= set(columns):
        disposal = coded_columns["disposal"]
        custody = disposal.any_row([value == "custody" for value in disposal.values], False)
        if custody is not None:
            reasons.flag(custody & np.isnat(out["release_date"].to_numpy()), "custody without a release_date")
            reasons.flag(custody & _before(out["release_date"], out["outcome_date"]),
                         "release_date is before outcome_date")
    out[REJECT_COLUMN] = reasons.column()
    return pd.DataFrame(out, index=pd.RangeIndex(rows), copy=False)


def rejected_rows(table: pa.Table, contract: TableContract, columns: Sequence[str]) -> np.ndarray:
    """Whether each row breaks the contract in `columns`: `normalise_table`'s reject column is set.

    Typed Parquet columns are checked in Arrow, a distinct value at a time, without building
    the pandas frame; anything else (text to parse, rules across columns) goes through
    `normalise_table` itself.
    """
    rows = table.num_rows
    # the events' rules across columns are left to normalise_table
    checked_in_arrow = all(_checked_in_arrow(table.column(c).type, c, contract) for c in columns)
    if contract.name == "events" or not checked_in_arrow:
        return normalise_table(table, contract, columns)[REJECT_COLUMN].notna().to_numpy(dtype=bool)
    reasons = _Reasons(rows)
    for column in columns:
        raw = table.column(column)
        if column == "person_id" or (column in contract.dates and column not in contract.nullable):
            reasons.flag(_nulls(raw), column)
        elif column in contract.categories:
            _category_column(raw, column, contract, reasons, categorical=False, series=False)
    return reasons.codes != 0


def _checked_in_arrow(kind: pa.DataType, column: str, contract: TableContract) -> bool:
    """Whether `rejected_rows` can check this column in Arrow (it converts nothing that could fail)."""
    if column == "person_id":
        return pa.types.is_integer(kind)
    if column in contract.dates:
        return _is_date_type(kind)
    if column == "sentence_days":
        return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)
    return _is_text(kind) or (pa.types.is_dictionary(kind) and _is_text(kind.value_type))


def category_lookup(column: pa.ChunkedArray, contract: TableContract, name: str) -> tuple[np.ndarray, list[str | None]]:
    """A categorical column's canonical values (None: no value) and each row's position in them.

    Missing cells point one past the values.
    """
    coded, _ = _canonical_codes(column, contract.categories[name], name)
    return coded.positions, coded.values


def text_lookup(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str | None]]:
    """A dictionary text column's distinct values, trimmed as `normalise_table` trims them, and each
    row's position in them (missing cells point one past the values)."""
    encoded = _dictionary(column)
    coded = _Coded(encoded.indices, _trimmed(encoded.dictionary).to_pylist())
    return coded.positions, coded.values


def trimmed_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column as the trimmed text `normalise_table` gives a text column (in Arrow)."""
    return _strings(column)


def _before(left: pd.Series, right: pd.Series) -> np.ndarray:
    """left < right, False where either is missing (NaT compares False in numpy)."""
    return np.asarray(left.to_numpy(dtype="datetime64[ns]") < right.to_numpy(dtype="datetime64[ns]"), dtype=bool)


def _normalise(frame: pd.DataFrame, contract: TableContract, columns: list[str]) -> pd.DataFrame:
    """`normalise_table` for a pandas frame (a CSV partition), keeping its index."""
    table = pa.Table.from_pandas(frame[list(columns)], preserve_index=False)
    out = normalise_table(table, contract, columns)
    out.index = frame.index
    return out
