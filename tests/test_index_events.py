import datetime as dt

import pandas as pd

from jdl.cohort import (
    candidate_index_rows,
    choose_pool_index,
    choose_treatment_index,
    resolve_occasions,
)
from jdl.durations import Duration


def events(rows: list[tuple]) -> pd.DataFrame:
    columns = ["person_id", "offence_date", "outcome_date", "outcome_type", "offence_group", "severity",
               "disposal", "sentence_days", "release_date"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("offence_date", "outcome_date", "release_date"):
        frame[column] = pd.to_datetime(frame[column])
    frame["sentence_days"] = frame["sentence_days"].astype("float64")
    return frame


SAMPLE = events([
    # person 1: fine in period, later custody released in period
    (1, "2015-11-01", "2016-03-01", "court_conviction", "theft", "summary", "fine", None, None),
    (1, "2016-05-01", "2016-09-01", "court_conviction", "burglary", "indictable", "custody", 180, "2016-12-01"),
    # person 2: same occasion has a custodial and a non-custodial sentence: custody wins, index at release
    (2, "2016-01-10", "2016-06-01", "court_conviction", "motoring", "summary", "fine", None, None),
    (2, "2016-01-11", "2016-06-01", "court_conviction", "robbery", "indictable", "custody", 400, "2016-12-20"),
    # person 3: penalty notice only in period -> no index event; caution earlier than period
    (3, "2016-02-01", "2016-02-01", "pnd", "public_order", "summary", "pnd", None, None),
    (3, "2015-01-01", "2015-01-05", "caution", "theft", "summary", "caution", None, None),
    # person 4: convicted before the period, released inside it
    (4, "2015-03-01", "2015-06-01", "court_conviction", "violence", "either_way", "custody", 365, "2016-02-01"),
    # person 5: custody released after the period
    (5, "2018-06-01", "2018-10-01", "court_conviction", "drugs", "either_way", "custody", 400, "2019-04-01"),
])


def occasions() -> pd.DataFrame:
    return resolve_occasions(candidate_index_rows(SAMPLE, dt.date(2016, 1, 1), dt.date(2018, 12, 31)))


def test_occasions_follow_the_index_rules() -> None:
    got = occasions().set_index(["person_id", "index_date"])
    expected_keys = {
        (1, pd.Timestamp("2016-03-01")),
        (1, pd.Timestamp("2016-12-01")),
        (2, pd.Timestamp("2016-12-20")),
        (4, pd.Timestamp("2016-02-01")),
        (5, pd.Timestamp("2019-04-01")),
    }
    assert set(got.index) == expected_keys
    person2 = got.loc[(2, pd.Timestamp("2016-12-20"))]
    assert person2["index_disposal"] == "custody"
    assert person2["index_offence_group"] == "robbery"
    assert person2["index_outcome_date"] == pd.Timestamp("2016-06-01")
    assert got.loc[(1, pd.Timestamp("2016-03-01")), "index_disposal"] == "fine"


def test_partitioned_candidates_resolve_like_the_whole() -> None:
    period = (dt.date(2016, 1, 1), dt.date(2018, 12, 31))
    halves = [SAMPLE.iloc[[0, 2, 4, 6]], SAMPLE.iloc[[1, 3, 5, 7]]]
    pieces = pd.concat([candidate_index_rows(h, *period) for h in halves])
    pd.testing.assert_frame_equal(resolve_occasions(pieces), occasions())


def test_pool_takes_first_event_in_period_and_excludes_participants() -> None:
    pool = choose_pool_index(occasions(), exclude_person_ids=pd.Series([2]),
                             period_from=dt.date(2016, 1, 1), period_to=dt.date(2018, 12, 31))
    assert list(pool["person_id"]) == [1, 4]
    assert list(pool["index_date"]) == [pd.Timestamp("2016-03-01"), pd.Timestamp("2016-02-01")]


def test_treatment_index_is_first_after_start_within_window() -> None:
    linked = pd.DataFrame({
        "row_number": [2, 3, 4],
        "person_id": [1, 2, 5],
        "intervention_start": pd.to_datetime(["2016-07-01", "2016-07-01", "2018-11-01"]),
    })
    chosen = choose_treatment_index(linked, occasions(), rule_name="first_index_after_intervention_start",
                                    window=Duration(1, "y"), period_from=dt.date(2016, 1, 1),
                                    period_to=dt.date(2018, 12, 31))
    assert list(chosen.chosen["row_number"]) == [2, 3]
    assert list(chosen.chosen["index_date"]) == [pd.Timestamp("2016-12-01"), pd.Timestamp("2016-12-20")]
    # person 5's release falls after the period: no index event, with a reason
    assert list(chosen.not_found["row_number"]) == [4]
    assert "no index event" in chosen.not_found["reason"].iloc[0]
