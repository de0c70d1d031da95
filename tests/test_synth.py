"""Synthetic national records: contract schema, consistency, base rates, planted truth, noise.

Quantities are recomputed here from the written files with pandas, by the definitions in
DESIGN §1, not with the generator's own helpers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import pathlib
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jdl.errors import JdlUserError
from jdl.synth import SynthParameters, SynthSummary, generate
from jdl.synth.generate import cohort_layout
from jdl.synth.names import FEMALE_FORENAMES, MALE_FORENAMES, SURNAMES

PEOPLE = 30_000
PER_FILE = 12_000
SEED = 7
PERIOD = (pd.Timestamp("2016-01-01"), pd.Timestamp("2018-12-31"))
PROVEN = ("court_conviction", "caution")
REGIONS = {
    "North East",
    "North West",
    "Yorkshire and the Humber",
    "East Midlands",
    "West Midlands",
    "East of England",
    "London",
    "South East",
    "South West",
    "Wales",
}
PEOPLE_COLUMNS = {
    "person_id": pa.int64(),
    "pnc_id": pa.string(),
    "forename": pa.string(),
    "surname": pa.string(),
    "date_of_birth": pa.date32(),
    "sex": pa.string(),
    "ethnicity": pa.string(),
    "region": pa.string(),
}
EVENT_COLUMNS = {
    "person_id": pa.int64(),
    "offence_date": pa.date32(),
    "outcome_date": pa.date32(),
    "outcome_type": pa.string(),
    "offence_group": pa.string(),
    "severity": pa.string(),
    "disposal": pa.string(),
    "sentence_days": pa.int32(),
    "release_date": pa.date32(),
}


def _parameters() -> SynthParameters:
    return dataclasses.replace(SynthParameters(), people_per_file=PER_FILE)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthSummary:
    out = tmp_path_factory.mktemp("synth")
    return generate(PEOPLE, out, seed=SEED, parameters=_parameters())


def _read(paths: tuple[pathlib.Path, ...]) -> pd.DataFrame:
    table = pa.concat_tables([pq.read_table(path) for path in paths])
    frame = table.to_pandas(date_as_object=False)
    for column in frame.columns:
        if str(frame[column].dtype).startswith("datetime64"):
            frame[column] = frame[column].astype("datetime64[ns]")
    return frame


@pytest.fixture(scope="module")
def people(synth: SynthSummary) -> pd.DataFrame:
    return _read(synth.people_files)


@pytest.fixture(scope="module")
def events(synth: SynthSummary) -> pd.DataFrame:
    frame = _read(synth.events_files)
    frame["row"] = np.arange(len(frame))
    return frame


@pytest.fixture(scope="module")
def truth(synth: SynthSummary) -> dict:
    return json.loads(synth.truth_path.read_text())


@pytest.fixture(scope="module")
def participants(synth: SynthSummary) -> pd.DataFrame:
    frame = pd.read_csv(synth.participants_path)
    for column in ("intervention_start", "index_date"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
    return frame


def _index_events(events: pd.DataFrame) -> pd.DataFrame:
    proven = events[events["outcome_type"].isin(PROVEN)].copy()
    proven["index_date"] = proven["release_date"].where(
        proven["disposal"] == "custody", proven["outcome_date"]
    )
    return proven


def _first_index_in_period(events: pd.DataFrame) -> pd.DataFrame:
    proven = _index_events(events)
    in_period = proven[proven["index_date"].between(*PERIOD)]
    return in_period.sort_values(["person_id", "index_date"]).groupby("person_id").head(1)


def _reoffences(events: pd.DataFrame, index: pd.DataFrame) -> pd.Series:
    """Proven reoffences per indexed person (index: person_id, index_date)."""
    proven = events[events["outcome_type"].isin(PROVEN)]
    joined = proven.merge(index[["person_id", "index_date"]], on="person_id")
    window_end = joined["index_date"] + pd.DateOffset(years=1)
    proven_by = joined["index_date"] + pd.DateOffset(years=1, months=6)
    counted = (
        (joined["offence_date"] > joined["index_date"])
        & (joined["offence_date"] <= window_end)
        & (joined["outcome_date"] <= proven_by)
    )
    counts = joined[counted].groupby("person_id").size()
    return index["person_id"].map(counts).fillna(0).astype(int).set_axis(index.index)


# --- schema and partitions -------------------------------------------------------------


def test_people_and_events_schema_match_the_contract_exactly(synth: SynthSummary) -> None:
    for path in synth.people_files:
        schema = pq.read_schema(path)
        assert {field.name: field.type for field in schema} == PEOPLE_COLUMNS
        assert schema.names == list(PEOPLE_COLUMNS)
    for path in synth.events_files:
        schema = pq.read_schema(path)
        assert {field.name: field.type for field in schema} == EVENT_COLUMNS
        assert schema.names == list(EVENT_COLUMNS)


def test_partitions_hold_contiguous_person_ranges_and_sorted_events(synth: SynthSummary) -> None:
    assert len(synth.people_files) == -(-PEOPLE // PER_FILE) == 3
    for part, (people_path, events_path) in enumerate(
        zip(synth.people_files, synth.events_files, strict=True)
    ):
        ids = pq.read_table(people_path, columns=["person_id"])["person_id"].to_numpy()
        first = part * PER_FILE + 1
        assert np.array_equal(ids, np.arange(first, first + len(ids)))
        table = pq.read_table(events_path, columns=["person_id", "offence_date"]).to_pandas()
        assert table["person_id"].between(ids[0], ids[-1]).all()
        assert table.equals(table.sort_values(["person_id", "offence_date"], kind="stable"))


def test_people_identities_are_plausible(people: pd.DataFrame, events: pd.DataFrame) -> None:
    assert len(people) == PEOPLE
    assert set(people["sex"]) == {"M", "F"}
    assert set(people["ethnicity"]) == {"White", "Black", "Asian", "Mixed", "Other", "Unknown"}
    assert set(people["region"]) == REGIONS
    assert 0.03 < people["pnc_id"].isna().mean() < 0.07
    pnc = people["pnc_id"].dropna()
    assert pnc.is_unique
    assert pnc.str.fullmatch(r"\d{4}/\d{7}[A-Z]").all()
    # The check character is (two-digit year, serial number) modulo 23.
    year, number = pnc.str[2:4].astype(int), pnc.str[5:12].astype(int)
    expected = ((year * 10_000_000 + number) % 23).map(dict(enumerate("ZABCDEFGHJKLMNPQRTUVWXY")))
    assert (pnc.str[-1] == expected).all()
    assert set(people["person_id"]) == set(events["person_id"]), "everyone has a record"
    identity = people[["forename", "surname", "date_of_birth", "sex"]]
    assert identity.duplicated().mean() < 0.01


# --- consistency rules ---------------------------------------------------------------------


def test_outcome_types_match_disposals(events: pd.DataFrame) -> None:
    pairs = events.groupby("outcome_type")["disposal"].unique().map(set).to_dict()
    assert pairs["caution"] == {"caution"}
    assert pairs["pnd"] == {"pnd"}
    assert pairs["court_conviction"] == {"custody", "suspended", "community", "fine", "discharge"}
    assert set(events["severity"]) == {"indictable", "either_way", "summary"}
    assert set(events["offence_group"]) >= {"violence", "theft", "burglary", "drugs", "motoring"}
    assert (events["outcome_type"] == "pnd").mean() > 0.02, "penalty notices exist"


def test_dates_sentences_and_releases_are_consistent(events: pd.DataFrame) -> None:
    assert (events["offence_date"] <= events["outcome_date"]).all()
    assert events["offence_date"].min() >= pd.Timestamp("2000-01-01")
    assert events["outcome_date"].max() <= pd.Timestamp("2020-06-30")
    custody = events[events["disposal"] == "custody"]
    other = events[events["disposal"] != "custody"]
    assert other["sentence_days"].isna().all() and other["release_date"].isna().all()
    assert (custody["sentence_days"] > 0).all()
    assert (custody["release_date"] > custody["outcome_date"]).all()
    half = (custody["sentence_days"] + 1) // 2
    served = (custody["release_date"] - custody["outcome_date"]).dt.days
    assert ((half - served).between(0, 5)).all(), "release is about half-way through"
    # Court outcomes take longer to arrive for more serious offences.
    court = events[events["outcome_type"] == "court_conviction"]
    lag = (
        (court["outcome_date"] - court["offence_date"]).dt.days.groupby(court["severity"]).median()
    )
    assert lag["indictable"] > lag["either_way"] > lag["summary"] > 14


def test_nobody_offends_while_in_custody(events: pd.DataFrame) -> None:
    terms = events.loc[
        events["disposal"] == "custody", ["person_id", "outcome_date", "release_date"]
    ].rename(columns={"outcome_date": "term_from", "release_date": "term_to"})
    joined = events[["person_id", "offence_date"]].merge(terms, on="person_id")
    inside = (joined["offence_date"] > joined["term_from"]) & (
        joined["offence_date"] < joined["term_to"]
    )
    assert len(terms) > 100 and not inside.any()


def test_no_person_has_two_index_events_on_one_day(events: pd.DataFrame) -> None:
    proven = _index_events(events)
    assert not proven.duplicated(["person_id", "index_date"]).any()


# --- realism -------------------------------------------------------------------------------


def test_base_rates_by_index_disposal_are_plausible(
    events: pd.DataFrame, people: pd.DataFrame, truth: dict
) -> None:
    index = _first_index_in_period(events)
    counts = _reoffences(events, index)
    rate_by_disposal = (counts > 0).groupby(index["disposal"]).mean()
    assert rate_by_disposal.between(0.2, 0.5).all(), rate_by_disposal
    assert rate_by_disposal.idxmax() == "custody"
    assert 0.25 <= (counts > 0).mean() <= 0.45
    assert 2.3 <= counts[counts > 0].mean() <= 4.0, "reoffenders average about 3 reoffences"
    # The generator's own summary agrees with this independent computation.
    pool = truth["pool"]
    assert pool["people_with_index_event"] == len(index)
    assert pool["rate"] == pytest.approx((counts > 0).mean(), abs=2e-6)
    for disposal, rate in rate_by_disposal.items():
        assert pool["rate_by_index_disposal"][disposal]["rate"] == pytest.approx(rate, abs=2e-6)

    # Age-crime curve: most first records in the late teens and twenties.
    first_offence = events.groupby("person_id")["offence_date"].min()
    born = people.set_index("person_id")["date_of_birth"]
    age = (first_offence - born.loc[first_offence.index]).dt.days / 365.25
    assert age.min() >= 10
    assert 16 <= age.median() <= 35
    per_person = events.groupby("person_id").size()
    assert per_person.quantile(0.99) >= 20, "some prolific offenders"
    assert (per_person == 1).mean() > 0.25, "many people have a single record"


# --- planted truth -------------------------------------------------------------------------


def test_participants_are_disjoint_and_found_by_the_pipeline_rule(
    events: pd.DataFrame, participants: pd.DataFrame
) -> None:
    assert participants["person_id"].is_unique, "cohorts are disjoint"
    proven = _index_events(events)
    joined = proven.merge(
        participants[["person_id", "intervention_start"]], on="person_id", how="inner"
    )
    after_start = joined[
        (joined["index_date"] >= joined["intervention_start"])
        & (joined["index_date"] <= joined["intervention_start"] + pd.DateOffset(years=1))
        & joined["index_date"].between(*PERIOD)
    ]
    found = after_start.sort_values("index_date").groupby("person_id")["index_date"].first()
    planted = participants.set_index("person_id")["index_date"]
    assert found.reindex(planted.index).equals(planted)
    # The planted index event is also the participant's first index event in the period.
    first = _first_index_in_period(events).set_index("person_id")["index_date"]
    assert first.reindex(planted.index).equals(planted)
    # In-prison programmes start between conviction and release.
    index_rows = joined[joined["index_date"] == joined["person_id"].map(planted)]
    custody = index_rows[index_rows["disposal"] == "custody"]
    assert len(custody) > 20
    assert (custody["intervention_start"] > custody["outcome_date"]).all()


def test_truth_effects_match_the_records_and_have_the_planted_size(
    events: pd.DataFrame, participants: pd.DataFrame, truth: dict
) -> None:
    index_all = _first_index_in_period(events)
    for name, cohort in truth["cohorts"].items():
        members = participants[participants["cohort"] == name].set_index("person_id")
        assert len(members) == cohort["planted_participants"]
        # Y(1) is what the records hold for participants.
        recorded = _reoffences(events, members.reset_index())
        assert np.array_equal(recorded.to_numpy(), members["reoffences_y1"].to_numpy())
        assert (members["reoffences_y0"] >= members["reoffences_y1"]).all()
        effect = (members["reoffences_y1"] > 0).mean() - (members["reoffences_y0"] > 0).mean()
        assert cohort["true_effect_rate"] == pytest.approx(effect, abs=2e-6)
        frequency = (members["reoffences_y1"] - members["reoffences_y0"]).mean()
        assert cohort["true_effect_frequency"] == pytest.approx(frequency, abs=2e-6)
        # Naive difference against everyone else with an index event in the period.
        in_cohort = index_all["person_id"].isin(members.index)
        counts = _reoffences(events, index_all)
        naive = (counts[in_cohort] > 0).mean() - (counts[~in_cohort] > 0).mean()
        assert cohort["naive_difference_rate"] == pytest.approx(naive, abs=2e-6)
        assert cohort["pool_size"] == int((~in_cohort).sum())

    large = truth["cohorts"]["large"]
    assert -0.12 <= large["true_effect_rate"] <= -0.03
    assert large["true_effect_frequency"] < -0.2
    assert large["naive_difference_rate"] - large["true_effect_rate"] >= 0.05, "selection bias"


def test_selection_depends_only_on_observed_covariates(
    events: pd.DataFrame, people: pd.DataFrame, participants: pd.DataFrame
) -> None:
    """Within strata of observed covariates, participants' untreated outcomes match the pool's."""
    index = _first_index_in_period(events)
    proven = _index_events(events).merge(
        index[["person_id", "index_date", "row"]], on="person_id", suffixes=("", "_index")
    )
    prior = proven[
        (proven["outcome_date"] < proven["index_date_index"])
        & (proven["row"] != proven["row_index"])
    ]
    priors = index["person_id"].map(prior.groupby("person_id").size()).fillna(0)
    born = index["person_id"].map(people.set_index("person_id")["date_of_birth"])
    age = (index["index_date"] - born).dt.days / 365.25
    strata = pd.DataFrame(
        {
            "age": np.select([age < 21, age < 25], ["<21", "21-24"], "25+"),
            "priors": priors.clip(upper=12).astype(int),
            "custody": index["disposal"] == "custody",
            "sex": index["person_id"].map(people.set_index("person_id")["sex"]),
        },
        index=index.index,
    )
    key = strata.astype(str).agg("|".join, axis=1)
    reoffended = _reoffences(events, index) > 0
    is_participant = index["person_id"].isin(participants["person_id"])
    large = participants[participants["cohort"] == "large"].set_index("person_id")
    in_large = index["person_id"].isin(large.index)
    y0 = index.loc[in_large, "person_id"].map(large["reoffences_y0"] > 0)

    pool_rate = reoffended[~is_participant].groupby(key[~is_participant]).mean()
    standardised = key[in_large].map(pool_rate)
    usable = standardised.notna()
    assert usable.mean() > 0.95
    raw_gap = y0.mean() - reoffended[~is_participant].mean()
    adjusted_gap = y0[usable].mean() - standardised[usable].mean()
    assert raw_gap > 0.05, "participants are a higher-risk group"
    assert abs(adjusted_gap) < 0.04, "observed covariates explain the difference"


# --- cohort files --------------------------------------------------------------------------


def test_cohort_files_carry_the_documented_noise(
    synth: SynthSummary, people: pd.DataFrame, truth: dict
) -> None:
    forenames = set(MALE_FORENAMES) | set(FEMALE_FORENAMES)
    surnames = set(SURNAMES)
    known = set(
        zip(
            people["forename"],
            people["surname"],
            people["date_of_birth"].dt.strftime("%Y-%m-%d"),
            people["sex"],
            strict=True,
        )
    )
    for cohort in synth.cohorts:
        frame = pd.read_csv(cohort.path, dtype=str, keep_default_na=False)
        facts = truth["cohorts"][cohort.name]
        assert list(frame.columns) == [
            "forename",
            "surname",
            "date_of_birth",
            "sex",
            "pnc_id",
            "intervention_start",
            "attendance",
            "strand",
        ]
        assert len(frame) == cohort.rows == facts["rows_submitted"]
        assert frame.duplicated().sum() == 1
        assert (frame["date_of_birth"] == "").sum() == 1
        assert frame["intervention_start"].str.fullmatch(r"31/02/\d{4}").sum() == 1
        assert (frame["sex"] == "X").sum() == 1
        assert set(frame["sex"]) == {"M", "F", "X"}
        assert frame["attendance"].astype(int).ge(1).all()
        blank_pnc = int(frame["pnc_id"].eq("").sum())
        outsiders = facts["rows_not_in_records"] + facts["rows_unusable"]
        assert 0 <= blank_pnc - facts["rows_missing_pnc_id"] - outsiders <= 1
        if cohort.name == "large":
            assert facts["rows_missing_pnc_id"] / cohort.planted_participants == pytest.approx(
                0.30, abs=0.05
            )
        assert frame["pnc_id"].replace("", np.nan).dropna().str.fullmatch(r"\d{4}/\d{7}[A-Z]").all()

        clean = frame["forename"].isin(forenames) & frame["surname"].isin(surnames)
        normalised_forename = frame["forename"].str.strip().str.title()
        normalised_surname = frame["surname"].str.strip().str.title().str.replace(" ", "-")
        restyled = (
            ~clean
            & normalised_forename.isin(forenames)
            & normalised_surname.isin({name.title() for name in surnames})
        )
        misspelt = ~clean & ~restyled
        identity = zip(
            frame["forename"], frame["surname"], frame["date_of_birth"], frame["sex"], strict=True
        )
        outside = clean & pd.Series([row not in known for row in identity], index=frame.index)
        assert misspelt.sum() == pytest.approx(facts["rows_with_name_typo"], abs=2)
        assert facts["rows_with_name_typo"] >= 1
        # The duplicated row may be one of the restyled or misspelt rows.
        assert 1 <= restyled.sum() <= facts["rows_with_name_formatting"] + 1
        assert outsiders <= outside.sum() <= outsiders + facts["rows_with_name_typo"]
    sizes = {cohort.name: cohort.rows for cohort in synth.cohorts}
    assert sizes["small"] < sizes["medium"] < sizes["large"]


def test_full_scale_cohorts_have_the_documented_sizes() -> None:
    layout = cohort_layout(pool=200_000, p=SynthParameters())
    rows = {name: planted + fabricated + 3 + 1 for name, (planted, fabricated) in layout.items()}
    assert rows == {"small": 80, "medium": 500, "large": 5_000}
    assert layout["large"][1] == 100, "about 2% of rows are people not in the records"


# --- determinism and input checks -----------------------------------------------------------


def _files(root: pathlib.Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_same_seed_same_bytes_different_seed_different_data(
    synth: SynthSummary, tmp_path: pathlib.Path
) -> None:
    again = generate(PEOPLE, tmp_path / "again", seed=SEED, parameters=_parameters())
    assert _files(again.out_dir) == _files(synth.out_dir)
    other = generate(PEOPLE, tmp_path / "other", seed=SEED + 1, parameters=_parameters())
    original, changed = _files(synth.out_dir), _files(other.out_dir)
    assert original.keys() == changed.keys()
    for name in ("national/people/part-00000.parquet", "cohorts/large.csv", "truth.json"):
        assert original[name] != changed[name]


def test_too_few_people_is_a_user_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(JdlUserError, match="too few people"):
        generate(100, tmp_path)


def test_progress_is_reported(tmp_path: pathlib.Path) -> None:
    messages: list[str] = []
    generate(3_000, tmp_path, seed=1, on_progress=messages.append)
    assert any("simulated careers" in message for message in messages)
    assert re.search(r"done in", messages[-1])


def test_a_period_without_room_for_follow_up_is_refused(tmp_path: pathlib.Path) -> None:
    late = dataclasses.replace(SynthParameters(), period_to=dt.date(2019, 6, 30))
    with pytest.raises(JdlUserError, match="1 year \\+ 6 months"):
        generate(PEOPLE, tmp_path, parameters=late)
