"""The numpy formulation of covariates, outcomes and index occasions against the pandas one.

The reference functions below are the straightforward merge / group-by
formulation the engine used before (and that DESIGN.md's definitions read
as); the engine's numpy kernels must give exactly the same values, so every
comparison is exact. Small random histories are dense in ties (same person,
same dates), events on the index date, custodial occasions with several
release dates, penalty notices and people with no events at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jdl.cohort import candidate_index_rows, resolve_occasions
from jdl.cohort.selection import choose_pool_index
from jdl.durations import Duration
from jdl.engine.pool import proven_history
from jdl.measures import (
    COVARIATES,
    MEASURES,
    CovariateContext,
    compute_covariates,
    compute_outcomes,
    kernels,
)
from jdl.measures.employment import SpellCovariate, SpellMeasure
from jdl.measures.outcomes import proven_reoffences

DISPOSALS = ("custody", "suspended", "community", "fine", "discharge", "caution", "pnd")
SEVERITIES = ("indictable", "either_way", "summary")
GROUPS = ("theft", "burglary", "violence", "drugs", None)
PERIOD = (pd.Timestamp("2016-01-01").date(), pd.Timestamp("2016-12-31").date())

# employment and benefit features come from spell tables, not the offending history
OFFENDING_COVARIATES = [name for name in COVARIATES.names() if not isinstance(COVARIATES[name], SpellCovariate)]
OFFENDING_MEASURES = [name for name in MEASURES.names() if not isinstance(MEASURES[name], SpellMeasure)]


def random_events(seed: int, people: int = 40, rows: int = 400) -> pd.DataFrame:
    """Events of people 1..people (some with none), on few distinct dates so that ties are common."""
    rng = np.random.default_rng(seed)
    person = np.sort(rng.integers(1, people + 1, rows))
    day = pd.Timestamp("2015-06-01") + pd.to_timedelta(rng.integers(0, 30, rows) * 30, unit="D")
    lag = pd.to_timedelta(rng.choice([0, 30, 60, 200], rows), unit="D")
    disposal = rng.choice(DISPOSALS, rows)
    outcome_type = np.where(disposal == "pnd", "pnd", np.where(disposal == "caution", "caution", "court_conviction"))
    custody = disposal == "custody"
    release = (day + lag + pd.to_timedelta(rng.choice([0, 30, 90], rows), unit="D")).where(custody)
    frame = pd.DataFrame({
        "person_id": person.astype("int64"),
        "offence_date": day,
        "outcome_date": day + lag,
        "outcome_type": pd.array(outcome_type, dtype="string"),
        "offence_group": pd.array(rng.choice(np.array(GROUPS, dtype=object), rows), dtype="string"),
        "severity": pd.array(rng.choice(SEVERITIES, rows), dtype="string"),
        "disposal": pd.array(disposal, dtype="string"),
        "sentence_days": np.where(custody, rng.choice([30.0, 90.0, 180.0], rows), np.nan),
        "release_date": release,
    })
    for column in ("offence_date", "outcome_date", "release_date"):
        frame[column] = frame[column].astype("datetime64[ns]")
    return frame


def as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """The text columns as Categoricals (how the block pass reads them), same values."""
    text = [c for c in ("outcome_type", "offence_group", "severity", "disposal", "sex", "ethnicity", "region")
            if c in frame.columns]
    return frame.astype(dict.fromkeys(text, "category"))


# -- the reference formulation


def reference_occasions(rows: pd.DataFrame) -> pd.DataFrame:
    def rank(values: pd.Series, order: tuple[str, ...]) -> np.ndarray:
        return values.map({name: i for i, name in enumerate(order)}).fillna(len(order)).to_numpy(np.int64)

    frame = rows.assign(
        _disposal_rank=rank(rows["disposal"], DISPOSALS[:-1]),
        _severity_rank=rank(rows["severity"], SEVERITIES),
        _sentence=rows["sentence_days"].fillna(0.0),
        _group=rows["offence_group"].fillna(""),
    ).sort_values(
        ["person_id", "outcome_date", "_disposal_rank", "_severity_rank", "_sentence", "offence_date", "_group"],
        ascending=[True, True, True, True, False, True, True], kind="mergesort",
    )
    release = (frame.loc[frame["disposal"] == "custody"].groupby(["person_id", "outcome_date"], sort=False)
               ["release_date"].max())
    lead = frame.drop_duplicates(["person_id", "outcome_date"]).set_index(["person_id", "outcome_date"])
    index_date = release.reindex(lead.index).where(lead["disposal"] == "custody",
                                                   lead.index.get_level_values("outcome_date"))
    out = pd.DataFrame({
        "person_id": lead.index.get_level_values("person_id").astype("int64"),
        "index_date": pd.to_datetime(index_date.to_numpy()).astype("datetime64[ns]"),
        "index_outcome_date": lead.index.get_level_values("outcome_date").astype("datetime64[ns]"),
        "index_offence_group": pd.array(lead["_group"].to_numpy(), dtype="string"),
        "index_severity": pd.array(lead["severity"].to_numpy(), dtype="string"),
        "index_disposal": pd.array(lead["disposal"].to_numpy(), dtype="string"),
        "index_sentence_days": lead["_sentence"].to_numpy(dtype="float64"),
    })
    return out.sort_values(["person_id", "index_date", "index_outcome_date"], kind="mergesort").reset_index(
        drop=True)


def reference_prior(index: pd.DataFrame, history: pd.DataFrame, window: Duration | None,
                    inclusive: bool = False) -> pd.DataFrame:
    joined = history.merge(index[["person_id", "index_outcome_date"]], on="person_id", how="inner")
    keep = (joined["outcome_date"] <= joined["index_outcome_date"] if inclusive
            else joined["outcome_date"] < joined["index_outcome_date"])
    if window is not None:
        start = joined["index_outcome_date"] - (window.add_to(joined["index_outcome_date"])
                                                - joined["index_outcome_date"])
        keep &= joined["outcome_date"] >= start
    return joined.loc[keep]


def per_person(index: pd.DataFrame, values: pd.Series, fill: float | None = 0.0) -> np.ndarray:
    aligned = values.reindex(index["person_id"].to_numpy())
    return (aligned.fillna(fill) if fill is not None else aligned).to_numpy()


def reference_covariates(index: pd.DataFrame, history: pd.DataFrame, window: Duration | None) -> dict:
    prior = reference_prior(index, history, window)
    prior_all = reference_prior(index, history, None)
    up_to = reference_prior(index, history, None, inclusive=True)

    def occasions(disposal: str | None, frame: pd.DataFrame) -> np.ndarray:
        chosen = frame if disposal is None else frame.loc[frame["disposal"] == disposal]
        return per_person(index, chosen.drop_duplicates(["person_id", "outcome_date"]).groupby("person_id").size())

    first_offence = pd.Series(pd.to_datetime(per_person(index, up_to.groupby("person_id")["offence_date"].min(),
                                                        None)), index=index.index)
    first_offence = first_offence.fillna(index["index_outcome_date"])
    first_sanction = pd.Series(pd.to_datetime(per_person(index, up_to.groupby("person_id")["outcome_date"].min(),
                                                         None)), index=index.index)
    first_sanction = first_sanction.fillna(index["index_outcome_date"])
    career = (index["index_outcome_date"] - first_sanction).dt.days / 365.25
    span = window or Duration(1, "y")
    start = prior_all["index_outcome_date"] - (span.add_to(prior_all["index_outcome_date"])
                                               - prior_all["index_outcome_date"])
    recent = prior_all.loc[prior_all["offence_date"] >= start]
    return {
        "prior_proven_offences": per_person(index, prior.groupby("person_id").size()).astype(float),
        "prior_custodial_sentences": occasions("custody", prior).astype(float),
        "prior_cautions": occasions("caution", prior).astype(float),
        "years_since_first_offence": (
            (index["index_outcome_date"] - first_offence).dt.days.clip(lower=0).astype(float) / 365.25).to_numpy(),
        "copas_rate": np.log((occasions(None, prior_all) + 1.0) / (career.astype(float) + 10.0)).to_numpy(),
        "prior_year_reoffending": per_person(index, (recent.groupby("person_id").size() > 0).astype(float)),
    }


def reference_outcomes(index: pd.DataFrame, history: pd.DataFrame, follow_up: Duration,
                       waiting: Duration) -> dict:
    joined = history.merge(index[["person_id", "index_date"]], on="person_id", how="inner")
    end = follow_up.add_to(joined["index_date"])
    keep = (joined["outcome_type"].isin(["court_conviction", "caution"]) & (joined["offence_date"] > joined["index_date"])
            & (joined["offence_date"] <= end) & (joined["outcome_date"] <= waiting.add_to(end)))
    re = joined.loc[keep.fillna(False)].copy()
    re["days"] = (re["offence_date"] - re["index_date"]).dt.days
    re["rank"] = re["severity"].map({s: i for i, s in enumerate(SEVERITIES)}).fillna(3)
    first = re.sort_values(["person_id", "offence_date", "rank", "outcome_date"], kind="mergesort").drop_duplicates(
        "person_id").set_index("person_id")
    custody = re.loc[re["disposal"] == "custody"].drop_duplicates(["person_id", "outcome_date"])
    counts = per_person(index, re.groupby("person_id").size()).astype(float)
    custody_counts = per_person(index, custody.groupby("person_id").size()).astype(float)
    out = {
        "reoffending_rate": (counts > 0).astype(float),
        "reoffending_frequency": counts,
        "days_to_first_reoffence": per_person(index, first["days"], None).astype(float),
        "custody_rate": (custody_counts > 0).astype(float),
        "custody_frequency": custody_counts,
    }
    for level in SEVERITIES:
        out[f"first_reoffence_{level}"] = per_person(index, (first["severity"] == level).astype(float))
    return out


# -- the comparisons


def pool_of(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = candidate_index_rows(events, *PERIOD)
    index = choose_pool_index(resolve_occasions(rows), exclude_person_ids=pd.Series([], dtype="int64"),
                              period_from=PERIOD[0], period_to=PERIOD[1])
    return index, proven_history(events, index["person_id"].to_numpy())


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_occasions_match_the_pandas_formulation(seed: int) -> None:
    events = random_events(seed)
    rows = candidate_index_rows(events, *PERIOD)
    pd.testing.assert_frame_equal(resolve_occasions(rows), reference_occasions(rows), check_exact=True)
    categorical = candidate_index_rows(as_categories(events), *PERIOD)
    pd.testing.assert_frame_equal(resolve_occasions(categorical), reference_occasions(rows), check_exact=True)
    everything = candidate_index_rows(events, pd.Timestamp("2000-01-01").date(), pd.Timestamp("2030-01-01").date())
    shuffled = everything.sample(frac=1.0, random_state=seed)  # rows in no particular order
    pd.testing.assert_frame_equal(resolve_occasions(shuffled), reference_occasions(shuffled), check_exact=True)


def test_custodial_occasion_takes_its_latest_release_and_its_most_serious_offence() -> None:
    events = random_events(0, rows=0)
    two = pd.DataFrame({
        "person_id": [7, 7, 7],
        "offence_date": pd.to_datetime(["2016-01-05", "2016-01-02", "2016-01-03"]),
        "outcome_date": pd.to_datetime(["2016-02-01"] * 3),
        "outcome_type": pd.array(["court_conviction"] * 3, dtype="string"),
        "offence_group": pd.array(["theft", "violence", "burglary"], dtype="string"),
        "severity": pd.array(["summary", "indictable", "indictable"], dtype="string"),
        "disposal": pd.array(["custody", "custody", "custody"], dtype="string"),
        "sentence_days": [30.0, 90.0, 90.0],
        "release_date": pd.to_datetime(["2016-05-01", "2016-04-01", "2016-03-01"]),
    })
    occasions = resolve_occasions(pd.concat([events, two], ignore_index=True))
    assert len(occasions) == 1
    row = occasions.iloc[0]
    assert row["index_date"] == pd.Timestamp("2016-05-01")  # the latest release of the occasion
    assert row["index_offence_group"] == "violence"  # indictable, 90 days, the earlier offence
    assert row["index_sentence_days"] == 90.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("window", [None, Duration(1, "y"), Duration(6, "m"), Duration(90, "d")])
def test_covariates_match_the_pandas_formulation(seed: int, window: Duration | None) -> None:
    events = random_events(seed)
    index, history = pool_of(events)
    assert len(index) > 5
    people = pd.DataFrame({"person_id": np.arange(1, 41, dtype="int64"),
                           "date_of_birth": pd.to_datetime("1990-01-01") + pd.to_timedelta(np.arange(40) * 50, "D"),
                           "sex": "M", "ethnicity": "White", "region": "Wales"})
    requested = [(name, window if COVARIATES[name].takes_window else None) for name in OFFENDING_COVARIATES]
    computed = compute_covariates(CovariateContext(index, people, history), requested)
    expected = reference_covariates(index, history, window)
    for name, values in expected.items():
        column = name if not COVARIATES[name].takes_window or window is None else f"{name}_{window}"
        np.testing.assert_array_equal(computed[column].to_numpy(dtype=float), values, err_msg=column)
    # the block pass's Categoricals give the same columns and dtypes
    from_categories = compute_covariates(CovariateContext(index, as_categories(people), as_categories(history)),
                                         requested)
    pd.testing.assert_frame_equal(from_categories, computed, check_exact=True)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize(("follow_up", "waiting"), [(Duration(1, "y"), Duration(6, "m")),
                                                    (Duration(6, "m"), Duration(0, "d")),
                                                    (Duration(60, "d"), Duration(30, "d"))])
def test_outcomes_match_the_pandas_formulation(seed: int, follow_up: Duration, waiting: Duration) -> None:
    events = random_events(seed)
    index, history = pool_of(events)
    # the full history, penalty notices included: a measure must never count them
    full = events.sort_values(["person_id", "offence_date", "outcome_date"], kind="mergesort")
    for frame in (history, full):
        outcomes, _ = compute_outcomes(index, frame, measure_names=OFFENDING_MEASURES,
                                       follow_up=follow_up, waiting_period=waiting)
        expected = reference_outcomes(index, frame, follow_up, waiting)
        assert expected["reoffending_frequency"].sum() > 0
        for name, values in expected.items():
            np.testing.assert_array_equal(outcomes[name].to_numpy(dtype=float), values, err_msg=name)
        from_categories, _ = compute_outcomes(index, as_categories(frame), measure_names=OFFENDING_MEASURES,
                                              follow_up=follow_up, waiting_period=waiting)
        pd.testing.assert_frame_equal(from_categories, outcomes, check_exact=True)


def test_proven_reoffences_are_the_inner_merge_rows() -> None:
    events = random_events(3)
    index, _ = pool_of(events)
    joined = events.merge(index[["person_id", "index_date"]], on="person_id", how="inner")
    got = proven_reoffences(index, events, Duration(1, "y"), Duration(6, "m"))
    end = Duration(1, "y").add_to(joined["index_date"])
    keep = (joined["outcome_type"].isin(["court_conviction", "caution"]) & (joined["offence_date"] > joined["index_date"])
            & (joined["offence_date"] <= end) & (joined["outcome_date"] <= Duration(6, "m").add_to(end)))
    expected = joined.loc[keep].copy()
    expected["days_after_index"] = (expected["offence_date"] - expected["index_date"]).dt.days
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_people_without_events_get_zero_counts_and_no_first_dates() -> None:
    index = pd.DataFrame({"person_id": [5, 9], "index_date": pd.to_datetime(["2016-03-01", "2016-04-01"]),
                          "index_outcome_date": pd.to_datetime(["2016-03-01", "2016-04-01"])})
    history = random_events(1).iloc[:0]
    ctx = CovariateContext(index, pd.DataFrame({"person_id": [5, 9]}), history)
    values = compute_covariates(ctx, [("prior_proven_offences", None), ("years_since_first_offence", None),
                                      ("copas_rate", None)])
    assert list(values["prior_proven_offences"]) == [0.0, 0.0]
    assert list(values["years_since_first_offence"]) == [0.0, 0.0]
    assert values["copas_rate"].tolist() == pytest.approx([np.log(0.1)] * 2)
    outcomes, _ = compute_outcomes(index, history, measure_names=["reoffending_rate", "days_to_first_reoffence"],
                                   follow_up=Duration(1, "y"), waiting_period=Duration(6, "m"))
    assert list(outcomes["reoffending_rate"]) == [0.0, 0.0]
    assert outcomes["days_to_first_reoffence"].isna().all()


def test_kernels_on_hand_made_rows() -> None:
    position = np.array([0, 0, 2, 2, 2, -1])
    keep = np.array([True, True, True, False, True, True])
    keep &= position >= 0
    np.testing.assert_array_equal(kernels.count_per_person(position, keep, 3), [2.0, 0.0, 2.0])
    dates = np.array([5, 5, 7, 8, 7, 1], dtype=np.int64)
    np.testing.assert_array_equal(kernels.distinct_per_person(position, dates, keep, 3), [1.0, 0.0, 1.0])
    minimum = kernels.minimum_per_person(position, np.array([9, 4, kernels.NAT, 1, 6, 0]), keep, 3)
    np.testing.assert_array_equal(minimum, [4, kernels.NAT, 6])  # NaT is no date; dropped rows do not count
    # ties keep row order: rows 2 and 4 tie on the key, row 2 comes first
    np.testing.assert_array_equal(kernels.first_rows(np.array([2, 0, 2, 0, 2]), [np.array([3, 1, 1, 1, 1])]),
                                  [1, 2])


def test_proven_history_is_sorted_and_leaves_out_penalty_notices() -> None:
    events = random_events(2).sample(frac=1.0, random_state=2)
    history = proven_history(events, np.array([1, 2, 3, 4, 5, 6]))
    expected = events.loc[events["person_id"].isin([1, 2, 3, 4, 5, 6])
                          & events["outcome_type"].isin(["court_conviction", "caution"])]
    expected = expected.sort_values(["person_id", "offence_date", "outcome_date"], kind="mergesort")
    pd.testing.assert_frame_equal(history, expected[history.columns].reset_index(drop=True), check_exact=True)


def test_pool_index_is_each_persons_first_occasion_in_the_period() -> None:
    events = random_events(4)
    occasions = resolve_occasions(candidate_index_rows(events, *PERIOD))
    shuffled = occasions.sample(frac=1.0, random_state=1)
    for frame in (occasions, shuffled):
        got = choose_pool_index(frame, exclude_person_ids=pd.Series([3], dtype="int64"),
                                period_from=PERIOD[0], period_to=PERIOD[1])
        in_period = frame.loc[(frame["index_date"] >= pd.Timestamp(PERIOD[0]))
                              & (frame["index_date"] <= pd.Timestamp(PERIOD[1])) & (frame["person_id"] != 3)]
        expected = in_period.sort_values(["person_id", "index_date"], kind="mergesort").drop_duplicates("person_id")
        pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_exact=True)


def test_stable_order_skips_only_sorted_rows() -> None:
    from jdl.cohort import stable_order

    person = np.array([1, 1, 2, 2, 2])
    date = np.array([5, 5, 1, 3, 3])
    np.testing.assert_array_equal(stable_order([date, person]), np.arange(5))
    date_out_of_order = np.array([5, 4, 1, 3, 3])
    np.testing.assert_array_equal(stable_order([date_out_of_order, person]), [1, 0, 2, 3, 4])
    np.testing.assert_array_equal(stable_order([np.array([2, 1]), np.array([1, 2])]), [0, 1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stable_order_packs_keys_exactly_as_lexsort(seed: int) -> None:
    from jdl.cohort import stable_order

    rng = np.random.default_rng(seed)
    day = 86_400_000_000_000
    person = np.sort(rng.integers(1_000_000, 1_000_400, 5_000))
    dates = (rng.integers(16_000, 16_100, 5_000) * day).astype(np.int64)  # whole days: packed
    stamps = dates + rng.integers(0, 3, 5_000)  # not whole days: packed without dividing
    small = rng.integers(0, 3, 5_000)
    for keys in ([dates, person], [small, stamps, person], [stamps, small], [np.full(5_000, np.iinfo(np.int64).max), person]):
        np.testing.assert_array_equal(stable_order(keys), np.lexsort(keys))


def test_person_id_membership_by_table_and_by_search() -> None:
    from jdl.engine.pool import _ids_in

    values = np.array([5, 7, 7, 9, 10_000_000, 3], dtype=np.int64)
    near = np.array([7, 3, 3])  # a small range: lookup table
    far = np.array([7, 3, 10_000_000])  # a range far larger than the values: binary search
    assert _ids_in(values, near).tolist() == [False, True, True, False, False, True]
    assert _ids_in(values, far).tolist() == [False, True, True, False, True, True]
    assert not _ids_in(values, np.array([], dtype=np.int64)).any()
    # ids outside the values' range are left out first (national ids against one block's)
    outside = np.array([1, 2, 7, 20_000_000, 40_000_000])
    assert _ids_in(values, outside).tolist() == [False, True, True, False, False, False]
    assert not _ids_in(values, np.array([1, 2, 20_000_000])).any()


@pytest.mark.parametrize("seed", range(4))
def test_person_id_membership_equals_isin_on_random_ids(seed: int) -> None:
    from jdl.engine.pool import _ids_in

    rng = np.random.default_rng(seed)
    values = rng.integers(1_000, 3_000, 5_000)
    for ids in (rng.integers(500, 3_500, 300), rng.integers(1_500, 1_600, 50), rng.integers(1, 10**9, 400),
                np.concatenate([rng.integers(1_000, 3_000, 20), rng.integers(1, 10**9, 2_000)])):
        np.testing.assert_array_equal(_ids_in(values, ids), np.isin(values, ids))


def test_eligibility_of_a_table_with_its_own_people_columns_needs_no_merge() -> None:
    from jdl.cohort import eligibility_reasons

    pool = pd.DataFrame({
        "person_id": np.array([2, 5, 9], dtype=np.int64),
        "index_date": pd.to_datetime(["2016-05-01", "2016-05-01", "2017-01-01"]),
        "date_of_birth": pd.to_datetime(["2000-05-02", "1990-01-01", pd.NaT]),
        "region": pd.array(["Wales", "London", "Wales"], dtype="string"),
    })
    fast = eligibility_reasons(pool[["person_id", "index_date"]], pool, min_age=16, regions=["Wales"],
                               apply_regions=True)
    shuffled = pool.iloc[[2, 0, 1]]  # another order: merged by person_id
    slow = eligibility_reasons(pool[["person_id", "index_date"]], shuffled, min_age=16, regions=["Wales"],
                               apply_regions=True)
    pd.testing.assert_series_equal(fast, slow)
    assert fast.tolist() == ["under 16 at the index date", "region outside comparison_pool.regions",
                             "no date of birth in the people table"]
