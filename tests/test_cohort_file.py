"""Reading cohort submissions: formats, columns, dates, rejects and privacy of reasons."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

from jdl.errors import JdlUserError
from jdl.sources.cohort_file import normalise_pnc_id, parse_cohort_date, read_cohort

TODAY = dt.date(2024, 6, 30)
HEADER = "forename,surname,date_of_birth,sex,pnc_id,intervention_start"


def write_csv(tmp_path: Path, text: str, name: str = "cohort.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def read(path: Path):
    return read_cohort(path, today=TODAY)


def one_row_csv(tmp_path: Path, **overrides: str) -> Path:
    values = {
        "forename": "Alan",
        "surname": "Turing",
        "date_of_birth": "23/06/1980",
        "sex": "M",
        "pnc_id": "2001/0012345Z",
        "intervention_start": "2017-03-01",
    }
    values.update(overrides)
    return write_csv(tmp_path, HEADER + "\n" + ",".join(values.values()) + "\n")


# -- the happy path


def test_usable_rows_have_the_contract_columns_and_types(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        "First Name,SURNAME,DOB,Gender,PNC,Start date,Strand\n"
        "Alan,Turing,23/06/1980,male,2001/12345z,2017-03-01,mentoring\n"
        "Ada,Lovelace,1985-12-10,F,,01/02/2018,\n",
    )
    cohort = read(path)
    rows = cohort.rows
    assert list(rows.columns) == [
        "row_number",
        "forename",
        "surname",
        "date_of_birth",
        "sex",
        "pnc_id",
        "intervention_start",
        "Strand",
    ]
    assert rows["row_number"].tolist() == [2, 3]
    assert rows["row_number"].dtype == "int64"
    assert rows["date_of_birth"].dtype == "datetime64[ns]"
    assert rows["intervention_start"].dtype == "datetime64[ns]"
    assert rows["date_of_birth"].tolist() == [
        pd.Timestamp("1980-06-23"),
        pd.Timestamp("1985-12-10"),
    ]
    assert rows["intervention_start"].tolist() == [
        pd.Timestamp("2017-03-01"),
        pd.Timestamp("2018-02-01"),
    ]
    assert rows["sex"].tolist() == ["M", "F"]
    assert rows["pnc_id"].dtype == "string"
    assert rows["pnc_id"].iloc[0] == "2001/0012345Z"
    assert rows["pnc_id"].isna().iloc[1]
    assert rows["Strand"].iloc[0] == "mentoring"
    assert rows["Strand"].isna().iloc[1]
    assert cohort.n_submitted == 2
    assert cohort.rejects.empty
    assert list(cohort.rejects.columns) == ["row_number", "reason"]
    assert cohort.path == path


def test_leading_zeros_and_text_in_extra_columns_are_kept(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + ",member_code\nA,B,1980-01-01,M,,2017-01-01,007\n")
    assert read(path).rows["member_code"].tolist() == ["007"]


@pytest.mark.parametrize(
    "header",
    [
        "Forename,Surname,Date of Birth,Sex,PNC ID,Intervention Start",
        " FORENAME , surname , date_of_birth , SEX , pnc_id , intervention_start ",
        "first_name,last_name,D.O.B.,gender,PNC Number,start_date",
        "forenames,family name,birth-date,Sex,PNCID,Programme start",
    ],
)
def test_header_aliases(tmp_path: Path, header: str) -> None:
    path = write_csv(tmp_path, header + "\nAlan,Turing,23/06/1980,M,2001/0012345Z,2017-03-01\n")
    rows = read(path).rows
    assert rows[["forename", "surname", "sex", "pnc_id"]].iloc[0].tolist() == [
        "Alan",
        "Turing",
        "M",
        "2001/0012345Z",
    ]


def test_pnc_column_is_optional(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path, "forename,surname,dob,sex,start date\nAlan,Turing,23/06/1980,M,2017-03-01\n"
    )
    cohort = read(path)
    assert cohort.rows["pnc_id"].isna().all()
    assert cohort.rows["pnc_id"].dtype == "string"
    assert any("no pnc_id column" in note for note in cohort.notes)


# -- dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1980-06-23", dt.date(1980, 6, 23)),
        ("1980-6-3", dt.date(1980, 6, 3)),
        ("23/06/1980", dt.date(1980, 6, 23)),
        ("3/6/1980", dt.date(1980, 6, 3)),
        ("03-06-1980", dt.date(1980, 6, 3)),
        (" 03/06/1980 ", dt.date(1980, 6, 3)),
        ("1980-06-03 00:00:00", dt.date(1980, 6, 3)),
        ("29/02/1980", dt.date(1980, 2, 29)),
    ],
)
def test_accepted_date_formats(text: str, expected: dt.date) -> None:
    assert parse_cohort_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "31/02/1980",  # impossible day
        "29/02/1981",  # not a leap year
        "1980-13-01",  # month 13
        "13/13/1980",
        "00/01/1980",
        "03/06/80",  # two-digit year is ambiguous
        "1980/06/03",
        "03/06-1980",  # mixed separators
        "03.06.1980",
        "June 3 1980",
        "19800603",
        "",
    ],
)
def test_rejected_date_formats(text: str) -> None:
    assert parse_cohort_date(text) is None


def test_day_first_is_used_for_slashed_dates(tmp_path: Path) -> None:
    rows = read(one_row_csv(tmp_path, date_of_birth="04/05/1980")).rows
    assert rows["date_of_birth"].iloc[0] == pd.Timestamp("1980-05-04")


def test_bad_date_of_birth_is_rejected_without_echoing_it(tmp_path: Path) -> None:
    cohort = read(one_row_csv(tmp_path, date_of_birth="31/13/1980"))
    assert cohort.rows.empty
    (reason,) = cohort.rejects["reason"].tolist()
    assert reason.startswith("date_of_birth is not a valid date; allowed: YYYY-MM-DD")
    assert "31/13/1980" not in reason


def test_bad_intervention_start_echoes_the_value(tmp_path: Path) -> None:
    cohort = read(one_row_csv(tmp_path, intervention_start="2017-02-30"))
    (reason,) = cohort.rejects["reason"].tolist()
    assert "intervention_start '2017-02-30' is not a valid date" in reason


def test_future_dates_are_rejected(tmp_path: Path) -> None:
    cohort = read(one_row_csv(tmp_path, date_of_birth="2025-01-01"))
    assert cohort.rejects["reason"].tolist() == ["date_of_birth is in the future"]
    cohort = read(one_row_csv(tmp_path, intervention_start="2024-07-01"))
    assert cohort.rejects["reason"].tolist() == ["intervention_start '2024-07-01' is in the future"]
    assert read(one_row_csv(tmp_path, intervention_start="2024-06-30")).rejects.empty


def test_people_under_ten_at_the_start_are_rejected(tmp_path: Path) -> None:
    too_young = read(
        one_row_csv(tmp_path, date_of_birth="2007-03-02", intervention_start="2017-03-01")
    )
    (reason,) = too_young.rejects["reason"].tolist()
    assert "under 10 at intervention_start" in reason
    assert "2007" not in reason
    tenth_birthday = read(
        one_row_csv(tmp_path, date_of_birth="2007-03-01", intervention_start="2017-03-01")
    )
    assert tenth_birthday.rejects.empty
    assert len(tenth_birthday.rows) == 1


def test_start_before_birth_is_rejected(tmp_path: Path) -> None:
    cohort = read(
        one_row_csv(tmp_path, date_of_birth="1990-01-01", intervention_start="1989-01-01")
    )
    assert cohort.rejects["reason"].tolist() == ["intervention_start is before date_of_birth"]


# -- other row-level problems


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("forename", "forename is blank"),
        ("surname", "surname is blank"),
        ("date_of_birth", "date_of_birth is blank"),
        ("sex", "sex is blank; allowed: M, F, Male, Female (any case)"),
        ("intervention_start", "intervention_start is blank"),
    ],
)
def test_blank_required_fields_are_rejected(tmp_path: Path, column: str, expected: str) -> None:
    cohort = read(one_row_csv(tmp_path, **{column: "  "}))
    assert cohort.rejects["reason"].tolist() == [expected]
    assert cohort.rejects["row_number"].tolist() == [2]
    assert cohort.n_submitted == 1


@pytest.mark.parametrize(("given", "expected"), [("m", "M"), ("FEMALE", "F"), (" Male ", "M")])
def test_sex_values_accepted(tmp_path: Path, given: str, expected: str) -> None:
    assert read(one_row_csv(tmp_path, sex=given)).rows["sex"].tolist() == [expected]


def test_unknown_sex_is_rejected_listing_allowed_values(tmp_path: Path) -> None:
    cohort = read(one_row_csv(tmp_path, sex="X"))
    assert cohort.rejects["reason"].tolist() == [
        "sex 'X' is not allowed; allowed: M, F, Male, Female (any case)"
    ]


def test_several_problems_in_one_row_are_all_reported(tmp_path: Path) -> None:
    cohort = read(one_row_csv(tmp_path, forename="", sex="Q", intervention_start="soon"))
    (reason,) = cohort.rejects["reason"].tolist()
    assert "forename is blank" in reason
    assert "sex 'Q'" in reason
    assert "intervention_start 'soon'" in reason


def test_exact_duplicates_keep_the_first(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        HEADER + "\n"
        "Alan,Turing,23/06/1980,M,2001/12345Z,2017-03-01\n"
        "Ada,Lovelace,1985-12-10,F,,2018-02-01\n"
        "alan, TURING ,1980-06-23,male,2001/0012345z,01/03/2017\n"
        "Alan,Turing,23/06/1980,M,2001/12345Z,2017-03-02\n"
        "Ada,Lovelace,10/12/1985,F,,01-02-2018\n",
    )
    cohort = read(path)
    assert cohort.rows["row_number"].tolist() == [2, 3, 5]
    assert cohort.rejects.to_dict("list") == {
        "row_number": [4, 6],
        "reason": ["duplicate of row 2", "duplicate of row 3"],
    }
    assert cohort.n_submitted == 5


def test_malformed_pnc_keeps_the_row_without_it(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        HEADER + "\n"
        "Alan,Turing,23/06/1980,M,not-a-pnc,2017-03-01\n"
        "Ada,Lovelace,1985-12-10,F, 98/ 1234567a ,2018-02-01\n",
    )
    cohort = read(path)
    assert cohort.rejects.empty
    assert cohort.rows["pnc_id"].isna().tolist() == [True, False]
    assert cohort.rows["pnc_id"].iloc[1] == "98/1234567A"
    (note,) = [n for n in cohort.notes if n.startswith("pnc_id")]
    assert "1 value(s)" in note and "row 2" in note


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2009/0123456a", "2009/0123456A"),
        (" 2009/123456A ", "2009/0123456A"),
        ("09/123456A", "09/0123456A"),
        ("2009/12345678A", None),
        ("3009/0123456A", None),
        ("2009-0123456A", None),
        ("20090123456A", None),
    ],
)
def test_pnc_normalisation(text: str, expected: str | None) -> None:
    assert normalise_pnc_id(text) == expected


def test_row_numbers_count_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path,
        HEADER + ",notes\n"
        'Alan,Turing,23/06/1980,M,,2017-03-01,"two\nlines"\n'
        "\n"
        ",,,,,,\n"
        "Ada,Lovelace,1985-12-10,X,,2018-02-01,\n"
        "\n",
    )
    cohort = read(path)
    assert cohort.rows["row_number"].tolist() == [2]
    assert cohort.rows["notes"].tolist() == ["two\nlines"]
    assert cohort.rejects["row_number"].tolist() == [5]
    assert cohort.n_submitted == 2
    assert any("2 completely blank row(s)" in note for note in cohort.notes)


def test_rows_with_more_values_than_columns_are_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + "\nAlan,Turing,23/06/1980,M,,2017-03-01,Bletchley,Park\n")
    (reason,) = read(path).rejects["reason"].tolist()
    assert "header has 6 columns" in reason


def test_reasons_never_contain_names_or_dates_of_birth(tmp_path: Path) -> None:
    people = [
        ("Zebedee", "Quixotic", "31/02/1981", "Q", "", "2017-03-01"),
        ("Wilhelmina", "Xanthopoulos", "1999-14-01", "F", "", "someday"),
        ("Ignatius", "Yellowhammer", "2012-05-05", "M", "", "2017-01-01"),
        ("Ophelia", "Vanderbilt", "2030-01-01", "F", "", "2017-01-01"),
        ("Ophelia", "Vanderbilt", "05/05/1970", "F", "", "2017-01-01"),
        ("Ophelia", "Vanderbilt", "05/05/1970", "F", "", "2017-01-01"),
        ("", "Umbridge", "", "", "", ""),
    ]
    text = HEADER + "\n" + "\n".join(",".join(p) for p in people) + "\n"
    cohort = read(write_csv(tmp_path, text))
    assert len(cohort.rejects) == 6
    reasons = " ".join(cohort.rejects["reason"].tolist())
    for forename, surname, born, *_ in people:
        for secret in (forename, surname, born):
            if secret:
                assert secret not in reasons
    for born in ("1981", "1999", "2012", "2030", "1970"):
        assert born not in reasons


# -- encodings and delimiters


def test_utf8_bom_is_handled(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path, HEADER + "\nZoë,Brontë,1980-01-01,F,,2017-01-01\n", encoding="utf-8-sig"
    )
    cohort = read(path)
    assert cohort.rows["forename"].tolist() == ["Zoë"]
    assert cohort.notes == ()


def test_cp1252_falls_back_with_a_note(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path, HEADER + "\nZoë,Brontë,1980-01-01,F,,2017-01-01\n", encoding="cp1252"
    )
    cohort = read(path)
    assert cohort.rows["surname"].tolist() == ["Brontë"]
    assert any("Windows-1252" in note for note in cohort.notes)


def test_semicolon_delimited_csv(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path, HEADER.replace(",", ";") + "\nAlan;Turing;23/06/1980;M;;2017-03-01\n"
    )
    assert read(path).rows["surname"].tolist() == ["Turing"]


# -- file-level problems


def test_missing_columns_message_lists_missing_found_and_aliases(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "Name,Surname,Birthday,Sex\nAlan,Turing,1980-01-01,M\n")
    with pytest.raises(JdlUserError) as caught:
        read(path)
    message = str(caught.value)
    assert caught.value.exit_status == 2
    assert str(path) in message
    assert "missing required column(s) forename, date_of_birth, intervention_start" in message
    assert "columns found: 'Name', 'Surname', 'Birthday', 'Sex'" in message
    assert "'dob'" in message and "'start date'" in message and "'pnc id'" in message


def test_two_columns_meaning_the_same_thing_is_an_error(tmp_path: Path) -> None:
    path = write_csv(tmp_path, HEADER + ",DOB\nAlan,Turing,1980-01-01,M,,2017-01-01,1980-01-01\n")
    with pytest.raises(JdlUserError, match="all mean date_of_birth"):
        read(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cohort.xls", b"x", "unknown cohort file format"),
        ("cohort.txt", b"x", "allowed: .csv, .xlsx"),
        ("cohort.csv", b"", "is empty"),
        ("cohort.csv", b"\n\n  \n", "is empty"),
        ("cohort.csv", (HEADER + "\n").encode(), "no data rows"),
        ("cohort.xlsx", b"not a zip file", "could not be read as an Excel workbook"),
    ],
)
def test_file_level_problems(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(JdlUserError, match=message) as caught:
        read(path)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JdlUserError, match="does not exist"):
        read_cohort(tmp_path / "nowhere.csv")


# -- Excel


def test_excel_first_sheet_with_typed_cells(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(
        ["Forename", "Surname", "Date of Birth", "Sex", "PNC ID", "Start date", "Sessions"]
    )
    sheet.append(
        ["Alan", "Turing", dt.datetime(1980, 6, 23), "M", "2001/0012345Z", dt.date(2017, 3, 1), 12]
    )
    sheet.append(["Ada", "Lovelace", "10/12/1985", "female", None, "2018-02-01", 3.0])
    sheet.append([None] * 7)
    # A "General"-formatted date cell holds the serial number: 1980-01-01 and 2017-03-01.
    sheet.append(["Grace", "Hopper", 29221, "F", None, 42795, 2.5])
    sheet.append(["Bad", "Date", "31/02/1980", "F", None, dt.datetime(2017, 3, 1), None])
    workbook.create_sheet("ignored").append(["nothing", "here"])
    path = tmp_path / "cohort.xlsx"
    workbook.save(path)

    cohort = read(path)
    rows = cohort.rows
    assert rows["row_number"].tolist() == [2, 3, 5]
    assert rows["date_of_birth"].tolist() == [
        pd.Timestamp("1980-06-23"),
        pd.Timestamp("1985-12-10"),
        pd.Timestamp("1980-01-01"),
    ]
    assert rows["intervention_start"].tolist() == [
        pd.Timestamp("2017-03-01"),
        pd.Timestamp("2018-02-01"),
        pd.Timestamp("2017-03-01"),
    ]
    assert rows["sex"].tolist() == ["M", "F", "F"]
    assert rows["Sessions"].tolist() == ["12", "3", "2.5"]
    assert cohort.rejects["row_number"].tolist() == [6]
    assert cohort.n_submitted == 4


def test_excel_header_below_title_rows_keeps_sheet_row_numbers(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append([])
    sheet.append([])
    sheet.append(HEADER.split(","))
    sheet.append(["Alan", "Turing", "23/06/1980", "M", "01/12345Z", "2017-03-01"])
    path = tmp_path / "cohort.xlsx"
    workbook.save(path)
    rows = read(path).rows
    assert rows["row_number"].tolist() == [4]
    assert rows["pnc_id"].tolist() == ["01/0012345Z"]
