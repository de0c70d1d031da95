"""Employment and benefit spells: the data contract, the measures and covariates, the spec check.

Every answer here is worked out by hand from a few spells around a known index date.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jdl import measures as measures_stage
from jdl.cli import main
from jdl.durations import Duration
from jdl.engine import pool as pool_pass
from jdl.errors import JdlUserError
from jdl.sources import spells
from jdl.sources.national import REJECT_COLUMN

METHODOLOGY = Path(__file__).resolve().parents[1] / "configs" / "methodology" / "jdl-standard.yaml"


# ---------------------------------------------------------------- the data contract

BENEFITS_CSV = """person_id,benefit_type,start_date,end_date
1,out_of_work,2020-01-01,
2, Out-of-work ,2020-01-01,2020-02-01
,other,2020-01-01,
x3,other,2020-01-01,
4,housing,2020-01-01,
5,other,2020-13-01,
6,other,2020-02-01,2020-01-31
7,other,,2020-01-01
8,other,2020-02-01,2020-02-01
"""


def _benefits_csv(tmp_path: Path) -> spells.national.TableSource:
    path = tmp_path / "benefits.csv"
    path.write_text(BENEFITS_CSV)
    return spells.open_spell_table("benefits", str(path))


def test_rows_breaking_the_contract_are_rejected_with_a_reason(tmp_path: Path) -> None:
    frame = spells.read_spells(_benefits_csv(tmp_path))
    assert frame[REJECT_COLUMN].fillna("").tolist() == [
        "", "",
        "person_id is missing or not a whole number",
        "person_id is missing or not a whole number",
        "benefit_type is not one of out_of_work, other",
        "start_date is not a date (allowed: YYYY-MM-DD)",
        "end_date is before start_date",
        "start_date is missing",
        "",
    ]
    valid = spells.valid_spells(frame)
    assert valid["person_id"].tolist() == [1, 2, 8]
    assert valid["benefit_type"].tolist() == ["out_of_work", "out_of_work", "other"]  # spelling normalised
    assert valid["end_date"].isna().tolist() == [True, False, False]  # blank: ongoing

    rejects = spells.spell_rejects(frame, "benefits")
    assert rejects["person_id"].isna().sum() == 2  # unusable ids are shown blank, never as -1
    assert rejects["person_id"].dropna().tolist() == [4, 5, 6, 7]
    assert set(rejects["table"]) == {"benefits"}
    assert all(r.startswith("benefits table: ") for r in rejects["reason"])


def test_block_ranges_read_every_row_once_with_bad_ids_in_the_first(tmp_path: Path) -> None:
    source = _benefits_csv(tmp_path)
    ranges = spells.block_ranges([(1, 3), (5, 6), (8, 9)])
    assert ranges == [spells.PersonRange(None, 3, True), spells.PersonRange(4, 6), spells.PersonRange(7, None)]
    parts = [spells.read_spells(source, person_range=r) for r in ranges]
    assert [p["person_id"].tolist() for p in parts] == [[1, 2, -1, -1], [4, 5, 6], [7, 8]]


def test_parquet_ranges_and_id_lists_are_pushed_into_the_scan(tmp_path: Path) -> None:
    folder = tmp_path / "employment"
    folder.mkdir()
    table = pa.table({
        "person_id": pa.array([1, 2, None, 5, 9], pa.int64()),
        "start_date": pa.array([dt.date(2019, 1, 1)] * 5, pa.date32()),
        "end_date": pa.array([None, dt.date(2018, 1, 1), None, None, dt.date(2019, 2, 1)], pa.date32()),
    })
    pq.write_table(table.slice(0, 3), folder / "a.parquet")
    pq.write_table(table.slice(3), folder / "b.parquet")
    source = spells.open_spell_table("employment", str(folder))
    first = spells.read_spells(source, person_range=spells.PersonRange(None, 4, True))
    assert first["person_id"].tolist() == [1, 2, -1]
    assert first[REJECT_COLUMN].fillna("").tolist() == [
        "", "end_date is before start_date", "person_id is missing or not a whole number"]
    last = spells.read_spells(source, person_range=spells.PersonRange(5, None))
    assert last["person_id"].tolist() == [5, 9]
    chosen = spells.read_spells(source, person_ids=np.array([2, 9]))
    assert chosen["person_id"].tolist() == [2, 9]


def test_a_missing_column_or_file_names_the_file_and_the_column(tmp_path: Path) -> None:
    path = tmp_path / "employment.csv"
    path.write_text("person_id,start\n1,2020-01-01\n")
    with pytest.raises(JdlUserError) as caught:
        spells.open_spell_table("employment", str(path))
    message = str(caught.value)
    assert str(path) in message and "employment table" in message
    assert "missing required column(s) start_date, end_date" in message
    with pytest.raises(JdlUserError, match=r"data\.national_records\.benefits.*no such file or folder"):
        spells.open_spell_table("benefits", str(tmp_path / "nowhere.csv"))


# ---------------------------------------------------------------- measures and covariates

INDEX = pd.Timestamp("2020-01-10")  # follow-up: 2020-01-11 to 2021-01-10 (366 days: 2020 is a leap year)


def _spells(rows: list[tuple[int, str, str | None]], benefit_type: str | None = None) -> pd.DataFrame:
    frame = pd.DataFrame({
        "person_id": pd.array([r[0] for r in rows], dtype="int64"),
        "start_date": pd.to_datetime([r[1] for r in rows]),
        "end_date": pd.to_datetime([r[2] for r in rows]),
    })
    if benefit_type is not None:
        frame["benefit_type"] = pd.array([benefit_type] * len(rows), dtype="string")
    return frame


EMPLOYMENT_ROWS = [
    (1, "2019-03-01", "2020-01-10"),  # ends on the index date: covers it, but not the follow-up
    (1, "2021-01-10", None),  # ongoing, starting on the last day of the follow-up: one day
    (2, "2019-06-01", "2020-01-09"),  # ends the day before the index date
    (2, "2020-01-11", "2020-01-11"),  # starts the day after it: one day
    (3, "2020-02-01", "2020-03-31"),  # three overlapping spells: 1 Feb to 30 Apr, counted once
    (3, "2020-03-01", "2020-04-30"),
    (3, "2020-03-10", "2020-03-20"),
    (4, "2015-01-01", None),  # ongoing throughout
    (6, "2021-01-11", None),  # starts the day after the follow-up
]


def _index_table(people: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"person_id": pd.array(people, dtype="int64"),
                         "index_date": pd.to_datetime([INDEX] * len(people))})


def _features(covariates: list[tuple[str, Duration | None]], measures: list[str],
              employment: pd.DataFrame | None = None, benefits: pd.DataFrame | None = None) -> pd.DataFrame:
    tables = {name: frame for name, frame in (("employment", employment), ("benefits", benefits))
              if frame is not None}
    return measures_stage.compute_spell_features(
        _index_table([1, 2, 3, 4, 5, 6]), tables, covariates=covariates, measures=measures,
        follow_up=Duration(1, "y"),
    )


def _days(first: str, last: str) -> int:
    return (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1


def test_employment_measures_count_spells_overlapping_the_follow_up_once() -> None:
    out = _features([], ["employment_rate", "days_employed"], employment=_spells(EMPLOYMENT_ROWS))
    assert out["employment_rate"].tolist() == [1, 1, 1, 1, 0, 0]
    assert out["days_employed"].tolist() == [1, 1, _days("2020-02-01", "2020-04-30"),
                                             _days("2020-01-11", "2021-01-10"), 0, 0]
    assert _days("2020-02-01", "2020-04-30") == 90 and _days("2020-01-11", "2021-01-10") == 366


def test_employment_covariates_at_and_before_the_index_date() -> None:
    out = _features([("employed_at_index", None), ("days_employed_before_index", None),
                     ("days_employed_before_index", Duration(6, "m"))], [],
                    employment=_spells(EMPLOYMENT_ROWS))
    assert out.columns.tolist() == ["employed_at_index", "days_employed_before_index",
                                    "days_employed_before_index_6m"]
    assert out["employed_at_index"].tolist() == [1, 0, 0, 1, 0, 0]
    # the look-back year: 2019-01-10 to 2020-01-09; six months: 2019-07-10 to 2020-01-09
    assert out["days_employed_before_index"].tolist() == [
        _days("2019-03-01", "2020-01-09"), _days("2019-06-01", "2020-01-09"), 0,
        _days("2019-01-10", "2020-01-09"), 0, 0]
    assert out["days_employed_before_index_6m"].tolist() == [
        _days("2019-07-10", "2020-01-09"), _days("2019-07-10", "2020-01-09"), 0,
        _days("2019-07-10", "2020-01-09"), 0, 0]


def test_benefit_measures_count_out_of_work_benefits_only() -> None:
    out_of_work = _spells([
        (1, "2019-12-01", "2020-01-10"),  # covers the index date only
        (2, "2020-06-01", "2020-06-30"),
        (2, "2020-06-15", "2020-07-14"),  # overlaps the first: 1 Jun to 14 Jul
        (3, "2018-01-01", None),
    ], "out_of_work")
    other = _spells([(4, "2018-01-01", None), (5, "2020-03-01", "2020-03-31")], "other")
    benefits = pd.concat([out_of_work, other], ignore_index=True)
    out = _features([("on_benefit_at_index", None), ("days_on_out_of_work_benefit_before_index", None)],
                    ["benefit_rate", "days_on_out_of_work_benefit"], benefits=benefits)
    assert out["benefit_rate"].tolist() == [0, 1, 1, 0, 0, 0]
    assert out["days_on_out_of_work_benefit"].tolist() == [0, _days("2020-06-01", "2020-07-14"), 366, 0, 0, 0]
    assert out["on_benefit_at_index"].tolist() == [1, 0, 1, 0, 0, 0]
    assert out["days_on_out_of_work_benefit_before_index"].tolist() == [
        _days("2019-12-01", "2020-01-09"), 0, _days("2019-01-10", "2020-01-09"), 0, 0, 0]


def test_person_features_keep_the_spec_order_of_spell_and_offending_columns() -> None:
    definitions = pool_pass.FeatureDefinitions(
        period_from=dt.date(2019, 1, 1), period_to=dt.date(2020, 12, 31),
        covariates=(("employed_at_index", None), ("prior_proven_offences", None)),
        measures=("employment_rate", "reoffending_rate"),
        follow_up=Duration(1, "y"), waiting_period=Duration(6, "m"),
    )
    index_table = _index_table([1, 2]).assign(index_outcome_date=pd.to_datetime([INDEX, INDEX]))
    history = pd.DataFrame({
        "person_id": pd.array([1, 2], dtype="int64"),
        "offence_date": pd.to_datetime(["2018-01-01", "2020-03-01"]),
        "outcome_date": pd.to_datetime(["2018-02-01", "2020-04-01"]),
        "outcome_type": pd.array(["court_conviction"] * 2, dtype="string"),
        "offence_group": pd.array(["theft"] * 2, dtype="string"),
        "severity": pd.array(["summary"] * 2, dtype="string"),
        "disposal": pd.array(["fine"] * 2, dtype="string"),
        "sentence_days": [np.nan, np.nan],
        "release_date": pd.to_datetime([None, None]),
    })
    people = pd.DataFrame({"person_id": pd.array([1, 2], dtype="int64")})
    out = pool_pass.person_features(index_table, people, history, definitions,
                                    {"employment": _spells(EMPLOYMENT_ROWS[:4])})
    assert out.columns.tolist() == ["employed_at_index", "prior_proven_offences", "employment_rate",
                                    "reoffending_rate"]
    assert out.to_numpy().tolist() == [[1, 1, 1, 0], [0, 0, 1, 1]]


def test_spell_measures_are_computed_in_every_follow_up_window() -> None:
    definitions = pool_pass.FeatureDefinitions(
        period_from=dt.date(2019, 1, 1), period_to=dt.date(2020, 12, 31),
        covariates=(("employed_at_index", None),),
        measures=("employment_rate", "days_employed"),
        follow_up=Duration(1, "y"), waiting_period=Duration(6, "m"), extra_windows=(Duration(2, "y"),),
    )
    index_table = _index_table([1, 2, 3, 4, 5, 6]).assign(index_outcome_date=INDEX)
    history = pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in (
        ("person_id", "int64"), ("offence_date", "datetime64[ns]"), ("outcome_date", "datetime64[ns]"),
        ("outcome_type", "string"), ("offence_group", "string"), ("severity", "string"),
        ("disposal", "string"), ("sentence_days", "float64"), ("release_date", "datetime64[ns]"))})
    people = pd.DataFrame({"person_id": pd.array([1, 2, 3, 4, 5, 6], dtype="int64")})
    out = pool_pass.person_features(index_table, people, history, definitions,
                                    {"employment": _spells(EMPLOYMENT_ROWS)})
    assert out.columns.tolist() == ["employed_at_index", "employment_rate", "days_employed",
                                    "employment_rate_2y", "days_employed_2y"]
    # the second year (2021-01-11 to 2022-01-10, 365 days) adds person 1's and 4's ongoing
    # spells in full and person 6, whose job starts the day after the first year
    assert out["employment_rate"].tolist() == [1, 1, 1, 1, 0, 0]
    assert out["employment_rate_2y"].tolist() == [1, 1, 1, 1, 0, 1]
    assert out["days_employed_2y"].tolist() == [1 + 365, 1, 90, 366 + 365, 0, 365]


# ---------------------------------------------------------------- the spec check


def _spec(tmp_path: Path, national_extra: str, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(f"""spec_version: 1
id: employment-check
title: Employment check
organisation: Org
extends: {METHODOLOGY}
data:
  national_records:
    people: p
    events: e
{national_extra}  cohort: c.csv
cohort:
  period: {{from: 2016-01-01, to: 2018-12-31}}
{body}""")
    return path


def test_a_spell_measure_or_covariate_without_its_table_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = ("covariates: [age_at_index, sex, on_benefit_at_index]\n"
            "outcomes:\n  measures: [reoffending_rate, employment_rate]\n")
    assert main(["validate", str(_spec(tmp_path, "", body))]) == 2
    err = capsys.readouterr().err
    assert "covariates[2]" in err
    assert "covariate on_benefit_at_index needs the benefits table, and data.national_records.benefits" in err
    assert "measure employment_rate needs the employment table, and data.national_records.employment" in err

    given = "    employment: emp\n    benefits: ben\n"
    assert main(["validate", str(_spec(tmp_path, given, body))]) == 0
