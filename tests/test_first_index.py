"""The compiled pool index (jdl.cohort.first_index) against the three steps it replaces.

`first_index_events(events)` must be, frame for frame (values, dtypes, order),
`choose_pool_index(resolve_occasions(candidate_index_rows(events)))` with no
one excluded. The random events are dense in ties: occasions of several rows
(same person and outcome date) that tie on disposal, severity, sentence and
offence date, custodial rows with several, equal or missing release dates,
releases reaching into the period from occasions before it, missing dates
and offence groups, penalty notices, and persons out of order.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from jdl.cohort import (
    candidate_index_rows,
    choose_pool_index,
    first_index_events,
    resolve_occasions,
)
from jdl.engine.pool import pool_index

DISPOSALS = ("custody", "custody", "custody", "fine", "caution", "pnd", None)
SEVERITIES = ("indictable", "indictable", "summary", None)
GROUPS = ("theft", "burglary", "violence", "", None)
PERIOD = (dt.date(2016, 1, 1), dt.date(2016, 12, 31))


def random_events(seed: int, people: int = 50, rows: int = 900, in_order: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    person = rng.integers(1, people + 1, rows)
    if in_order:
        person = np.sort(person)
    # few outcome dates, so that a person's rows often share one (an occasion of several rows)
    outcome = pd.Timestamp("2015-10-03") + pd.to_timedelta(rng.integers(0, 10, rows) * 30, unit="D")
    offence = outcome - pd.to_timedelta(rng.choice([0, 0, 30, 61], rows), unit="D")
    disposal = rng.choice(np.array(DISPOSALS, dtype=object), rows)
    outcome_type = np.where(disposal == "pnd", "pnd", np.where(disposal == "caution", "caution", "court_conviction"))
    custody = disposal == "custody"
    # releases on the outcome dates' grid tie custodial index dates with other occasions' outcome dates;
    # 2015-10-03 + 90 days is 1 January 2016, the period's first day
    release = (outcome + pd.to_timedelta(rng.choice([0, 60, 90, 90, 120, 400], rows), unit="D")).where(
        custody & (rng.random(rows) > 0.1))
    frame = pd.DataFrame({
        "person_id": person.astype("int64"),
        "offence_date": pd.Series(offence).mask(rng.random(rows) < 0.05),
        "outcome_date": pd.Series(outcome).mask(rng.random(rows) < 0.03),
        "outcome_type": pd.array(outcome_type, dtype="string"),
        "offence_group": pd.array(rng.choice(np.array(GROUPS, dtype=object), rows), dtype="string"),
        "severity": pd.array(rng.choice(np.array(SEVERITIES, dtype=object), rows), dtype="string"),
        "disposal": pd.array(disposal, dtype="string"),
        "sentence_days": np.where(custody, rng.choice([90.0, 180.0, np.nan], rows), np.nan),
        "release_date": pd.Series(release),
    })
    for column in ("offence_date", "outcome_date", "release_date"):
        frame[column] = frame[column].astype("datetime64[ns]")
    return frame


def three_steps(events: pd.DataFrame) -> pd.DataFrame:
    occasions = resolve_occasions(candidate_index_rows(events, *PERIOD))
    return choose_pool_index(occasions, exclude_person_ids=pd.Series([], dtype="int64"),
                             period_from=PERIOD[0], period_to=PERIOD[1])


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("in_order", [True, False])
@pytest.mark.parametrize("as_categories", [False, True])
def test_first_index_events_equal_the_three_steps(seed: int, in_order: bool, as_categories: bool) -> None:
    events = random_events(seed, in_order=in_order)
    if as_categories:
        events = events.astype(dict.fromkeys(["outcome_type", "offence_group", "severity", "disposal"], "category"))
    expected = three_steps(events)
    computed = first_index_events(events, *PERIOD)
    assert computed is not None
    pd.testing.assert_frame_equal(computed, expected, check_exact=True)
    # the draws hold what the test is about: custodial indexes at a release, shared occasions
    assert (computed["index_date"] != computed["index_outcome_date"]).any()
    assert (computed["index_disposal"] == "custody").any() and (computed["index_disposal"] != "custody").any()


def test_lead_row_ties_keep_row_order_and_latest_release_wins() -> None:
    day = pd.Timestamp("2016-03-31")
    events = pd.DataFrame({
        "person_id": np.array([7, 7, 7, 7, 9], dtype="int64"),
        "offence_date": [day - pd.Timedelta(days=5)] * 4 + [pd.NaT],
        "outcome_date": [day, day, day, day + pd.Timedelta(days=60), day - pd.Timedelta(days=400)],
        "outcome_type": pd.array(["court_conviction"] * 5, dtype="string"),
        "offence_group": pd.array(["theft", "burglary", "burglary", "drugs", None], dtype="string"),
        "severity": pd.array(["summary", "summary", "summary", "indictable", "indictable"], dtype="string"),
        "disposal": pd.array(["custody", "custody", "fine", "fine", "custody"], dtype="string"),
        "sentence_days": [90.0, 90.0, np.nan, np.nan, 700.0],
        "release_date": [day + pd.Timedelta(days=30), day + pd.Timedelta(days=45), pd.NaT, pd.NaT,
                         day - pd.Timedelta(days=40)],
    }).astype({"offence_date": "datetime64[ns]", "release_date": "datetime64[ns]"})
    computed = first_index_events(events, *PERIOD)
    assert computed is not None
    pd.testing.assert_frame_equal(computed, three_steps(events), check_exact=True)
    # person 7: the occasion on 31 March is custodial, indexed at its latest release (15 May, before the
    # fine of 30 May); burglary < theft
    # on the full tie; person 9: released in the period from an occasion before it
    assert computed["person_id"].tolist() == [7, 9]
    assert computed["index_date"].tolist() == [day + pd.Timedelta(days=45), day - pd.Timedelta(days=40)]
    assert computed["index_offence_group"].tolist() == ["burglary", ""]


def test_no_index_event_gives_the_empty_table_of_the_three_steps() -> None:
    events = random_events(1)
    outside = events.assign(outcome_date=pd.Timestamp("2014-01-31"), release_date=pd.NaT)
    outside["release_date"] = outside["release_date"].astype("datetime64[ns]")
    assert first_index_events(outside, *PERIOD) is None
    pd.testing.assert_frame_equal(pool_index(outside, *PERIOD), three_steps(outside))
    assert len(pool_index(outside, *PERIOD)) == 0
    assert first_index_events(events.iloc[:0], *PERIOD) is None


@pytest.mark.parametrize("region_dtype", ["category", "string"])
def test_person_facts_by_position_equal_the_left_merge(region_dtype: str) -> None:
    from jdl.engine.pool import _with_person_facts

    first = pd.DataFrame({"person_id": np.array([2, 3, 5, 8, 13], dtype="int64"),
                          "index_date": pd.to_datetime(["2016-02-29", "2016-01-01", None, "2016-12-31", "2016-06-30"])})
    persons = pd.DataFrame({
        "person_id": np.array([1, 2, 5, 8, 9], dtype="int64"),  # 3 and 13 have no people row
        "date_of_birth": pd.to_datetime(["1990-01-31", "1980-02-29", None, "2000-12-31", "1970-06-01"]),
        "region": pd.Series(["London", "Wales", "London", None, "North East"], dtype=region_dtype),
    })
    for people in (persons, persons.iloc[:0]):
        expected = first[["person_id", "index_date"]].merge(
            people[["person_id", "date_of_birth", "region"]], on="person_id", how="left")
        pd.testing.assert_frame_equal(_with_person_facts(first, people), expected)
    assert _with_person_facts(first, persons)["region"].isna().tolist() == [False, True, False, True, True]


@pytest.mark.parametrize("case", ["in_order", "shuffled", "duplicates", "rejects"])
def test_people_rows_equal_the_drop_duplicates_sort(case: str) -> None:
    from jdl.engine.pool import PEOPLE_STATIC_COLUMNS, people_rows

    rng = np.random.default_rng(5)
    ids = np.arange(1, 41, dtype="int64")
    if case == "shuffled":
        ids = rng.permutation(ids)
    if case == "duplicates":
        ids = np.sort(np.concatenate([ids, ids[::7]]))
    people = pd.DataFrame({
        "person_id": ids,
        "date_of_birth": pd.Timestamp("1990-01-31") + pd.to_timedelta(np.arange(len(ids)), unit="D"),
        "sex": pd.Categorical(rng.choice(["F", "M"], len(ids))),
        "ethnicity": pd.Categorical(rng.choice(["W1", "A1"], len(ids))),
        "region": pd.Categorical(rng.choice(["London", "Wales"], len(ids))),
        "_reject_reason": pd.Series(np.where((np.arange(len(ids)) % 9 == 4) & (case == "rejects"),
                                             "bad date", None), dtype="string"),
    })
    valid = people.loc[people["_reject_reason"].isna(), PEOPLE_STATIC_COLUMNS]
    expected = valid.drop_duplicates("person_id").sort_values("person_id", kind="mergesort").reset_index(drop=True)
    pd.testing.assert_frame_equal(people_rows(people), expected)
    assert people_rows(people)["person_id"].is_unique


@pytest.mark.parametrize("seed", range(6))
def test_history_order_check_agrees_with_the_stable_sort(seed: int) -> None:
    from jdl.cohort import sort_key, stable_order
    from jdl.engine.pool import _in_history_order, _nanoseconds

    rng = np.random.default_rng(seed)
    events = random_events(seed, rows=60)
    sorted_events = events.iloc[stable_order([sort_key(events["outcome_date"]), sort_key(events["offence_date"]),
                                              events["person_id"].to_numpy()])].reset_index(drop=True)
    for frame in (events, sorted_events, sorted_events.iloc[::-1], sorted_events.iloc[rng.permutation(60)]):
        keys = [sort_key(frame["outcome_date"]), sort_key(frame["offence_date"]), frame["person_id"].to_numpy()]
        expected = bool((stable_order(keys) == np.arange(len(frame))).all())
        computed = _in_history_order(frame["person_id"].to_numpy(), _nanoseconds(frame["offence_date"]),
                                     _nanoseconds(frame["outcome_date"]))
        assert computed == expected
    assert _in_history_order(sorted_events["person_id"].to_numpy(), _nanoseconds(sorted_events["offence_date"]),
                             _nanoseconds(sorted_events["outcome_date"]))
