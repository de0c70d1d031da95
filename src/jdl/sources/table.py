"""Table mode input: one row per unit (CSV, Parquet or Excel)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from jdl.errors import JdlUserError

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "excel"}


def read_unit_table(location: str, spec_key: str = "data.table") -> pd.DataFrame:
    """The whole table; a row_number column gives each row as a person sees it (header = row 1)."""
    path = Path(location)
    if "://" not in location and not path.exists():
        raise JdlUserError.single(f"spec {spec_key}", "no such file", value=location,
                                  hint="paths are relative to the folder you run jdl from")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise JdlUserError.single(f"spec {spec_key}", "unknown table format", value=path.suffix or location,
                                  allowed=", ".join(sorted(READERS)))
    try:
        if kind == "csv":
            frame = pd.read_csv(location)
        elif kind == "parquet":
            frame = pd.read_parquet(location)
        else:
            frame = pd.read_excel(location)
    except (OSError, ValueError) as error:
        raise JdlUserError.single(location, f"cannot be read as {kind}: {error}") from None
    if frame.empty:
        raise JdlUserError.single(location, "the table has no rows")
    frame.insert(0, "row_number", range(2, len(frame) + 2))
    return frame
