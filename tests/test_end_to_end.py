"""End to end on synthetic national records with a planted programme effect."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from dateutil.relativedelta import relativedelta

from jdl.cli import main
from tests.conftest import write_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def large_run(synthetic_records: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("large_run")
    spec = write_spec(work / "spec.yaml", synthetic_records, cohort="large")
    status = main(["run", str(spec), "--out", str(work / "run"), "--quiet"])
    assert status == 0
    return work / "run"


def test_run_writes_every_output(large_run: Path) -> None:
    for name in ("results.json", "manifest.json", "report.html", "report.md", "balance.csv",
                 "matched.parquet", "rejects.csv", "run.log"):
        assert (large_run / name).is_file(), name
    assert not list(large_run.glob(".staging-*"))


def test_matched_estimate_recovers_the_planted_effect_and_naive_does_not(
    large_run: Path, truth: dict
) -> None:
    results = json.loads((large_run / "results.json").read_text())
    planted = truth["cohorts"]["large"]["true_effect_rate"]
    headline = results["measures"]["reoffending_rate"]
    assert headline["ci_low"] <= planted <= headline["ci_high"], (headline, planted)
    naive = results["naive"]["reoffending_rate"]["difference"]
    assert not headline["ci_low"] <= naive <= headline["ci_high"], (naive, headline)
    after = {row["covariate"]: row["smd_after"] for row in results["balance"]}
    assert max(abs(v) for v in after.values() if v is not None) < 0.1


def _proven_reoffender(events: pd.DataFrame, index_date: pd.Timestamp) -> bool:
    """DESIGN.md §1 written out directly: an offence in (index, index + 1 year], proven within 6 more months."""
    end = (index_date + relativedelta(years=1))
    proven_by = end + relativedelta(months=6)
    for event in events.itertuples():
        if event.outcome_type not in ("court_conviction", "caution"):
            continue
        if index_date < event.offence_date <= end and event.outcome_date <= proven_by:
            return True
    return False


def test_treatment_rate_equals_the_rate_computed_from_the_events(
    large_run: Path, synthetic_records: Path
) -> None:
    matched = pd.read_parquet(large_run / "matched.parquet")
    treated = matched.loc[matched["treated"]]
    events = pd.read_parquet(synthetic_records / "national" / "events")
    for column in ("offence_date", "outcome_date"):
        events[column] = pd.to_datetime(events[column])
    events = events.loc[events["person_id"].isin(treated["person_id"])]
    by_person = dict(tuple(events.groupby("person_id")))
    flags = [
        _proven_reoffender(by_person.get(row.person_id, events.iloc[:0]), pd.Timestamp(row.index_date))
        for row in treated.itertuples()
    ]
    expected = sum(flags) / len(flags)
    results = json.loads((large_run / "results.json").read_text())
    assert results["measures"]["reoffending_rate"]["treatment"] == pytest.approx(expected, abs=1e-12)
    assert results["n"]["treatment"] == len(treated)


def test_same_spec_twice_gives_identical_results(large_run: Path, tmp_path: Path) -> None:
    manifest = json.loads((large_run / "manifest.json").read_text())
    again = tmp_path / "again"
    assert main(["run", manifest["spec_path"], "--out", str(again), "--quiet"]) == 0
    assert (again / "results.json").read_bytes() == (large_run / "results.json").read_bytes()
    assert (again / "report.html").read_bytes() == (large_run / "report.html").read_bytes()


def test_outputs_carry_no_names_or_dates_of_birth(large_run: Path, synthetic_records: Path) -> None:
    people = pd.read_parquet(synthetic_records / "national" / "people",
                             columns=["person_id", "forename", "surname", "date_of_birth"])
    matched = pd.read_parquet(large_run / "matched.parquet")
    assert not {"forename", "surname", "date_of_birth"} & set(matched.columns)
    cohort = pd.read_csv(synthetic_records / "cohorts" / "large.csv", dtype=str)
    texts = "".join((large_run / name).read_text() for name in
                    ("results.json", "report.html", "report.md", "rejects.csv", "run.log", "balance.csv",
                     "manifest.json")).upper()
    matched_people = people.loc[people["person_id"].isin(matched["person_id"])]
    full_names = {f"{f} {s}".upper() for f, s in zip(matched_people["forename"], matched_people["surname"],
                                                     strict=True)}
    full_names |= {f"{f} {s}".upper() for f, s in zip(cohort["forename"].fillna(""),
                                                      cohort["surname"].fillna(""), strict=True)}
    assert not [name for name in full_names if name in texts]
    birth_dates = set(cohort["date_of_birth"].dropna()) | {str(d) for d in matched_people["date_of_birth"]}
    assert not [d for d in birth_dates if d in texts]


def test_too_few_matched_people_exits_1_and_keeps_attrition(synthetic_records: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", synthetic_records, cohort="small",
                      extra="matching:\n  caliper: {width: 0.0001, scale: absolute}\n")
    status = main(["run", str(spec), "--out", str(tmp_path / "run"), "--quiet"])
    assert status == 1
    assert (tmp_path / "run" / "attrition.json").is_file()
    assert (tmp_path / "run" / "rejects.csv").is_file()
    assert not (tmp_path / "run" / "results.json").exists()


def test_cli_bad_input_is_a_clean_exit_2(synthetic_records: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", synthetic_records,
                      extra="matching:\n  method: nearest_neighbor\n")
    done = subprocess.run([sys.executable, "-m", "jdl.cli", "run", str(spec)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "matching.method" in done.stderr and "nearest_neighbour" in done.stderr


def test_missing_column_in_events_is_named(synthetic_records: Path, tmp_path: Path) -> None:
    events = pd.read_parquet(synthetic_records / "national" / "events").drop(columns=["severity"])
    broken = tmp_path / "events.parquet"
    events.to_parquet(broken)
    spec = write_spec(tmp_path / "spec.yaml", synthetic_records)
    spec.write_text(spec.read_text().replace(str(synthetic_records / "national" / "events"), str(broken)))
    done = subprocess.run([sys.executable, "-m", "jdl.cli", "run", str(spec)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert "severity" in done.stderr and "Traceback" not in done.stderr


def test_sensitivity_subgroups_and_curves_in_record_mode(synthetic_records: Path, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "spec.yaml", synthetic_records, cohort="large",
        extra=("estimator: {sensitivity: {placebo_outcome: prior_year_reoffending}}\n"
               "subgroups:\n  - {by: sex}\n  - {by: attendance, bands: [6]}\n"),
    )
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    inference = results["inference"]
    assert inference["placebo"]["outcome"] == "prior_year_reoffending"
    assert inference["rosenbaum"]["gamma_critical"] > 1
    assert inference["e_value"]["e_value"] > 1
    curves = inference["time_to_first_reoffence"]["curves"]
    # fewer participants than comparisons have reoffended by the end of the window
    assert curves["treatment"]["survival"][-1] > curves["comparison"]["survival"][-1]
    levels = {(s["by"], s["level"]) for s in results["subgroups"]}
    assert {("sex", "M"), ("attendance", "under 6"), ("attendance", "6 and over")} <= levels
    by_attendance = [s for s in results["subgroups"] if s["by"] == "attendance"]
    # a cohort column splits participants only: each level is matched against the whole pool
    assert sum(s["n_treatment"] for s in by_attendance) <= results["n"]["treatment"]
    assert "prior_year_reoffending" not in results["method"]["covariates"]
    assert "Sensitivity" in (tmp_path / "run" / "report.html").read_text()
