"""Out-of-core reading: the Arrow normaliser, Parquet layout detection, pushed-down filters, the cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jdl.sources import layout, national
from jdl.sources.cache import FeatureCache, cache_key, clear_cache, frame_from_arrow, frame_to_arrow
from jdl.sources.layout import Fragment, plan_blocks

# -- the normaliser, against the pandas implementation it replaced (kept here as the oracle)


def _blank(values: pd.Series) -> np.ndarray:
    missing = np.array(values.isna(), dtype=bool)
    if pd.api.types.is_string_dtype(values.dtype):
        text = values.astype("string").str.strip()
        missing |= np.array((text == "").fillna(True), dtype=bool)
    return missing


def _reference_normalise(frame: pd.DataFrame, contract: national.TableContract, columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    reasons = np.full(len(frame), None, dtype=object)

    def flag(mask: np.ndarray, reason: str) -> None:
        hit = np.asarray(mask, dtype=bool) & np.equal(reasons, None)
        reasons[hit] = reason

    for column in columns:
        raw = frame[column]
        if column == "person_id":
            ids = raw if pd.api.types.is_integer_dtype(raw.dtype) else pd.to_numeric(raw, errors="coerce")
            flag(ids.isna().to_numpy(), "person_id is missing or not a whole number")
            out[column] = ids.fillna(-1).astype("int64")
        elif column in contract.dates:
            text = raw.astype("string").str.strip()
            dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")
            flag(np.array(dates.isna(), dtype=bool) & ~_blank(raw), f"{column} is not a date (allowed: YYYY-MM-DD)")
            if column not in contract.nullable:
                flag(dates.isna().to_numpy(), f"{column} is missing")
            out[column] = dates
        elif column == "sentence_days":
            days = pd.to_numeric(raw, errors="coerce")
            flag(days.isna().to_numpy() & ~_blank(raw), "sentence_days is not a number")
            out[column] = days.astype("float64")
        elif column in contract.categories:
            allowed = contract.categories[column]
            canonical = {a.lower(): a for a in allowed}
            if column == "sex":
                canonical.update({"male": "M", "female": "F"})
            text = pd.Series(
                [None if pd.isna(v) else canonical.get(str(v).strip().lower().replace(" ", "_").replace("-", "_"))
                 for v in raw], index=raw.index, dtype="string")
            absent = _blank(raw)
            flag(text.isna().to_numpy() & ~absent, f"{column} is not one of {', '.join(allowed)}")
            if column not in contract.nullable:
                flag(absent, f"{column} is missing")
            out[column] = text
        else:
            out[column] = raw.astype("string").str.strip()
    if contract.name == "events":
        flag((out["outcome_date"] < out["offence_date"]).fillna(False).to_numpy(),
             "outcome_date is before offence_date")
        custody = (out["disposal"] == "custody").fillna(False).to_numpy()
        flag(custody & out["release_date"].isna().to_numpy(), "custody without a release_date")
        flag(custody & (out["release_date"] < out["outcome_date"]).fillna(False).to_numpy(),
             "release_date is before outcome_date")
    out[national.REJECT_COLUMN] = pd.array(reasons, dtype="string")
    return out


MESSY_EVENTS = pd.DataFrame(
    {
        "person_id": ["1", " 2", "x", None, "5", "6", "7", "8", "9"],
        "offence_date": ["2016-01-01", "2016-13-01", "", None, " 2017-02-03 ", "2017-01-01", "2017-01-01",
                         "2017-01-01", "2017-03-01"],
        "outcome_date": ["2016-02-01", "2016-02-01", "2016-02-01", "2016-02-01", "2017-01-01", "2017-02-01",
                         "2017-02-01", "2017-02-01", "2017-02-01"],
        "outcome_type": ["Court Conviction", "caution", "PND", "bogus", None, "court-conviction", " caution ", "",
                         "caution"],
        "offence_group": [" theft ", None, "", "x", "y", "z", "w", "v", "u"],
        "severity": ["indictable", "Either Way", "summary", "", None, "x", "summary", "summary", "summary"],
        "disposal": ["custody", "custody", "fine", "caution", "custody", "Custody", "pnd", "fine", "caution"],
        "sentence_days": ["10", "", "abc", None, "5.5", "1", "2", "3", None],
        "release_date": ["2016-03-01", None, "", None, "2016-01-01", "bad", None, None, None],
    },
    dtype="str",
)
MESSY_PEOPLE = pd.DataFrame(
    {
        "person_id": ["1", "2", "3", "4"],
        "pnc_id": [" 01/1A", None, "", "99/2B"],
        "forename": ["a ", None, "b", "  "],
        "surname": ["x", "y", None, "z"],
        "date_of_birth": ["1990-01-01", "", "1990-02-30", "1980-1-1"],
        "sex": ["male", "F", "x", None],
        "ethnicity": ["white", None, "Mixed", "martian"],
        "region": [" London", None, "Wales", "x"],
    },
    dtype="str",
)


@pytest.mark.parametrize(("frame", "contract"), [(MESSY_EVENTS, national.EVENTS), (MESSY_PEOPLE, national.PEOPLE)])
def test_text_input_normalises_exactly_as_the_pandas_reference(
    frame: pd.DataFrame, contract: national.TableContract
) -> None:
    columns = list(contract.required)
    expected = _reference_normalise(frame, contract, columns)
    got = national._normalise(frame, contract, columns)
    pd.testing.assert_frame_equal(got, expected)
    assert got[national.REJECT_COLUMN].notna().sum() >= 3  # the messy rows really are flagged


def test_typed_parquet_columns_normalise_as_their_text_does(tmp_path) -> None:  # type: ignore[no-untyped-def]
    typed = pa.table(
        {
            "person_id": pa.array([3, 1, 2], pa.int64()),
            "offence_date": pa.array([17000, 16900, None], pa.int32()).cast(pa.date32()),
            "outcome_date": pa.array([17050, 17000, 17200], pa.int32()).cast(pa.date32()),
            "outcome_type": ["caution", "court_conviction", "PND"],
            "offence_group": [" theft", None, "drugs"],
            "severity": ["summary", "indictable", "either_way"],
            "disposal": ["caution", "custody", "pnd"],
            "sentence_days": pa.array([None, 30, None], pa.int32()),
            "release_date": pa.array([None, 16990, None], pa.int32()).cast(pa.date32()),
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(typed, path)
    source = national.open_table(str(path), national.EVENTS, "events")
    got = source.read_fragment(source.fragments()[0], list(national.EVENTS.required))
    as_text = typed.to_pandas().astype("str").replace({"None": None, "nan": None, "NaT": None})
    expected = _reference_normalise(as_text, national.EVENTS, list(national.EVENTS.required))
    pd.testing.assert_frame_equal(got, expected)
    assert got[national.REJECT_COLUMN].tolist()[1:] == ["release_date is before outcome_date", "offence_date is missing"]


def test_person_filter_is_pushed_into_the_scan_and_matches_filtering_afterwards(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    ids = np.sort(rng.integers(1, 500, 3000))
    table = pa.table({
        "person_id": ids, "pnc_id": [None] * len(ids), "forename": ["a"] * len(ids), "surname": ["b"] * len(ids),
        "date_of_birth": pa.array(rng.integers(0, 9000, len(ids)).astype(np.int32)).cast(pa.date32()),
        "sex": rng.choice(["M", "F"], len(ids)), "ethnicity": ["White"] * len(ids), "region": ["Wales"] * len(ids),
    })
    path = tmp_path / "people.parquet"
    pq.write_table(table, path, row_group_size=500)
    source = national.open_table(str(path), national.PEOPLE, "people")
    fragment = source.fragments()[0]
    wanted = np.array([5, 77, 123, 499, 10_000])
    pushed = source.read_fragment(fragment, ["person_id", "date_of_birth", "sex"], person_ids=wanted)
    everything = source.read_fragment(fragment, ["person_id", "date_of_birth", "sex"])
    after = everything.loc[everything["person_id"].isin(wanted)].reset_index(drop=True)
    pd.testing.assert_frame_equal(pushed, after)
    assert 0 < len(pushed) < len(everything)


# -- layout detection


def _fragment(name: str, low: int | None, high: int | None, rows: int = 100) -> Fragment:
    return Fragment(name, "parquet", rows, None, low, high)


def test_matching_person_ranges_give_one_block_per_range_and_no_shuffle() -> None:
    people = [_fragment("p0", 1, 100), _fragment("p1", 101, 200), _fragment("p2", 201, 300)]
    events = [_fragment("e0", 3, 98, 400), _fragment("e1", 101, 199, 400), _fragment("e2", 205, 300, 400)]
    blocks = plan_blocks(people, events, target_rows=400, max_rows=1000)
    assert blocks is not None
    assert [(b.person_min, b.person_max) for b in blocks] == [(1, 100), (101, 200), (201, 300)]
    assert [[f.path for f in b.people + b.events] for b in blocks] == [["p0", "e0"], ["p1", "e1"], ["p2", "e2"]]
    packed = plan_blocks(people, events, target_rows=800, max_rows=1000)
    assert packed is not None and [len(b.events) for b in packed] == [2, 1]


def test_overlapping_ranges_merge_and_too_large_overlaps_mean_not_aligned() -> None:
    people = [_fragment("p0", 1, 300)]
    by_year = [_fragment(f"e{i}", 1, 300, 400) for i in range(3)]  # events cut by date: every range is everyone
    blocks = plan_blocks(people, by_year, target_rows=400, max_rows=2000)
    assert blocks is not None and len(blocks) == 1 and len(blocks[0].events) == 3
    assert plan_blocks(people, by_year, target_rows=400, max_rows=1000) is None
    assert plan_blocks(people, [_fragment("e", None, None)], target_rows=400, max_rows=1000) is None


def test_parquet_statistics_give_fragment_ranges_and_large_files_split_by_row_group(
    tmp_path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(pa.table({"person_id": np.arange(10, 1010, dtype=np.int64)}), path, row_group_size=100)
    (whole,) = layout.parquet_fragments(str(path))
    assert (whole.rows, whole.person_min, whole.person_max, whole.row_groups) == (1000, 10, 1009, None)
    monkeypatch.setattr(layout, "SPLIT_FILE_ROWS", 400)
    parts = layout.parquet_fragments(str(path))
    assert [p.row_groups for p in parts] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert [(p.person_min, p.person_max) for p in parts][:2] == [(10, 209), (210, 409)]


# -- the cache store


def test_cache_round_trip_is_exact_and_entries_are_atomic_and_bounded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame({
        "person_id": np.array([1, 2], dtype=np.int64),
        "index_date": pd.to_datetime(["2016-01-01", "2017-05-06"]).astype("datetime64[ns]"),
        "sex": pd.array(["M", None], dtype="string"),
        "rate": [np.nan, 0.25],
    })
    cache = FeatureCache(tmp_path)
    key = cache_key({"a": 1})
    assert key != cache_key({"a": 2})
    assert cache.get(key, ("pool",)) is None
    assert cache.put(key, {"pool": frame_to_arrow(frame)}, {"records_end": "2020-06-30"})
    entry = cache.get(key, ("pool",))
    assert entry is not None and entry.meta["records_end"] == "2020-06-30"
    pd.testing.assert_frame_equal(frame_from_arrow(entry.tables["pool"]), frame)
    assert not [p for p in cache.directory.iterdir() if p.name.startswith(".tmp")]
    (cache.directory / key / "pool.parquet").write_bytes(b"not parquet")
    assert cache.get(key, ("pool",)) is None  # a damaged entry is a miss, never an error
    small = FeatureCache(tmp_path, max_bytes=1)
    small.put(cache_key({"b": 1}), {"pool": frame_to_arrow(frame)}, {})
    small.put(cache_key({"b": 2}), {"pool": frame_to_arrow(frame)}, {})
    assert [p.name for p, _, _ in small.entries()] == [cache_key({"b": 2})]  # least recently used went
    assert clear_cache(tmp_path)["feature_entries"] == 1
    assert FeatureCache(tmp_path).entries() == []
