"""Linkage candidates read with names converted only for the selected rows: the same rows as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from jdl.engine import link_read
from jdl.engine import pool as pool_pass
from jdl.engine.records import PEOPLE_LINK_COLUMNS
from jdl.linkage import candidate_keys
from jdl.linkage.normalise import pnc_in_keys, pnc_match_keys, pnc_written_forms, sex_codes
from jdl.sources import national


def messy_people(path: Path, row_group_size: int | None = None) -> None:
    table = pa.table({
        "person_id": pa.array([1, 2, 3, 4, 5, 6, 7, None], pa.int64()),
        "pnc_id": [" 09/123456a ", "2009/0123456A", None, "10/77B", "10/77\u00a0B", "", "09/5C", "09/5C"],
        "forename": ["  Ann ", "Bob", "Cy", "Di", "Ed", "Flo", "Gus", "Hal"],
        "surname": ["Smith", None, "Brown", "Green", "White", "Black", " Grey ", "Stone"],
        "date_of_birth": pa.array([pd.Timestamp("1990-01-01").date(), pd.Timestamp("1985-05-05").date(), None,
                                   pd.Timestamp("1990-01-01").date(), pd.Timestamp("1970-02-02").date(),
                                   pd.Timestamp("1990-01-01").date(), pd.Timestamp("1990-01-01").date(),
                                   pd.Timestamp("1990-01-01").date()], pa.date32()),
        "sex": [" m", "F", "M", "x", "female", "F", "M", "M"],
        "ethnicity": ["White"] * 8,
        "region": ["London"] * 8,
    })
    pq.write_table(table, path, row_group_size=row_group_size)


@pytest.mark.parametrize("row_group_size", [None, 3])
def test_selected_read_gives_the_rows_of_the_whole_read(tmp_path: Path, row_group_size: int | None) -> None:
    # names are read as dictionaries (one per row group when there are several) and trimmed once per value
    messy_people(tmp_path / "people.parquet", row_group_size)
    source = national.open_table(str(tmp_path / "people.parquet"), national.PEOPLE, "people")
    cohort = pd.DataFrame({"pnc_id": ["09/123456A", None], "date_of_birth": pd.to_datetime(["2001-01-01", "1990-01-01"]),
                           "sex": ["M", "M"], "forename": ["a", "b"], "surname": ["c", "d"]})
    keys = candidate_keys(cohort)
    (fragment,) = source.fragments()
    whole = pool_pass.link_candidates(source.read_fragment(fragment, PEOPLE_LINK_COLUMNS), keys)
    selected = link_read.candidates_of(source, fragment, keys)
    pd.testing.assert_frame_equal(selected.reset_index(drop=True), whole.reset_index(drop=True), check_exact=True)
    # person 1 by PNC (two spellings of one key), 7 by block; 3 has no date of birth, 8 no person_id
    assert selected["person_id"].tolist() == [1, 2, 7]
    assert selected["forename"].tolist() == ["Ann", "Bob", "Gus"]
    assert selected["surname"].tolist() == ["Smith", pd.NA, "Grey"]
    assert selected["surname"].dtype == whole["surname"].dtype == "string"


def test_pnc_test_agrees_with_rewriting_every_value() -> None:
    values = pd.Series([" 09/123456a ", "2009/0123456A", None, "10/77B", "10/77\u00a0B", "", "1910/77 b", "10/077B",
                        "ı0/77B", "09/5C"], dtype="string")
    keys = frozenset({"09/123456A", "10/77B"})
    compact = pc.utf8_upper(pc.replace_substring_regex(pa.array(values.array), r"\s", ""))
    expected = pc.fill_null(pc.is_in(compact, value_set=pnc_written_forms(keys)), False).to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(pnc_in_keys(values, keys), expected)
    assert pnc_in_keys(values, keys).tolist()[:2] == [True, True]
    assert set(pnc_match_keys(values.loc[pnc_in_keys(values, keys)]).dropna()) <= keys


def test_sex_codes_normalise_each_spelling() -> None:
    values = pd.Series([" m", "F", None, "f ", "x", "M", "female"], dtype="string")
    assert sex_codes(values).tolist() == [1, 2, 0, 2, 0, 1, 0]
    assert sex_codes(pd.Series(["M", "F"], dtype=object)).tolist() == [1, 2]


def test_pnc_keys_agree_with_rewriting_every_value() -> None:
    values = pd.Series([" 09/123456a ", "2009/0123456A", None, "10/77B", "10/077B", "", "1910/77 b", "19/5C",
                        "2019/5C", "09/0C", "09/12345678A", "x", "20/1Z", "1920/001Z"], dtype="string")
    text = pc.utf8_upper(pc.replace_substring_regex(pa.array(values.array), r"\s", ""))
    valid = pc.fill_null(pc.match_substring_regex(text, r"^(?:19|20)?\d{2}/\d{1,7}[A-Z]$"), False)
    rewritten = pc.if_else(valid, pc.replace_substring_regex(text, r"^(?:19|20)?(\d{2})/0*(\d+)([A-Z])$",
                                                              r"\1/\2\3"), None)
    expected = pd.Series(rewritten.to_pylist(), dtype="string")
    pd.testing.assert_series_equal(pnc_match_keys(values), expected)
    assert pnc_match_keys(values).tolist()[:2] == ["09/123456A", "09/123456A"]


def test_pnc_keys_of_a_chunked_column() -> None:
    chunked = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([["2009/01A", "09/1A"], ["x", " 10/2b"]])))
    keys = pnc_match_keys(chunked)
    assert keys.isna().tolist() == [False, False, True, False]
    assert keys.dropna().tolist() == ["09/1A", "09/1A", "10/2B"]


def test_names_are_normalised_once_per_spelling() -> None:
    from jdl.linkage.normalise import normalise_name, normalise_names

    names = pd.Series(["O'Néil", None, "smith-jones", "O'Néil", "  ", "Zoë"], index=[5, 3, 9, 1, 2, 8], dtype="string")
    got = normalise_names(names)
    assert got.tolist() == ["ONEIL", "", "SMITHJONES", "ONEIL", "", "ZOE"]
    assert got.index.tolist() == [5, 3, 9, 1, 2, 8] and got.dtype == "string"
    assert got.tolist() == [normalise_name(None if pd.isna(v) else v) for v in names]


def test_compacting_test_agrees_with_the_regex_on_sliced_chunked_text() -> None:
    from jdl.linkage.normalise import needs_compacting

    rng = np.random.default_rng(11)
    alphabet = [*list("0123456789/ABCZ"), "a", " ", "\t", "\xa0", "é", "-", "ı", "\x00", "\u2003"]
    values = ["".join(rng.choice(alphabet, size=rng.integers(0, 6))) if rng.random() > 0.1 else None
              for _ in range(3000)]
    whole = pa.array(values, pa.string())
    for text in (whole, whole.slice(7, 2000), pa.chunked_array([whole.slice(0, 5), whole.slice(5, 0), whole.slice(5)]),
                 whole.cast(pa.large_string()).slice(3), pa.chunked_array([], pa.string())):
        expected = pc.fill_null(pc.match_substring_regex(text, r"[^0-9/A-Z]"), False).to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(needs_compacting(text), np.asarray(expected, dtype=bool))
    assert needs_compacting(pa.array(["09/1A", "09/1a", None, ""])).tolist() == [False, True, False, False]
    # values of digits, "/" and capitals only take the quick path; the characters between "9" and "A" do not
    assert not needs_compacting(pa.array(["09/1A", "2009/0012Z", None, ""])).any()
    for between in ":;<=>?@":
        assert needs_compacting(pa.array(["09/1A", f"09/1{between}", "10/2B"])).tolist() == [False, True, False]


def test_arrow_candidate_rows_are_the_normalised_frames(tmp_path: Path) -> None:
    # the Arrow-side choice (key columns as read) against the choice on the normalised frame

    rng = np.random.default_rng(4)
    rows = 4000
    births = rng.integers(7000, 7040, rows)
    table = pa.table({
        "person_id": pa.array([None if rng.random() < 0.02 else i for i in range(rows)], pa.int64()),
        "pnc_id": [rng.choice([" 09/12a", "2009/0012A", "10/5B", None, "", "x", "10/ 5b"]) for _ in range(rows)],
        "forename": rng.choice(["Ann", " Bob", None, "Zoë"], rows),
        "surname": rng.choice(["Smith", "O'Neil", ""], rows),
        "date_of_birth": pa.array([None if rng.random() < 0.02 else int(b) for b in births], pa.int32())
        .cast(pa.date32()),
        "sex": rng.choice(["M", "F", " m", "female", "x", "", None], rows),
        "ethnicity": ["White"] * rows,
        "region": ["London"] * rows,
    })
    pq.write_table(table, tmp_path / "people.parquet", row_group_size=1500)
    source = national.open_table(str(tmp_path / "people.parquet"), national.PEOPLE, "people")
    cohort = pd.DataFrame({"pnc_id": ["09/12A", None, "10/5B"],
                           "date_of_birth": pd.to_datetime(["1989-03-01", "1989-03-05", "2001-01-01"]),
                           "sex": ["M", "F", "F"], "forename": ["a", "b", "c"], "surname": ["c", "d", "e"]})
    keys = candidate_keys(cohort)
    (fragment,) = source.fragments()
    whole = pool_pass.link_candidates(source.read_fragment(fragment, PEOPLE_LINK_COLUMNS), keys)
    chosen = link_read.candidates_of(source, fragment, keys)
    pd.testing.assert_frame_equal(chosen.reset_index(drop=True), whole.reset_index(drop=True), check_exact=True)
    assert 100 < len(chosen) < rows / 2


def test_keys_from_arrow_are_the_keys_of_the_normalised_candidates(tmp_path: Path) -> None:
    from jdl.linkage import people_keys

    rng = np.random.default_rng(8)
    rows = 3000
    table = pa.table({
        "person_id": pa.array([None if rng.random() < 0.02 else i for i in range(rows)], pa.int64()),
        "pnc_id": [rng.choice([" 09/12a", "2009/0012A", "1909/12A", "10/5B", None, "", "x", "10/ 5b", "09/0B"])
                   for _ in range(rows)],
        "forename": rng.choice(["Ann", " Bob ", None, "Zoë", "", "O'Neil-Smith"], rows),
        "surname": rng.choice(["Smith", "O'Néil", "", None, "  "], rows),
        "date_of_birth": pa.array([None if rng.random() < 0.02 else int(b) for b in rng.integers(7000, 7030, rows)],
                                  pa.int32()).cast(pa.date32()),
        "sex": rng.choice(["M", "F", " m", "female", "x", "", None], rows),
        "ethnicity": ["White"] * rows,
        "region": ["London"] * rows,
    })
    pq.write_table(table, tmp_path / "people.parquet", row_group_size=1000)
    source = national.open_table(str(tmp_path / "people.parquet"), national.PEOPLE, "people")
    cohort = pd.DataFrame({"pnc_id": ["09/12A", None], "date_of_birth": pd.to_datetime(["1989-03-01", "1989-03-05"]),
                           "sex": ["M", "F"], "forename": ["a", "b"], "surname": ["c", "d"]})
    keys = candidate_keys(cohort)
    (fragment,) = source.fragments()
    expected = people_keys(link_read.candidates_of(source, fragment, keys))
    stored = source.read_arrow(fragment, link_read.PEOPLE_LINK_COLUMNS, [*link_read.NAME_COLUMNS, "sex"])
    assert link_read._keys_in_arrow(stored)  # the Arrow path is the one under test
    got = link_read.candidate_keys_of(source, fragment, keys)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert 50 < len(got) < rows / 2 and got["pnc_key"].notna().any() and (got["forename_key"] == "").any()


def test_pnc_keys_of_many_shapes_agree_with_the_regexes() -> None:
    # the century form is read from the bytes; every other shape goes through the regexes
    rng = np.random.default_rng(21)
    values: list[str | None] = []
    for _ in range(4000):
        century = rng.choice(["", "19", "20", "21", "2a", "18"])
        year = "".join(rng.choice(list("0123456789"), 2))
        serial = "".join(rng.choice(list("0123456789"), rng.integers(1, 9)))
        check = rng.choice(["A", "Z", "b", "1", "/", "é"])
        slash = rng.choice(["/", "/", "/", "-", "//"])
        value = f"{century}{year}{slash}{serial}{check}"
        values.append(None if rng.random() < 0.05 else value if rng.random() > 0.1 else f" {value.lower()} ")
    values += ["2009/1234567A", "2009/0234567A", "1999/1000000Z", "2009/1234567", "20091/234567A", "2009/123456AA"]
    series = pd.Series(values, dtype="string")
    text = pc.utf8_upper(pc.replace_substring_regex(pa.array(series.array), r"\s", ""))
    valid = pc.fill_null(pc.match_substring_regex(text, r"^(?:19|20)?\d{2}/\d{1,7}[A-Z]$"), False)
    rewritten = pc.if_else(valid, pc.replace_substring_regex(text, r"^(?:19|20)?(\d{2})/0*(\d+)([A-Z])$",
                                                              r"\1/\2\3"), None)
    expected = pd.Series(rewritten.to_pylist(), dtype="string")
    got = pnc_match_keys(series)
    pd.testing.assert_series_equal(got, expected)
    assert got.tolist()[-6:-3] == ["09/1234567A", "09/234567A", "99/1000000Z"]
    assert got.iloc[-3:].isna().all()
    assert got.notna().sum() > 500


def test_a_fragment_without_candidates_gives_empty_keys_of_the_same_columns(tmp_path: Path) -> None:
    from jdl.linkage import people_keys

    messy_people(tmp_path / "people.parquet")
    source = national.open_table(str(tmp_path / "people.parquet"), national.PEOPLE, "people")
    cohort = pd.DataFrame({"pnc_id": ["77/7Z"], "date_of_birth": pd.to_datetime(["2001-01-01"]), "sex": ["F"],
                           "forename": ["a"], "surname": ["b"]})
    (fragment,) = source.fragments()
    got = link_read.candidate_keys_of(source, fragment, candidate_keys(cohort))
    expected = people_keys(source.empty(PEOPLE_LINK_COLUMNS))
    assert got.empty and list(got.columns) == list(expected.columns)
