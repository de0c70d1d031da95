"""The compiled covariates and outcomes (jdl.measures.fused) against each built-in's own `compute`.

Every built-in covariate and measure with a compiled formulation must give
exactly (bit for bit) what its registered `compute` gives. The random
histories are dense in ties (same person, same offence and outcome dates,
same severity), hold missing dates, dates at month ends and on 29 February,
penalty notices, people with no events, people not in the index table, and
come in and out of person order; index tables have missing and month-end
dates too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jdl.durations import Duration
from jdl.measures import COVARIATES, MEASURES, CovariateContext, compute_outcomes
from jdl.measures.covariates import compute_covariate

DISPOSALS = ("custody", "suspended", "community", "fine", "discharge", "caution", "pnd", None)
SEVERITIES = ("indictable", "either_way", "summary", "other", None)
# few distinct dates, many of them month ends and leap days, so that ties and calendar clipping are common
DATES = pd.to_datetime([
    "2015-01-31", "2015-02-28", "2015-03-31", "2015-08-31", "2015-12-31", "2016-01-31", "2016-02-29",
    "2016-03-01", "2016-03-31", "2016-05-31", "2016-08-31", "2016-09-30", "2016-12-31", "2017-01-31",
    "2017-02-28", "2017-06-15", "2017-08-31", "2018-02-28", "2020-02-29",
])
WINDOWS = [None, Duration(30, "d"), Duration(2, "w"), Duration(6, "m"), Duration(1, "y"), Duration(2, "y")]
FUSED_COVARIATES = [name for name in COVARIATES.names() if COVARIATES[name].fused is not None]
FUSED_MEASURES = [name for name in MEASURES.names() if MEASURES[name].fused is not None]


def dates(rng: np.random.Generator, rows: int, missing: float) -> pd.Series:
    values = pd.Series(DATES[rng.integers(0, len(DATES), rows)])
    return values.mask(rng.random(rows) < missing).astype("datetime64[ns]")


def history_of(seed: int, people: int = 60, rows: int = 500, sorted_by_person: bool = True) -> pd.DataFrame:
    """Events of people 1..people+5 (people above `people` are not in the index table)."""
    rng = np.random.default_rng(seed)
    person = rng.integers(1, people + 6, rows)
    if sorted_by_person:
        person = np.sort(person)
    disposal = rng.choice(np.array(DISPOSALS, dtype=object), rows)
    outcome_type = np.where(disposal == "pnd", "pnd", np.where(disposal == "caution", "caution", "court_conviction"))
    offence = dates(rng, rows, 0.05) + pd.to_timedelta(rng.choice([0, 0, 1, 15, 29, 30, 31], rows), unit="D")
    outcome = (offence + pd.to_timedelta(rng.choice([0, 1, 30, 31, 200], rows), unit="D")).mask(
        rng.random(rows) < 0.05)
    return pd.DataFrame({
        "person_id": person.astype("int64"),
        "offence_date": offence,
        "outcome_date": outcome,
        "outcome_type": pd.array(outcome_type, dtype="string"),
        "offence_group": pd.array(rng.choice(["theft", "drugs"], rows), dtype="string"),
        "severity": pd.array(rng.choice(np.array(SEVERITIES, dtype=object), rows), dtype="string"),
        "disposal": pd.array(disposal, dtype="string"),
        "sentence_days": np.where(disposal == "custody", 90.0, np.nan),
        "release_date": pd.Series(pd.NaT, index=range(rows), dtype="datetime64[ns]"),
    })


def index_of(seed: int, people: int = 60) -> pd.DataFrame:
    """One row per person 1..people with events or not, in person order (every fifth person left out)."""
    rng = np.random.default_rng(seed + 1000)
    ids = np.array([p for p in range(1, people + 1) if p % 5], dtype="int64")
    return pd.DataFrame({
        "person_id": ids,
        "index_date": dates(rng, len(ids), 0.05),
        "index_outcome_date": dates(rng, len(ids), 0.05),
    })


def people_of(people: int = 60) -> pd.DataFrame:
    dob = pd.Series(pd.to_datetime(["1980-02-29", "1990-12-31", "2000-03-01", None] * people)[:people + 5])
    return pd.DataFrame({"person_id": np.arange(1, people + 6, dtype="int64"), "date_of_birth": dob,
                         "sex": "F", "ethnicity": "W1", "region": "London"})


def categorical(frame: pd.DataFrame) -> pd.DataFrame:
    text = [c for c in ("outcome_type", "offence_group", "severity", "disposal") if c in frame.columns]
    return frame.astype(dict.fromkeys(text, "category"))


CASES = [(seed, in_order, as_categories) for seed in range(6) for in_order in (True, False)
         for as_categories in (False, True)]


def test_the_built_ins_have_compiled_formulations() -> None:
    assert set(FUSED_COVARIATES) >= {"prior_proven_offences", "prior_custodial_sentences", "prior_cautions",
                                     "years_since_first_offence", "age_at_first_offence", "copas_rate",
                                     "prior_year_reoffending"}
    assert set(FUSED_MEASURES) >= {"reoffending_rate", "reoffending_frequency", "days_to_first_reoffence",
                                   "custody_rate", "custody_frequency", "first_reoffence_severity"}


@pytest.mark.parametrize(("seed", "in_order", "as_categories"), CASES)
def test_compiled_covariates_equal_their_compute(seed: int, in_order: bool, as_categories: bool) -> None:
    history = history_of(seed, sorted_by_person=in_order)
    if as_categories:
        history = categorical(history)
    ctx = CovariateContext(index_of(seed), people_of(), history)
    assert ctx.grouped is not None
    assert (ctx.grouped.rows.order is None) == in_order
    compared = 0
    for name in FUSED_COVARIATES:
        covariate = COVARIATES[name]
        for window in WINDOWS if covariate.takes_window else [None]:
            fast = compute_covariate(ctx, covariate, window)
            slow = compute_covariate(ctx, covariate, window, allow_fused=False)
            pd.testing.assert_series_equal(fast, slow, check_exact=True, check_names=False,
                                           obj=f"{name} {window}")
            compared += 1
    assert compared == len(FUSED_COVARIATES) + 4 * len(WINDOWS) - 4


@pytest.mark.parametrize(("seed", "in_order", "as_categories"), CASES)
@pytest.mark.parametrize(("follow_up", "waiting"), [
    (Duration(1, "y"), Duration(6, "m")), (Duration(6, "m"), Duration(3, "m")), (Duration(30, "d"), Duration(2, "w")),
    (Duration(2, "y"), Duration(1, "m")), (Duration(18, "m"), Duration(0, "d")),
])
def test_compiled_outcomes_equal_their_compute(seed: int, in_order: bool, as_categories: bool,
                                               follow_up: Duration, waiting: Duration) -> None:
    history = history_of(seed, sorted_by_person=in_order)
    if as_categories:
        history = categorical(history)
    index = index_of(seed)
    names = FUSED_MEASURES
    fast, described = compute_outcomes(index, history, measure_names=names, follow_up=follow_up,
                                       waiting_period=waiting)
    slow, _ = compute_outcomes(index, history, measure_names=names, follow_up=follow_up, waiting_period=waiting,
                               allow_fused=False)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert list(fast.columns) == [c.name for c in described]
    # the histories are dense enough that every measure has reoffenders to count
    assert fast["reoffending_frequency"].sum() > 0 and fast["days_to_first_reoffence"].notna().sum() > 0
    if follow_up.approx_days() >= 180:
        assert fast["custody_frequency"].sum() > 0 and fast["first_reoffence_summary"].sum() > 0


@pytest.mark.parametrize("seed", range(3))
def test_people_with_many_rows_give_the_same_values(seed: int) -> None:
    """About a hundred rows per person: long sorts of their occasion dates."""
    history = history_of(seed, people=5, rows=600)
    index = index_of(seed, people=5)
    ctx = CovariateContext(index, people_of(5), history)
    for name in FUSED_COVARIATES:
        covariate = COVARIATES[name]
        for window in WINDOWS if covariate.takes_window else [None]:
            pd.testing.assert_series_equal(compute_covariate(ctx, covariate, window),
                                           compute_covariate(ctx, covariate, window, allow_fused=False),
                                           check_exact=True, check_names=False, obj=f"{name} {window}")
    assert ctx.grouped is not None and ctx.grouped.prior_counts(None)[3].max() > 16
    fast, _ = compute_outcomes(index, history, measure_names=FUSED_MEASURES, follow_up=Duration(2, "y"),
                               waiting_period=Duration(6, "m"))
    slow, _ = compute_outcomes(index, history, measure_names=FUSED_MEASURES, follow_up=Duration(2, "y"),
                               waiting_period=Duration(6, "m"), allow_fused=False)
    pd.testing.assert_frame_equal(fast, slow, check_exact=True)
    assert fast["custody_frequency"].max() > 1


def test_first_reoffence_ties_keep_row_order_and_missing_severity_counts_as_none() -> None:
    day = pd.Timestamp("2016-02-29")
    history = pd.DataFrame({
        "person_id": np.array([1, 1, 2, 2, 3], dtype="int64"),
        "offence_date": [day + pd.Timedelta(days=10)] * 4 + [day + pd.Timedelta(days=400)],
        "outcome_date": [day + pd.Timedelta(days=40), day + pd.Timedelta(days=30)] * 2 + [day + pd.Timedelta(days=500)],
        "outcome_type": pd.array(["court_conviction"] * 5, dtype="string"),
        "severity": pd.array(["summary", "summary", None, "indictable", "indictable"], dtype="string"),
        "disposal": pd.array(["custody", "custody", "fine", "fine", "custody"], dtype="string"),
    })
    index = pd.DataFrame({"person_id": np.array([1, 2, 3], dtype="int64"), "index_date": [day] * 3,
                          "index_outcome_date": [day] * 3})
    values, _ = compute_outcomes(index, history, measure_names=FUSED_MEASURES, follow_up=Duration(1, "y"),
                                 waiting_period=Duration(6, "m"))
    # person 3's offence is 400 days after 29 Feb 2016, after the one-year window (28 Feb 2017)
    assert values["reoffending_frequency"].tolist() == [2.0, 2.0, 0.0]
    assert values["custody_frequency"].tolist() == [2.0, 0.0, 0.0]  # two outcome dates
    assert values["days_to_first_reoffence"].tolist()[:2] == [10.0, 10.0]
    assert np.isnan(values["days_to_first_reoffence"].iloc[2])
    # person 2: on the offence-date tie the lower severity rank (indictable) comes first; NA ranks last
    assert values["first_reoffence_indictable"].tolist() == [0.0, 1.0, 0.0]
    assert values["first_reoffence_summary"].tolist() == [1.0, 0.0, 0.0]


def test_person_attributes_by_take_equal_those_by_reindex() -> None:
    """People in person_id order are taken by position; any other order is reindexed; same values."""
    people = people_of()
    people["sex"] = pd.Categorical(np.where(people.index % 3 == 0, "M", "F"))
    people = people.drop(index=[0, 7, 8])  # index people 1, 8 and 9 have no people row
    index = index_of(2)
    in_order = CovariateContext(index, people, history_of(2))
    shuffled = CovariateContext(index, people.sample(frac=1.0, random_state=3), history_of(2))
    assert in_order._people_rows is not None and shuffled._people_rows is None
    for column in ("date_of_birth", "sex"):
        taken, reindexed = in_order.person_attribute(column), shuffled.person_attribute(column)
        pd.testing.assert_series_equal(taken, reindexed)
        assert taken.isna().sum() >= 3
    for name in ("age_at_index", "age_at_first_offence"):
        pd.testing.assert_series_equal(compute_covariate(in_order, COVARIATES[name], None),
                                       compute_covariate(shuffled, COVARIATES[name], None, allow_fused=False),
                                       check_exact=True, check_names=False)


def test_an_index_table_out_of_person_order_takes_each_compute() -> None:
    history = history_of(3)
    index = index_of(3).iloc[::-1].reset_index(drop=True)
    ctx = CovariateContext(index, people_of(), history)
    assert ctx.grouped is None
    ordered = CovariateContext(index_of(3), people_of(), history)
    for name in FUSED_COVARIATES:
        reversed_values = compute_covariate(ctx, COVARIATES[name], None).to_numpy()
        forward = compute_covariate(ordered, COVARIATES[name], None).to_numpy()
        np.testing.assert_array_equal(reversed_values[::-1], forward)
    values, _ = compute_outcomes(index, history, measure_names=FUSED_MEASURES, follow_up=Duration(1, "y"),
                                 waiting_period=Duration(6, "m"))
    forward_outcomes, _ = compute_outcomes(index_of(3), history, measure_names=FUSED_MEASURES,
                                           follow_up=Duration(1, "y"), waiting_period=Duration(6, "m"))
    np.testing.assert_array_equal(values.to_numpy()[::-1], forward_outcomes.to_numpy())


def test_severity_rank_of_text_and_categories() -> None:
    from jdl.measures.outcomes import SEVERITY_ORDER, _rank

    values = pd.Series(["summary", None, "other", "indictable", "either_way", "summary"], dtype="string")
    expected = [2, 3, 3, 0, 1, 2]
    assert _rank(values, SEVERITY_ORDER).tolist() == expected
    assert _rank(values.astype("category"), SEVERITY_ORDER).tolist() == expected
    assert _rank(values.astype(object), SEVERITY_ORDER).tolist() == expected


@pytest.mark.parametrize("seed", range(4))
def test_person_bounds_equal_searchsorted(seed: int) -> None:
    from jdl.measures.fused import PersonRows

    rng = np.random.default_rng(seed)
    person = np.sort(rng.integers(0, 60, 300))
    ids = np.unique(rng.integers(-5, 70, 40))
    rows = PersonRows.of(ids, person)
    np.testing.assert_array_equal(rows.starts, np.searchsorted(person, ids, side="left"))
    np.testing.assert_array_equal(rows.ends, np.searchsorted(person, ids, side="right"))
    shuffled = PersonRows.of(ids, rng.permutation(person))
    assert shuffled.order is not None
    np.testing.assert_array_equal(shuffled.ends - shuffled.starts, rows.ends - rows.starts)


def test_text_membership_of_categories_equals_isin() -> None:
    from jdl.cohort import text_in

    values = pd.Series(["a", "b", None, "c", "d", "e", "a", "z"], dtype="string")
    for allowed in [(), ("a",), ("a", "c"), ("a", "c", "e"), ("a", "b", "c", "e"), ("z", "y")]:
        expected = values.isin(allowed).to_numpy(dtype=bool)
        np.testing.assert_array_equal(text_in(values.astype("category"), allowed), expected)
        np.testing.assert_array_equal(text_in(values, allowed), expected)
