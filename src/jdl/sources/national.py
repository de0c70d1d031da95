"""Reading the national records (people and events) lazily with Dask.

A location is a Parquet or CSV file, a folder of partitions, a glob, or an
fsspec URL. Columns are checked against the data contract before any work is
scheduled; values are normalised partition by partition, and rows that break
the contract are marked with a reason (never dropped silently) so the engine
can write them to the rejects file.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jdl.errors import JdlUserError

REJECT_COLUMN = "_reject_reason"

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
    with fsspec.open(first_file, "rt", encoding="utf-8-sig") as handle:
        header = handle.readline()
    return [c.strip() for c in header.rstrip("\r\n").split(",")]


@dataclass(frozen=True)
class TableSource:
    """A national table: where it is, its format and the files it is made of."""

    contract: TableContract
    location: str
    files: tuple[str, ...]
    fmt: str
    spec_key: str

    def read(self, columns: list[str]) -> dd.DataFrame:
        """Lazily read `columns` (plus nothing else), normalised to the contract's dtypes."""
        unknown = [c for c in columns if c not in self.contract.required]
        if unknown:
            raise ValueError(f"columns {unknown} are not in the {self.contract.name} contract")
        if self.fmt == "parquet":
            frame = dd.read_parquet(list(self.files), columns=columns)
        else:
            frame = dd.read_csv(list(self.files), usecols=columns, dtype=str, blocksize="64MB")
        meta = _normalise(frame._meta, self.contract, columns)
        return frame.map_partitions(_normalise, self.contract, columns, meta=meta, enforce_metadata=False)


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


def _blank(values: pd.Series) -> np.ndarray:
    """Missing or empty-text cells."""
    missing = np.array(values.isna(), dtype=bool)
    if pd.api.types.is_string_dtype(values.dtype):
        text = values.astype("string").str.strip()
        missing |= np.array((text == "").fillna(True), dtype=bool)
    return missing


def _as_dates(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Dates as datetime64[ns] and a mask of cells that held something that is not a date."""
    if isinstance(values.dtype, pd.ArrowDtype) and (
        pa.types.is_date(values.dtype.pyarrow_dtype) or pa.types.is_timestamp(values.dtype.pyarrow_dtype)
    ):
        # through Arrow: pandas' own date32 -> datetime64 conversion goes element by element
        as_timestamps = pc.cast(values.array.__arrow_array__(), pa.timestamp("ns"))
        converted = pd.Series(as_timestamps.to_numpy(), index=values.index, name=values.name)
        return converted, np.zeros(len(values), dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype("datetime64[ns]"), np.zeros(len(values), dtype=bool)
    if not pd.api.types.is_string_dtype(values.dtype):
        # datetime.date objects, as pandas reads Parquet date32 columns
        converted = pd.to_datetime(values, errors="coerce").astype("datetime64[ns]")
        return converted, np.array(converted.isna() & values.notna(), dtype=bool)
    text = values.astype("string").str.strip()
    converted = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")
    bad = np.array(converted.isna(), dtype=bool) & ~_blank(values)
    return converted, bad


def _as_category(values: pd.Series, allowed: tuple[str, ...], column: str) -> pd.Series:
    """Canonical spellings of a categorical column, normalising each distinct value once."""
    canonical = {a.lower(): a for a in allowed}
    if column == "sex":
        canonical.update({"male": "M", "female": "F"})
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array(
        [canonical.get(str(u).strip().lower().replace(" ", "_").replace("-", "_")) for u in uniques]
        + [None],
        dtype=object,
    )
    result = mapped[np.where(codes < 0, len(uniques), codes)]
    return pd.Series(result, index=values.index, dtype="string")


def _normalise(frame: pd.DataFrame, contract: TableContract, columns: list[str]) -> pd.DataFrame:
    """Contract dtypes for one partition, and a reason for every row that breaks the contract."""
    out = pd.DataFrame(index=frame.index)
    reasons = np.full(len(frame), None, dtype=object)

    def flag(mask: pd.Series | np.ndarray, reason: str) -> None:
        hit = np.asarray(mask, dtype=bool) & np.equal(reasons, None)
        reasons[hit] = reason

    for column in columns:
        raw = frame[column]
        if column == "person_id":
            ids = raw if pd.api.types.is_integer_dtype(raw.dtype) else pd.to_numeric(raw, errors="coerce")
            flag(ids.isna().to_numpy(), "person_id is missing or not a whole number")
            out[column] = ids.fillna(-1).astype("int64")
        elif column in contract.dates:
            dates, bad = _as_dates(raw)
            flag(bad, f"{column} is not a date (allowed: YYYY-MM-DD)")
            if column not in contract.nullable:
                flag(dates.isna().to_numpy(), f"{column} is missing")
            out[column] = dates
        elif column == "sentence_days":
            days = raw if pd.api.types.is_numeric_dtype(raw.dtype) else pd.to_numeric(raw, errors="coerce")
            flag(days.isna().to_numpy() & ~_blank(raw), "sentence_days is not a number")
            out[column] = days.astype("float64")
        elif column in contract.categories:
            allowed = contract.categories[column]
            text = _as_category(raw, allowed, column)
            absent = _blank(raw)
            flag(text.isna().to_numpy() & ~absent, f"{column} is not one of {', '.join(allowed)}")
            if column not in contract.nullable:
                flag(absent, f"{column} is missing")
            out[column] = text
        else:
            out[column] = raw.astype("string").str.strip()
    if contract.name == "events" and {"offence_date", "outcome_date"} <= set(columns):
        flag((out["outcome_date"] < out["offence_date"]).fillna(False).to_numpy(),
             "outcome_date is before offence_date")
    if contract.name == "events" and {"disposal", "release_date", "outcome_date"} <= set(columns):
        custody = (out["disposal"] == "custody").fillna(False).to_numpy()
        flag(custody & out["release_date"].isna().to_numpy(), "custody without a release_date")
        flag(custody & (out["release_date"] < out["outcome_date"]).fillna(False).to_numpy(),
             "release_date is before outcome_date")
    out[REJECT_COLUMN] = pd.array(reasons, dtype="string")
    return out
