"""Typed Parquet fragments with every kind of contract break normalise exactly as their text does.

The Arrow-side normaliser checks each distinct value of a dictionary column once and spreads
the answer to the rows only when some row can break a rule; these cases make every rule fire,
in row groups whose dictionaries differ, and compare rows, dtypes and reasons with the pandas
reference (tests/test_scale_sources.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jdl.sources import national
from tests.test_scale_sources import _reference_normalise


def _days(values: list[int | None]) -> pa.Array:
    return pa.array(values, pa.int32()).cast(pa.date32())


MESSY_TYPED_EVENTS = pa.table({
    "person_id": pa.array([1, 2, None, 4, 5, 6, 7, 8, 9, 10, 11, 12], pa.int64()),
    "offence_date": _days([17000, None, 17000, 17000, 17000, 17000, 17000, 17100, 17000, 17100, 17000, 17000]),
    "outcome_date": _days([17010, 17010, 17010, None, 17010, 17010, 17010, 17050, 17010, 17050, 17010, 17010]),
    "outcome_type": ["Court Conviction", "caution", "PND", "bogus", None, "court-conviction", " caution ", "",
                     "caution", "pnd", "caution", "caution"],
    "offence_group": [" theft ", None, "", "x", "theft", "z", "w", "v", "u", " theft ", None, "x"],
    "severity": ["indictable", "Either Way", "summary", "", None, "summary", "summary", "summary", "summary",
                 "summary", "x", "either_way"],
    "disposal": ["custody", "custody", "fine", "caution", "custody", "Custody", " custody", " custody", None, "fine",
                 "fine", "CUSTODY"],
    "sentence_days": pa.array([10, None, 3, None, 5, 1, 2, 3, None, 4, None, 7], pa.int32()),
    "release_date": _days([17100, None, None, None, 17000, 17005, None, None, None, None, None, 17010]),
})
MESSY_TYPED_PEOPLE = pa.table({
    "person_id": pa.array([1, 2, None, 4, 5, 6], pa.int64()),
    "pnc_id": [" 01/1A", None, "", "99/2B", "x", "01/1A"],
    "forename": ["a ", None, "b", "  ", "c", "d"],
    "surname": ["x", "y", None, "z", "w", "v"],
    "date_of_birth": _days([7000, None, 7000, 7000, 7000, 7000]),
    "sex": ["male", "F", "x", None, " ", "m"],
    "ethnicity": ["white", None, "Mixed", "martian", "Asian", ""],
    "region": [" London", None, "Wales", "x", "Wales", "London"],
})


def _as_text(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    text = {}
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_integer_dtype(values.dtype) or pd.api.types.is_float_dtype(values.dtype):
            text[column] = [None if pd.isna(v) else str(int(v)) for v in values]
        else:
            text[column] = [None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in values]
    return pd.DataFrame(text, dtype="str")


def _as_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as the string dtype (what `categorical=False` gives)."""
    return frame.assign(**{c: frame[c].astype("string") for c in frame.columns
                           if isinstance(frame[c].dtype, pd.CategoricalDtype)})


@pytest.mark.parametrize("row_group_size", [None, 3])
@pytest.mark.parametrize(("table", "contract"), [(MESSY_TYPED_EVENTS, national.EVENTS),
                                                 (MESSY_TYPED_PEOPLE, national.PEOPLE)])
def test_typed_fragment_rejects_as_the_reference(tmp_path: Path, table: pa.Table, contract: national.TableContract,
                                                 row_group_size: int | None) -> None:
    path = tmp_path / f"{contract.name}.parquet"
    pq.write_table(table, path, row_group_size=row_group_size)
    source = national.open_table(str(path), contract, contract.name)
    columns = list(contract.required)
    expected = _reference_normalise(_as_text(table), contract, columns)
    (fragment,) = source.fragments()
    plain = source.read_fragment(fragment, columns)
    pd.testing.assert_frame_equal(plain, expected, check_exact=True)
    coded = source.read_fragment(fragment, columns, categorical=True)
    pd.testing.assert_frame_equal(_as_strings(coded), expected, check_exact=True)
    for column in coded.columns:
        if isinstance(coded[column].dtype, pd.CategoricalDtype):
            categories = coded[column].cat.categories.tolist()
            assert categories == sorted(categories)  # sorting by codes sorts by text
    assert expected[national.REJECT_COLUMN].notna().sum() >= 4


def test_every_rule_fires_on_the_messy_events(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(MESSY_TYPED_EVENTS, path, row_group_size=4)
    source = national.open_table(str(path), national.EVENTS, "events")
    got = source.read_fragment(source.fragments()[0], list(national.EVENTS.required), categorical=True)
    assert got[national.REJECT_COLUMN].astype(object).where(got[national.REJECT_COLUMN].notna(), None).tolist() == [
        None,
        "offence_date is missing",
        "person_id is missing or not a whole number",
        "outcome_date is missing",  # before its unknown outcome_type and blank severity: columns in order
        "outcome_type is missing",
        "release_date is before outcome_date",
        "custody without a release_date",
        "outcome_type is missing",
        "disposal is missing",
        "outcome_date is before offence_date",
        "severity is not one of indictable, either_way, summary",
        None,  # released on the day of the outcome
    ]
    assert got["disposal"].astype("string").tolist()[-1] == "custody"


def test_a_clean_fragment_has_no_reasons_and_unconsolidated_columns(tmp_path: Path) -> None:
    rows = 1000
    rng = np.random.default_rng(5)
    table = pa.table({
        "person_id": pa.array(np.arange(rows), pa.int64()),
        "offence_date": _days(rng.integers(16000, 17000, rows).tolist()),
        "outcome_date": _days([17000] * rows),
        "outcome_type": rng.choice(["caution", "court_conviction", "pnd"], rows),
        "offence_group": rng.choice(["theft", "drugs"], rows),
        "severity": rng.choice(["summary", "indictable"], rows),
        "disposal": rng.choice(["fine", "caution"], rows),
        "sentence_days": pa.nulls(rows, pa.int32()),
        "release_date": pa.nulls(rows, pa.date32()),
    })
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    source = national.open_table(str(path), national.EVENTS, "events")
    got = source.read_fragment(source.fragments()[0], list(national.EVENTS.required), categorical=True)
    assert got[national.REJECT_COLUMN].isna().all()
    assert got["offence_date"].tolist() == pd.to_datetime(table["offence_date"].to_pylist()).tolist()
    assert got._mgr.nblocks == len(got.columns)  # one block per column: nothing copied into 2-D blocks
