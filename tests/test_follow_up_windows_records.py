"""One- and two-year windows on synthetic national records: same matched groups, outcomes recomputed from the events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from dateutil.relativedelta import relativedelta
from statsmodels.stats.multitest import multipletests

from jdl.cli import main
from jdl.engine import load_and_check
from jdl.engine.evaluation import StageClock
from jdl.engine.records import RecordsEvaluation

pytestmark = pytest.mark.slow

METHODOLOGY = Path(__file__).resolve().parents[1] / "configs" / "methodology" / "jdl-standard.yaml"
# The synthetic records end on 2020-06-30: two years and six months after 2017-12-31.
PERIOD_END = "2017-12-31"


def _spec(path: Path, records: Path, follow_up: str, *, period_end: str = PERIOD_END) -> Path:
    path.write_text(f"""spec_version: 1
id: windows-{path.stem}
title: Windows ({path.stem})
organisation: Window Trust
extends: {METHODOLOGY}
data:
  national_records:
    people: {records / "national" / "people"}
    events: {records / "national" / "events"}
  cohort: {records / "cohorts" / "medium.csv"}
cohort:
  period: {{from: 2016-01-01, to: {period_end}}}
outcomes:
  follow_up: {follow_up}
""")
    return path


def _evaluate(spec: Path) -> tuple[RecordsEvaluation, pd.DataFrame, dict[str, Any]]:
    """The unit frame (one row per person, every outcome column) and the results of one evaluation."""
    evaluation = RecordsEvaluation(load_and_check(spec), StageClock())
    frame, covariates, outcomes = evaluation.prepare()
    return evaluation, frame, evaluation.match_and_estimate(frame, covariates, outcomes)


@pytest.fixture(scope="module")
def one_window(synthetic_records: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ...]:
    return _evaluate(_spec(tmp_path_factory.mktemp("windows") / "one.yaml", synthetic_records, "1y"))


@pytest.fixture(scope="module")
def two_windows(synthetic_records: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ...]:
    return _evaluate(_spec(tmp_path_factory.mktemp("windows") / "two.yaml", synthetic_records, "[1y, 2y]"))


def _recomputed(events_folder: Path, people: pd.DataFrame, years: int) -> pd.DataFrame:
    """DESIGN.md §1 written out again: proven reoffences in (index, index + years], proven within 6 more months."""
    events = pd.read_parquet(events_folder, columns=["person_id", "offence_date", "outcome_date", "outcome_type"])
    for column in ("offence_date", "outcome_date"):
        events[column] = pd.to_datetime(events[column])
    ends = {day: pd.Timestamp(day) + relativedelta(years=years) for day in pd.unique(people["index_date"])}
    joined = events.loc[events["outcome_type"].isin(["court_conviction", "caution"])].merge(
        people[["person_id", "index_date"]], on="person_id"
    )
    end = joined["index_date"].map(ends)
    proven_by = end.map(lambda day: day + relativedelta(months=6))
    counted = joined.loc[(joined["offence_date"] > joined["index_date"]) & (joined["offence_date"] <= end)
                         & (joined["outcome_date"] <= proven_by)]
    counts = counted.groupby("person_id").size().reindex(people["person_id"], fill_value=0)
    return pd.DataFrame({"rate": (counts > 0).astype(float).to_numpy(), "frequency": counts.astype(float).to_numpy()},
                        index=people.index)


def test_each_persons_two_year_outcomes_equal_a_recomputation_from_the_events(
    two_windows: tuple[Any, ...], synthetic_records: Path
) -> None:
    _, frame, _ = two_windows
    for years, suffix in ((1, ""), (2, "_2y")):
        expected = _recomputed(synthetic_records / "national" / "events", frame, years)
        assert frame[f"reoffending_rate{suffix}"].to_numpy() == pytest.approx(expected["rate"].to_numpy(), abs=0)
        assert frame[f"reoffending_frequency{suffix}"].to_numpy() == pytest.approx(
            expected["frequency"].to_numpy(), abs=0
        )
    # a real test: the second year adds reoffenders, for participants and the pool alike
    for treated in (True, False):
        group = frame.loc[frame["treated"] == treated]
        assert group["reoffending_rate_2y"].mean() > group["reoffending_rate"].mean() + 0.05


def test_two_years_never_count_less_than_one_person_by_person(two_windows: tuple[Any, ...]) -> None:
    _, frame, _ = two_windows
    for column in ("reoffending_rate", "reoffending_frequency", "custody_rate", "custody_frequency"):
        assert (frame[f"{column}_2y"] >= frame[column]).all(), column
    reoffended_in_one_year = frame["reoffending_rate"] == 1
    # an earliest offence in the first year is still the earliest: the same day unless a first-year offence
    # proven after the first waiting period comes earlier still
    assert (frame.loc[reoffended_in_one_year, "days_to_first_reoffence_2y"]
            <= frame.loc[reoffended_in_one_year, "days_to_first_reoffence"]).all()


def test_both_windows_are_measured_on_the_same_matched_groups(
    one_window: tuple[Any, ...], two_windows: tuple[Any, ...]
) -> None:
    one, one_frame, one_results = one_window
    two, two_frame, two_results = two_windows

    pd.testing.assert_frame_equal(one.matched, two.matched)
    pd.testing.assert_frame_equal(one.balance, two.balance)
    assert one_results["n"] == two_results["n"]
    pd.testing.assert_frame_equal(one_frame, two_frame[one_frame.columns])
    unchanged = ("treatment", "comparison", "difference", "se", "ci_low", "ci_high", "p_value", "suppressed")
    for name, measure in one_results["measures"].items():
        assert {k: measure[k] for k in unchanged} == {k: two_results["measures"][name][k] for k in unchanged}
        assert "follow_up" not in measure and "column" not in measure
        assert two_results["measures"][name]["follow_up"] == "1y"
        assert two_results["measures"][f"{name}_2y"]["follow_up"] == "2y"
        assert two_results["measures"][f"{name}_2y"]["column"] == name
    assert "follow_up_windows" not in one_results["method"]
    assert two_results["method"]["follow_up"] == "1y"
    assert two_results["method"]["follow_up_windows"] == ["1y", "2y"]
    assert two_results["primary"] == one_results["primary"] == "reoffending_rate"


def test_multiplicity_adjusts_every_measure_in_every_window(two_windows: tuple[Any, ...]) -> None:
    _, _, results = two_windows
    measures = results["measures"]
    secondary = [name for name in measures if name != "reoffending_rate"]
    assert len(measures) == 16 and len(secondary) == 15
    raw = np.array([measures[name]["p_value"] for name in secondary])
    assert not np.isnan(raw).any()
    holm = multipletests(raw, method="holm")[1]
    for name, adjusted in zip(secondary, holm, strict=True):
        assert measures[name]["multiplicity"]["family_size"] == 15
        assert measures[name]["p_value_adjusted"] == pytest.approx(adjusted, rel=1e-12)
    assert measures["reoffending_rate"]["multiplicity"]["family"] == "primary"
    assert measures["reoffending_rate"]["p_value_adjusted"] == measures["reoffending_rate"]["p_value"]


def test_reoffender_measures_and_curves_use_their_own_window(two_windows: tuple[Any, ...]) -> None:
    evaluation, frame, results = two_windows
    matched_treated = evaluation.matched.loc[evaluation.matched["treated"], "person_id"]
    treated_rows = frame.loc[frame["person_id"].isin(matched_treated)]
    for suffix in ("", "_2y"):
        days = results["measures"][f"days_to_first_reoffence{suffix}"]
        assert days["n_treatment"] == int((treated_rows[f"reoffending_rate{suffix}"] == 1).sum())
    curves = results["inference"]["time_to_first_reoffence"]
    assert curves["follow_up"] == "2y"
    last_day = max(curves["curves"]["treatment"]["time"])
    assert 365 < last_day <= 731


def test_a_run_writes_both_windows_and_a_warm_cache_gives_the_same_bytes(
    synthetic_records: Path, tmp_path: Path
) -> None:
    spec = _spec(tmp_path / "run.yaml", synthetic_records, "[1y, 2y]")
    assert main(["run", str(spec), "--out", str(tmp_path / "cold"), "--quiet"]) == 0
    assert main(["run", str(spec), "--out", str(tmp_path / "warm"), "--quiet"]) == 0
    manifest = json.loads((tmp_path / "warm" / "manifest.json").read_text())
    assert manifest["features"]["cache"] == "hit"
    assert (tmp_path / "cold" / "results.json").read_bytes() == (tmp_path / "warm" / "results.json").read_bytes()
    report = (tmp_path / "cold" / "report.md").read_text()
    assert "| Measure | Follow-up | Units |" in report
    assert "| Proven reoffending rate | 1 year |" in report and "| Proven reoffending rate | 2 years |" in report
    assert "The two-year proven reoffending rate for Window Trust participants" in report


def test_the_records_must_cover_the_longest_window(
    synthetic_records: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path / "late.yaml", synthetic_records, "[1y, 2y]", period_end="2018-12-31")
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "cohort.period.to" in error
    assert "needs records until 2021-06-30" in error
    assert "the longest follow-up window 2y of outcomes.follow_up" in error
    assert "a period ending by 2017-12-31" in error
