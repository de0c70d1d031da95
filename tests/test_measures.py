import numpy as np
import pandas as pd
import pytest

from jdl.durations import Duration
from jdl.measures import CovariateContext, compute_covariates, compute_outcomes


def history(rows: list[tuple]) -> pd.DataFrame:
    columns = ["person_id", "offence_date", "outcome_date", "outcome_type", "offence_group", "severity",
               "disposal", "sentence_days", "release_date"]
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("offence_date", "outcome_date", "release_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


INDEX = pd.DataFrame({
    "person_id": [1, 2],
    "index_date": pd.to_datetime(["2017-01-10", "2017-03-01"]),
    "index_outcome_date": pd.to_datetime(["2017-01-10", "2016-09-01"]),
    "index_offence_group": ["theft", "burglary"],
    "index_severity": ["summary", "indictable"],
    "index_disposal": ["community", "custody"],
    "index_sentence_days": [0.0, 360.0],
})

HISTORY = history([
    # person 1: two earlier sanction occasions (one custodial), the index, then reoffences
    (1, "2010-05-01", "2010-06-01", "caution", "theft", "summary", "caution", None, None),
    (1, "2013-01-01", "2013-02-01", "court_conviction", "burglary", "indictable", "custody", 100, "2013-03-20"),
    (1, "2013-01-02", "2013-02-01", "court_conviction", "theft", "summary", "fine", None, None),
    (1, "2016-12-01", "2017-01-10", "court_conviction", "theft", "summary", "community", None, None),
    (1, "2017-01-10", "2017-02-01", "court_conviction", "theft", "either_way", "fine", None, None),   # same day as index: excluded
    (1, "2017-03-01", "2017-05-01", "court_conviction", "violence", "either_way", "custody", 90, "2017-06-15"),
    (1, "2017-03-01", "2017-05-01", "court_conviction", "theft", "summary", "custody", 30, "2017-05-16"),
    (1, "2018-01-10", "2018-07-10", "court_conviction", "theft", "summary", "fine", None, None),      # last day, proven on last day
    (1, "2018-01-11", "2018-02-01", "court_conviction", "theft", "summary", "fine", None, None),      # after follow-up
    # person 2: custody index (convicted 2016-09-01, released 2017-03-01); offence proven too late
    (2, "2016-06-01", "2016-09-01", "court_conviction", "burglary", "indictable", "custody", 360, "2017-03-01"),
    (2, "2017-04-01", "2018-09-02", "court_conviction", "drugs", "either_way", "fine", None, None),   # proven after wait
    (2, "2017-05-01", "2017-06-01", "caution", "drugs", "summary", "caution", None, None),
])

PEOPLE = pd.DataFrame({
    "person_id": [1, 2],
    "date_of_birth": pd.to_datetime(["1990-01-10", "1980-06-01"]),
    "sex": ["M", "F"],
    "ethnicity": ["White", "Black"],
    "region": ["London", "Wales"],
})


def test_outcomes_follow_the_definition() -> None:
    outcomes, columns = compute_outcomes(
        INDEX, HISTORY,
        measure_names=["reoffending_rate", "reoffending_frequency", "days_to_first_reoffence",
                       "custody_rate", "custody_frequency", "first_reoffence_severity"],
        follow_up=Duration(1, "y"), waiting_period=Duration(6, "m"),
    )
    assert [c.name for c in columns] == [
        "reoffending_rate", "reoffending_frequency", "days_to_first_reoffence", "custody_rate",
        "custody_frequency", "first_reoffence_indictable", "first_reoffence_either_way", "first_reoffence_summary",
    ]
    person1, person2 = outcomes.iloc[0], outcomes.iloc[1]
    assert person1["reoffending_rate"] == 1.0
    assert person1["reoffending_frequency"] == 3.0  # two on 2017-03-01 and one on the last day
    assert person1["days_to_first_reoffence"] == (pd.Timestamp("2017-03-01") - pd.Timestamp("2017-01-10")).days
    assert person1["custody_rate"] == 1.0
    assert person1["custody_frequency"] == 1.0  # one custodial occasion for two offences
    assert person1["first_reoffence_either_way"] == 1.0  # the more serious of the two first offences
    assert person1["first_reoffence_summary"] == 0.0
    assert person2["reoffending_rate"] == 1.0
    assert person2["reoffending_frequency"] == 1.0  # the drugs conviction was proven too late
    assert person2["days_to_first_reoffence"] == 61
    assert person2["first_reoffence_summary"] == 1.0
    assert person2["custody_rate"] == 0.0


def test_outcomes_respect_a_shorter_waiting_period() -> None:
    outcomes, _ = compute_outcomes(INDEX, HISTORY, measure_names=["reoffending_frequency"],
                                   follow_up=Duration(1, "y"), waiting_period=Duration(3, "m"))
    # person 1's last-day offence was proven six months later: outside a three-month wait
    assert list(outcomes["reoffending_frequency"]) == [2.0, 1.0]


def test_covariates_look_only_before_the_index_occasion() -> None:
    ctx = CovariateContext(INDEX, PEOPLE, HISTORY)
    covariates = compute_covariates(ctx, [
        ("age_at_index", None), ("sex", None), ("prior_proven_offences", None),
        ("prior_custodial_sentences", None), ("years_since_first_offence", None), ("copas_rate", None),
        ("prior_proven_offences", Duration(5, "y")), ("index_disposal", None),
    ])
    person1 = covariates.iloc[0]
    assert person1["age_at_index"] == pytest.approx(9_862 / 365.25)  # 1990-01-10 to 2017-01-10
    assert person1["sex"] == "M"
    assert person1["prior_proven_offences"] == 3.0
    assert person1["prior_proven_offences_5y"] == 2.0   # the 2010 caution is older than five years
    assert person1["prior_custodial_sentences"] == 1.0
    first_offence_years = (pd.Timestamp("2017-01-10") - pd.Timestamp("2010-05-01")).days / 365.25
    assert person1["years_since_first_offence"] == pytest.approx(first_offence_years)
    career = (pd.Timestamp("2017-01-10") - pd.Timestamp("2010-06-01")).days / 365.25
    assert person1["copas_rate"] == pytest.approx(np.log((2 + 1) / (career + 10)))
    person2 = covariates.iloc[1]
    # the custodial index sentence is not prior history
    assert person2["prior_proven_offences"] == 0.0
    assert person2["prior_custodial_sentences"] == 0.0
    assert person2["copas_rate"] == pytest.approx(np.log(1 / 10))
    assert person2["index_disposal"] == "custody"


def test_prior_year_reoffending_is_a_pre_index_outcome() -> None:
    ctx = CovariateContext(INDEX, PEOPLE, HISTORY)
    values = compute_covariates(ctx, [("prior_year_reoffending", None),
                                      ("prior_year_reoffending", Duration(5, "y"))])
    # person 1's last offence before the index occasion was in 2013: not within a year, within five
    assert list(values["prior_year_reoffending"]) == [0.0, 0.0]
    assert list(values["prior_year_reoffending_5y"]) == [1.0, 0.0]
