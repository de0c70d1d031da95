"""Synthetic employment and benefit spells: contract, structure and the planted employment effect.

Quantities are recomputed here from the written files with pandas, not with the generator's helpers.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jdl.synth import SynthParameters, SynthSummary, generate

PEOPLE = 30_000
PER_FILE = 12_000
SEED = 11


def _parameters() -> SynthParameters:
    return dataclasses.replace(SynthParameters(), people_per_file=PER_FILE)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> SynthSummary:
    return generate(PEOPLE, tmp_path_factory.mktemp("synth"), seed=SEED, parameters=_parameters())


def _read(paths: tuple[pathlib.Path, ...]) -> pd.DataFrame:
    frame = pa.concat_tables([pq.read_table(p) for p in paths]).to_pandas(date_as_object=False)
    for column in ("start_date", "end_date", "offence_date", "outcome_date", "release_date"):
        if column in frame:
            frame[column] = frame[column].astype("datetime64[ns]")
    return frame


@pytest.fixture(scope="module")
def employment(synth: SynthSummary) -> pd.DataFrame:
    return _read(synth.employment_files)


@pytest.fixture(scope="module")
def benefits(synth: SynthSummary) -> pd.DataFrame:
    return _read(synth.benefits_files)


def test_spell_tables_follow_the_contract_in_the_people_files_ranges(synth: SynthSummary) -> None:
    assert pq.read_schema(synth.employment_files[0]) == pa.schema(
        [("person_id", pa.int64()), ("start_date", pa.date32()), ("end_date", pa.date32())])
    assert pq.read_schema(synth.benefits_files[0]) == pa.schema(
        [("person_id", pa.int64()), ("benefit_type", pa.string()), ("start_date", pa.date32()),
         ("end_date", pa.date32())])
    assert len(synth.employment_files) == len(synth.people_files) == 3
    for spells_path, people_path in zip(synth.employment_files, synth.people_files, strict=True):
        ids = pq.read_table(spells_path).column("person_id").to_numpy()
        people_ids = pq.read_table(people_path).column("person_id").to_numpy()
        assert ids.min() >= people_ids.min() and ids.max() <= people_ids.max()
        assert (np.diff(ids) >= 0).all()


def test_spells_are_well_formed_and_jobs_never_overlap(employment: pd.DataFrame, benefits: pd.DataFrame) -> None:
    for frame in (employment, benefits):
        assert not (frame["end_date"] < frame["start_date"]).any()
        assert frame["start_date"].min() >= pd.Timestamp("2010-01-01")
        assert frame["start_date"].max() <= pd.Timestamp("2020-06-30")
        assert 0.02 < frame["end_date"].isna().mean() < 0.5  # some spells still open at extraction
    assert set(benefits["benefit_type"]) == {"out_of_work", "other"}
    jobs = employment.sort_values(["person_id", "start_date"])
    previous_end = jobs.groupby("person_id")["end_date"].shift()
    assert not (jobs["start_date"] <= previous_end).any()
    lengths = (jobs["end_date"] - jobs["start_date"]).dt.days.dropna()
    assert 60 < lengths.median() < 1_000  # months to years


def test_no_one_works_through_a_custodial_term(synth: SynthSummary, employment: pd.DataFrame) -> None:
    events = _read(synth.events_files)
    custody = events.loc[events["disposal"] == "custody", ["person_id", "outcome_date", "release_date"]]
    joined = employment.merge(custody, on="person_id")
    end = joined["end_date"].fillna(pd.Timestamp("2099-01-01"))
    assert not ((joined["start_date"] <= joined["release_date"]) & (end >= joined["outcome_date"])).any()


def test_more_offences_and_custody_mean_less_work(synth: SynthSummary, employment: pd.DataFrame) -> None:
    events = _read(synth.events_files)
    proven = events.loc[events["outcome_type"] != "pnd"].groupby("person_id").size()
    custody = events.loc[events["disposal"] == "custody"].groupby("person_id").size()
    people = pd.DataFrame({"person_id": np.arange(1, PEOPLE + 1)})
    people["offences"] = people["person_id"].map(proven).fillna(0)
    people["custody"] = people["person_id"].map(custody).fillna(0) > 0
    days = (employment["end_date"].fillna(pd.Timestamp("2020-06-30")) - employment["start_date"]).dt.days + 1
    people["days_worked"] = people["person_id"].map(days.groupby(employment["person_id"]).sum()).fillna(0)
    few = people.loc[people["offences"] <= 1, "days_worked"].mean()
    many = people.loc[people["offences"] >= 6, "days_worked"].mean()
    assert many < 0.8 * few
    assert people.loc[people["custody"], "days_worked"].mean() < people.loc[~people["custody"], "days_worked"].mean()


def test_truth_matches_the_written_spells_and_plants_about_five_points(
    synth: SynthSummary, employment: pd.DataFrame
) -> None:
    truth = json.loads(synth.truth_path.read_text())
    participants = pd.read_csv(synth.participants_path)
    participants["index_date"] = pd.to_datetime(participants["index_date"])
    joined = employment.merge(participants[["cohort", "person_id", "index_date"]], on="person_id")
    window_end = joined["index_date"] + pd.DateOffset(years=1)
    overlaps = (joined["start_date"] <= window_end) & (
        joined["end_date"].isna() | (joined["end_date"] > joined["index_date"]))
    employed = set(joined.loc[overlaps, "person_id"])
    for cohort, group in participants.groupby("cohort"):
        rate = group["person_id"].isin(employed).mean()
        assert rate == pytest.approx(truth["cohorts"][cohort]["employment"]["employment_rate_y1"], abs=1e-6)
    large = truth["cohorts"]["large"]["employment"]
    assert 0.03 < large["true_effect_employment_rate"] < 0.09
    assert large["employment_rate_y1"] == pytest.approx(
        large["employment_rate_y0"] + large["true_effect_employment_rate"], abs=1e-5)


def test_skipping_the_spell_tables_leaves_every_other_file_unchanged(
    synth: SynthSummary, tmp_path: pathlib.Path
) -> None:
    without = generate(PEOPLE, tmp_path / "without", seed=SEED, parameters=_parameters(), employment=False)
    assert without.employment_files == () and not (without.out_dir / "national" / "employment").exists()
    for ours, theirs in ((synth.people_files, without.people_files), (synth.events_files, without.events_files)):
        assert [p.read_bytes() for p in ours] == [p.read_bytes() for p in theirs]
    assert (synth.out_dir / "cohorts" / "large.csv").read_bytes() == (
        without.out_dir / "cohorts" / "large.csv").read_bytes()
    truth, bare = (json.loads(s.truth_path.read_text()) for s in (synth, without))
    assert "employment" in truth["cohorts"]["large"] and "employment" not in bare["cohorts"]["large"]
