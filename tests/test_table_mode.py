"""Table mode: one row per unit, covariates and outcomes as plain columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jdl.cli import main

TRUE_EFFECT = 1500.0


def make_study(path: Path, *, seed: int = 3, n: int = 3000) -> pd.DataFrame:
    """Confounded selection on age, education and a category; a planted effect on earnings."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 55, n)
    educ = rng.integers(6, 17, n).astype(float)
    group = rng.choice(["a", "b", "c"], n)
    logit = -1.5 - 0.06 * (age - 30) + 0.25 * (educ - 11) + np.where(group == "c", 0.8, 0.0)
    treat = rng.random(n) < 1 / (1 + np.exp(-logit))
    earnings = 2000 + 500 * educ - 150 * (age - 30) + np.where(group == "c", 2000, 0) + rng.normal(0, 2500, n)
    earnings = earnings + TRUE_EFFECT * treat
    employed = (rng.random(n) < np.clip(0.3 + 0.02 * (educ - 11) + 0.1 * treat, 0, 1)).astype(int)
    frame = pd.DataFrame({"unit": np.arange(1, n + 1), "treat": treat.astype(int), "age": age, "educ": educ,
                          "group": group, "earnings": earnings, "employed": employed})
    frame.to_csv(path, index=False)
    return frame


def write_table_spec(path: Path, table: Path, extra: str = "") -> Path:
    path.write_text(f"""spec_version: 1
id: table-study
title: A table-mode study
organisation: Study Team
data: {{table: {table}, id: unit, treatment: treat}}
covariates: [age, educ, group]
matching: {{method: nearest_neighbour, ratio: 1, replace: true, caliper: {{width: 0.2}}}}
outcomes:
  measures: [{{name: earnings, lower_is_better: false, label: Annual earnings}}, employed]
  primary: earnings
{extra}""")
    return path


def test_table_mode_recovers_a_planted_effect(tmp_path: Path) -> None:
    data = make_study(tmp_path / "study.csv")
    spec = write_table_spec(tmp_path / "spec.yaml", tmp_path / "study.csv")
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    earnings = results["measures"]["earnings"]
    assert earnings["display"] == "value" and earnings["kind"] == "continuous"
    assert earnings["ci_low"] <= TRUE_EFFECT <= earnings["ci_high"]
    naive = results["naive"]["earnings"]["difference"]
    assert not earnings["ci_low"] <= naive <= earnings["ci_high"]
    assert results["measures"]["employed"]["display"] == "percent"
    assert results["n"]["submitted"] == int(data["treat"].sum())
    matched = pd.read_parquet(tmp_path / "run" / "matched.parquet")
    assert "unit" in matched.columns
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Annual earnings" in html and "higher" in html


def test_rows_with_missing_values_go_to_rejects(tmp_path: Path) -> None:
    data = make_study(tmp_path / "study.csv")
    data.loc[[4, 9], "educ"] = np.nan
    data.to_csv(tmp_path / "study.csv", index=False)
    spec = write_table_spec(tmp_path / "spec.yaml", tmp_path / "study.csv")
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    rejects = pd.read_csv(tmp_path / "run" / "rejects.csv")
    assert list(rejects["row_number"]) == [6, 11]
    assert set(rejects["reason"]) == {"missing value in educ"}


def test_non_binary_treatment_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_study(tmp_path / "study.csv")
    data.loc[3, "treat"] = 2
    data.to_csv(tmp_path / "study.csv", index=False)
    spec = write_table_spec(tmp_path / "spec.yaml", tmp_path / "study.csv")
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "treat" in err and "not binary" in err and "0/1" in err


def test_missing_columns_are_all_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_study(tmp_path / "study.csv")
    spec = write_table_spec(tmp_path / "spec.yaml", tmp_path / "study.csv")
    spec.write_text(spec.read_text().replace("[age, educ, group]", "[age, educ, region, income]"))
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'region'" in err and "'income'" in err and "allowed: unit, treat, age" in err


def test_lalonde_example_spec_reproduces_matchit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example spec gives MatchIt 4.5's 1:1 nearest-neighbour ATT and cluster-robust SE on Lalonde."""
    repo = Path(__file__).resolve().parents[1]
    reference = pd.read_csv(repo / "tests" / "reference" / "matchit" / "summary.csv")
    expected = reference.loc[reference["variant"] == "nearest_1to1"].iloc[0]
    spec = repo / "configs" / "examples" / "lalonde-nsw.yaml"
    monkeypatch.chdir(repo)
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    re78 = results["measures"]["re78"]
    assert re78["difference"] == pytest.approx(expected["effect"], rel=1e-6)
    assert re78["se"] == pytest.approx(expected["se_cluster"], rel=1e-6)
    balance = pd.read_csv(tmp_path / "run" / "balance.csv")
    assert {"age", "educ", "raceblack", "racehispan", "racewhite"} & set(balance["covariate"])
    assert "Earnings in 1978" in (tmp_path / "run" / "report.html").read_text()


def test_subgroups_are_rematched_and_gated(tmp_path: Path) -> None:
    make_study(tmp_path / "study.csv", n=6000)
    spec = write_table_spec(
        tmp_path / "spec.yaml", tmp_path / "study.csv",
        extra="subgroups:\n  - {by: group}\n  - {by: age, bands: [25, 40]}\n  - {by: educ, bands: [10], min_size: 5000}\n",
    )
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    subgroups = {(s["by"], s["level"]): s for s in results["subgroups"]}
    assert set(subgroups) == {("group", "a"), ("group", "b"), ("group", "c"),
                              ("age", "under 25"), ("age", "25 to under 40"), ("age", "40 and over"),
                              ("educ", "under 10"), ("educ", "10 and over")}
    reported = [s for s in subgroups.values() if s["status"] == "reported"]
    assert reported, subgroups
    for entry in reported:
        # the effect is the same in every subgroup: each interval should cover it
        assert entry["primary"]["ci_low"] <= TRUE_EFFECT <= entry["primary"]["ci_high"], entry
        assert entry["max_abs_smd_after"] <= 0.10
    # a level below its minimum size says so, with no numbers
    small = subgroups[("educ", "under 10")]
    assert small["status"] == "not_reported" and "minimum 5000" in small["reason"]
    assert small["primary"] is None


def test_placebo_outcome_in_table_mode(tmp_path: Path) -> None:
    data = make_study(tmp_path / "study.csv")
    # an outcome measured before treatment: driven by the covariates only
    rng = np.random.default_rng(11)
    data["earnings_before"] = 1000 + 500 * data["educ"] - 150 * (data["age"] - 30) + rng.normal(0, 2500, len(data))
    data.to_csv(tmp_path / "study.csv", index=False)
    spec = write_table_spec(tmp_path / "spec.yaml", tmp_path / "study.csv",
                            extra="estimator: {sensitivity: {placebo_outcome: earnings_before}}\n")
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    placebo = json.loads((tmp_path / "run" / "results.json").read_text())["inference"]["placebo"]
    assert placebo["outcome"] == "earnings_before"
    assert placebo["ci_low"] <= 0 <= placebo["ci_high"]
    assert placebo["consistent_with_no_effect"] is True
