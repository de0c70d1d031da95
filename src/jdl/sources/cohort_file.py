"""Reading an organisation's cohort submission (CSV or Excel) into usable rows and rejects.

Everything is read as text first so that leading zeros in PNC IDs and unusual date
formats are preserved and judged explicitly, never guessed by a parser. Problems with
the file as a whole raise `JdlUserError`; problems with one row send that row to
`rejects` with a reason that names the column and what is allowed, but never echoes a
person's name or date of birth.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from jdl.errors import JdlUserError

ROW_NUMBER = "row_number"
REQUIRED_COLUMNS: tuple[str, ...] = (
    "forename",
    "surname",
    "date_of_birth",
    "sex",
    "intervention_start",
)
OPTIONAL_COLUMNS: tuple[str, ...] = ("pnc_id",)
DATE_COLUMNS: tuple[str, ...] = ("date_of_birth", "intervention_start")
IDENTITY_COLUMNS: tuple[str, ...] = (
    "forename",
    "surname",
    "date_of_birth",
    "sex",
    "pnc_id",
    "intervention_start",
)

# Header spellings accepted for each standard column, compared after `_normalise_header`.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "forename": ("forename", "forenames", "first name", "first names", "firstname", "given name"),
    "surname": ("surname", "last name", "lastname", "family name"),
    "date_of_birth": ("date of birth", "dob", "birth date", "birthdate"),
    "sex": ("sex", "gender"),
    "pnc_id": ("pnc id", "pnc", "pncid", "pnc number", "pnc no"),
    "intervention_start": (
        "intervention start",
        "intervention start date",
        "start date",
        "start",
        "programme start",
        "programme start date",
        "date started",
    ),
}

SUPPORTED_SUFFIXES: tuple[str, ...] = (".csv", ".xlsx")
SEX_VALUES: dict[str, str] = {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F"}
SEX_ALLOWED = "M, F, Male, Female (any case)"
DATE_FORMATS_ALLOWED = (
    "YYYY-MM-DD, DD/MM/YYYY, D/M/YYYY, DD-MM-YYYY or an Excel date (day first, 4-digit year)"
)
PNC_FORMAT = "YYYY/NNNNNNNA or YY/NNNNNNNA (year, serial number, check letter)"
MINIMUM_AGE_AT_START = 10
EARLIEST_YEAR = 1900
MAX_ROWS_LISTED_IN_NOTE = 10

_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_UK_DATE = re.compile(r"(\d{1,2})([/-])(\d{1,2})\2(\d{4})")
_PNC = re.compile(r"((?:19|20)?\d{2})/(\d{1,7})([A-Z])")
_HEADER_SEPARATORS = re.compile(r"[\s_\-]+")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class CohortFile:
    """A cohort submission split into usable rows and rejected rows.

    `rows` holds row_number (the spreadsheet row a person sees: header is row 1),
    forename, surname, date_of_birth, sex ("M"/"F"), pnc_id (<NA> when blank or not a
    PNC ID), intervention_start and every extra organisation column as text.
    `notes` records things that did not cost a row (e.g. malformed PNC IDs dropped,
    blank rows skipped, a non-UTF-8 encoding).
    """

    path: Path
    rows: pd.DataFrame
    rejects: pd.DataFrame
    n_submitted: int
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _RawTable:
    header: list[str]
    header_row_number: int
    records: list[tuple[int, list[str]]]  # (row_number, cells) for non-blank data rows
    notes: tuple[str, ...]


def read_cohort(path: str | Path, *, today: dt.date | None = None) -> CohortFile:
    """Read a cohort CSV/XLSX file; `today` (default: the current date) bounds future dates."""
    path = Path(path)
    today = today or dt.date.today()
    _check_file(path)
    reader = _read_csv_table if path.suffix.lower() == ".csv" else _read_xlsx_table
    raw = reader(path)
    mapping = _map_columns(path, raw.header)
    if not raw.records:
        raise JdlUserError.single(
            str(path),
            "the cohort file has a header but no data rows",
            hint="add one row per person supported, below the header row",
        )
    return _judge_rows(path, raw, mapping, today)


# ---------------------------------------------------------------------------
# File-level reading


def _check_file(path: Path) -> None:
    if not path.exists():
        raise JdlUserError.single(str(path), "the cohort file does not exist")
    if not path.is_file():
        raise JdlUserError.single(str(path), "the cohort path is not a file")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise JdlUserError.single(
            str(path),
            "unknown cohort file format",
            value=path.suffix or "(no extension)",
            allowed=", ".join(SUPPORTED_SUFFIXES),
            hint="save the spreadsheet as .xlsx or as CSV (UTF-8)",
        )
    if path.stat().st_size == 0:
        raise JdlUserError.single(str(path), "the cohort file is empty")


def _decode(path: Path, data: bytes) -> tuple[str, tuple[str, ...]]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), ()
    try:
        return data.decode("utf-8-sig"), ()
    except UnicodeDecodeError:
        # Spreadsheets saved as "CSV" on Windows are usually cp1252; undefined bytes are
        # replaced rather than crashing, and the user is told the encoding was assumed.
        note = f"{path.name} is not UTF-8; it was read as Windows-1252 (cp1252)"
        return data.decode("cp1252", errors="replace"), (note,)


def _guess_delimiter(first_line: str) -> str:
    if "," in first_line:
        return ","
    for candidate in (";", "\t", "|"):
        if candidate in first_line:
            return candidate
    return ","


def _read_csv_table(path: Path) -> _RawTable:
    text, notes = _decode(path, path.read_bytes())
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_guess_delimiter(first_line))
    try:
        rows = [(number, [cell for cell in record]) for number, record in enumerate(reader, 1)]
    except csv.Error as error:
        raise JdlUserError.single(
            str(path),
            f"the file could not be read as CSV (near line {reader.line_num})",
            value=str(error),
            hint="check for an unclosed quote",
        ) from error
    return _split_header(path, rows, notes)


def _excel_cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx_table(path: Path) -> _RawTable:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as error:
        raise JdlUserError.single(
            str(path),
            "the file could not be read as an Excel workbook",
            value=type(error).__name__,
            hint="open it in Excel and save it again as .xlsx",
        ) from error
    try:
        sheet = workbook.worksheets[0]
        rows: list[tuple[int, list[object]]] = [
            (number, list(values))
            for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1)
        ]
    finally:
        workbook.close()
    header_index = next(
        (i for i, (_, cells) in enumerate(rows) if any(_excel_cell_text(c).strip() for c in cells)),
        None,
    )
    if header_index is None:
        return _split_header(path, [], ())
    header_cells = [_excel_cell_text(c) for c in rows[header_index][1]]
    date_positions = _date_column_positions(header_cells)
    text_rows = [
        (
            number,
            [
                _excel_date_text(c) if i in date_positions else _excel_cell_text(c)
                for i, c in enumerate(cells)
            ],
        )
        for number, cells in rows
    ]
    return _split_header(path, text_rows, ())


def _date_column_positions(header: Sequence[str]) -> set[int]:
    date_aliases = {alias for column in DATE_COLUMNS for alias in COLUMN_ALIASES[column]}
    return {i for i, name in enumerate(header) if _normalise_header(name) in date_aliases}


def _excel_date_text(value: object) -> str:
    # A date column formatted as "General" holds the Excel serial number instead of a date.
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 <= value < 2958466:
        from openpyxl.utils.datetime import from_excel

        converted = from_excel(value)
        if isinstance(converted, dt.datetime):
            return converted.date().isoformat()
    return _excel_cell_text(value)


def _split_header(
    path: Path, rows: Sequence[tuple[int, list[str]]], notes: tuple[str, ...]
) -> _RawTable:
    non_blank = [(number, cells) for number, cells in rows if any(c.strip() for c in cells)]
    if not non_blank:
        raise JdlUserError.single(str(path), "the cohort file is empty (no header row)")
    header_row_number, header = non_blank[0]
    data = [(number, cells) for number, cells in rows if number > header_row_number]
    records = [(number, cells) for number, cells in data if any(c.strip() for c in cells)]
    n_blank = len(data) - len(records)
    trailing_blank = len(data) - max(
        (i + 1 for i, (_, cells) in enumerate(data) if any(c.strip() for c in cells)), default=0
    )
    inner_blank = n_blank - trailing_blank
    if inner_blank:
        notes = (*notes, f"skipped {inner_blank} completely blank row(s) between data rows")
    return _RawTable(header, header_row_number, records, notes)


def _normalise_header(name: str) -> str:
    cleaned = name.replace("\ufeff", "").replace(".", "").strip().lower()
    return _HEADER_SEPARATORS.sub(" ", cleaned).strip()


def _map_columns(path: Path, header: Sequence[str]) -> dict[int, str]:
    """Position in the file -> output column name (standard name or the original header)."""
    alias_to_column = {
        alias: column for column, aliases in COLUMN_ALIASES.items() for alias in aliases
    }
    mapping: dict[int, str] = {}
    sources: dict[str, list[str]] = {}
    for position, name in enumerate(header):
        standard = alias_to_column.get(_normalise_header(name))
        if standard is not None:
            sources.setdefault(standard, []).append(name)
            mapping[position] = standard
        elif name.strip():
            mapping[position] = name.strip()
    problems: list[str] = []
    for standard, names in sources.items():
        if len(names) > 1:
            problems.append(f"columns {names} all mean {standard}; keep only one of them")
    missing = [column for column in REQUIRED_COLUMNS if column not in sources]
    if missing:
        accepted = "; ".join(
            f"{column}: {', '.join(repr(a) for a in COLUMN_ALIASES[column])}"
            for column in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        )
        raise JdlUserError.single(
            str(path),
            f"the cohort file is missing required column(s) {', '.join(missing)}; "
            f"columns found: {', '.join(repr(h) for h in header if h.strip()) or 'none'}",
            allowed=f"header names (any case, spaces or underscores) - {accepted}",
        )
    clashes = [name for name in mapping.values() if name == ROW_NUMBER]
    if clashes:
        problems.append(f"a column is called {ROW_NUMBER!r}, which jdl adds itself; rename it")
    extras = [name for position, name in mapping.items() if name not in COLUMN_ALIASES]
    repeated = sorted({name for name in extras if extras.count(name) > 1})
    if repeated:
        problems.append(f"column name(s) {repeated} appear more than once")
    if problems:
        raise JdlUserError.single(str(path), "; ".join(problems))
    return mapping


# ---------------------------------------------------------------------------
# Row-level judging


def parse_cohort_date(text: str) -> dt.date | None:
    """A date in one of the accepted formats, or None when it is not a real date."""
    text = text.strip()
    iso = _ISO_DATE.fullmatch(text)
    try:
        if iso:
            return dt.date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        uk = _UK_DATE.fullmatch(text)
        if uk:
            return dt.date(int(uk.group(4)), int(uk.group(3)), int(uk.group(1)))
    except ValueError:
        return None
    return None


def normalise_pnc_id(text: str) -> str | None:
    """Canonical PNC ID (upper case, no spaces, 7-digit serial), or None if not a PNC ID."""
    compact = _WHITESPACE.sub("", text).upper()
    match = _PNC.fullmatch(compact)
    if match is None:
        return None
    year, serial, check = match.groups()
    return f"{year}/{int(serial):07d}{check}"


def _age_in_years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@dataclass
class _RowJudgement:
    values: dict[str, object]
    problems: list[str]
    malformed_pnc: str | None = None


def _cell(cells: Sequence[str], position: int) -> str:
    return cells[position] if position < len(cells) else ""


def _judge_date(column: str, text: str, today: dt.date, problems: list[str]) -> dt.date | None:
    echo = column != "date_of_birth"  # a date of birth is identifying: never repeat it
    if not text:
        problems.append(f"{column} is blank")
        return None
    parsed = parse_cohort_date(text)
    if parsed is None:
        shown = f" {text!r}" if echo else ""
        problems.append(f"{column}{shown} is not a valid date; allowed: {DATE_FORMATS_ALLOWED}")
        return None
    if parsed.year < EARLIEST_YEAR:
        shown = f" {text!r}" if echo else ""
        problems.append(f"{column}{shown} is before {EARLIEST_YEAR}")
        return None
    if parsed > today:
        shown = f" {text!r}" if echo else ""
        problems.append(f"{column}{shown} is in the future")
        return None
    return parsed


def _judge_row(cells: Sequence[str], positions: dict[str, int], today: dt.date) -> _RowJudgement:
    problems: list[str] = []
    values: dict[str, object] = {}
    for column in ("forename", "surname"):
        text = _WHITESPACE.sub(" ", _cell(cells, positions[column])).strip()
        if not text:
            problems.append(f"{column} is blank")
        values[column] = text
    for column in DATE_COLUMNS:
        text = _cell(cells, positions[column]).strip()
        values[column] = _judge_date(column, text, today, problems)
    sex_text = _cell(cells, positions["sex"]).strip()
    if not sex_text:
        problems.append(f"sex is blank; allowed: {SEX_ALLOWED}")
    elif sex_text.upper() not in SEX_VALUES:
        problems.append(f"sex {sex_text!r} is not allowed; allowed: {SEX_ALLOWED}")
    values["sex"] = SEX_VALUES.get(sex_text.upper())
    born, started = values["date_of_birth"], values["intervention_start"]
    if isinstance(born, dt.date) and isinstance(started, dt.date):
        if started < born:
            problems.append("intervention_start is before date_of_birth")
        elif _age_in_years(born, started) < MINIMUM_AGE_AT_START:
            problems.append(
                f"the person would be under {MINIMUM_AGE_AT_START} at intervention_start "
                "(below the age of criminal responsibility); check date_of_birth"
            )
    malformed = None
    pnc_text = _cell(cells, positions["pnc_id"]).strip() if "pnc_id" in positions else ""
    pnc = normalise_pnc_id(pnc_text) if pnc_text else None
    if pnc_text and pnc is None:
        malformed = pnc_text
    values["pnc_id"] = pnc
    return _RowJudgement(values, problems, malformed)


def _duplicate_key(values: dict[str, object]) -> tuple[object, ...]:
    return tuple(
        str(values[c]).casefold() if c in ("forename", "surname") else values[c]
        for c in IDENTITY_COLUMNS
    )


def _rows_listed(row_numbers: Sequence[int]) -> str:
    listed = ", ".join(str(n) for n in row_numbers[:MAX_ROWS_LISTED_IN_NOTE])
    more = len(row_numbers) - MAX_ROWS_LISTED_IN_NOTE
    return listed + (f" and {more} more" if more > 0 else "")


def _judge_rows(path: Path, raw: _RawTable, mapping: dict[int, str], today: dt.date) -> CohortFile:
    positions = {name: position for position, name in mapping.items()}
    extra_columns = [name for name in mapping.values() if name not in COLUMN_ALIASES]
    usable: list[dict[str, object]] = []
    rejects: list[dict[str, object]] = []
    first_row_for: dict[tuple[object, ...], int] = {}
    malformed_pnc_rows: list[int] = []
    width = len(raw.header)
    for row_number, cells in raw.records:
        judgement = _judge_row(cells, positions, today)
        overflow = [c for c in cells[width:] if c.strip()]
        if overflow:
            judgement.problems.append(
                f"row has {width + len(overflow)} or more values but the header has {width} "
                "columns; check for an unquoted comma"
            )
        if judgement.problems:
            rejects.append({ROW_NUMBER: row_number, "reason": "; ".join(judgement.problems)})
            continue
        key = _duplicate_key(judgement.values)
        if key in first_row_for:
            rejects.append(
                {ROW_NUMBER: row_number, "reason": f"duplicate of row {first_row_for[key]}"}
            )
            continue
        first_row_for[key] = row_number
        if judgement.malformed_pnc is not None:
            malformed_pnc_rows.append(row_number)
        row: dict[str, object] = {ROW_NUMBER: row_number, **judgement.values}
        for name in extra_columns:
            text = _cell(cells, positions[name])
            row[name] = text if text.strip() else None
        usable.append(row)
    notes = list(raw.notes)
    if malformed_pnc_rows:
        notes.append(
            f"pnc_id: {len(malformed_pnc_rows)} value(s) are not PNC IDs and were treated as "
            f"blank (row {_rows_listed(malformed_pnc_rows)}); expected {PNC_FORMAT}"
        )
    if "pnc_id" not in positions:
        notes.append("no pnc_id column: linkage will use names, date of birth and sex only")
    return CohortFile(
        path=path,
        rows=_rows_frame(usable, extra_columns),
        rejects=_rejects_frame(rejects),
        n_submitted=len(raw.records),
        notes=tuple(notes),
    )


def _rows_frame(usable: Iterable[dict[str, object]], extra_columns: list[str]) -> pd.DataFrame:
    columns = [ROW_NUMBER, *IDENTITY_COLUMNS, *extra_columns]
    frame = pd.DataFrame(list(usable), columns=columns)
    frame[ROW_NUMBER] = frame[ROW_NUMBER].astype("int64")
    for column in DATE_COLUMNS:
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    for column in ("forename", "surname", "sex", "pnc_id", *extra_columns):
        frame[column] = frame[column].astype("string")
    ordered = [
        ROW_NUMBER,
        "forename",
        "surname",
        "date_of_birth",
        "sex",
        "pnc_id",
        "intervention_start",
        *extra_columns,
    ]
    return frame[ordered].reset_index(drop=True)


def _rejects_frame(rejects: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame(rejects, columns=[ROW_NUMBER, "reason"])
    frame[ROW_NUMBER] = frame[ROW_NUMBER].astype("int64")
    frame["reason"] = frame["reason"].astype("string")
    return frame.sort_values(ROW_NUMBER, kind="stable").reset_index(drop=True)
