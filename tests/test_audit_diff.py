"""`jdl diff` on hand-made run directories: method (spec, data, software) and results tables."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from jdl.audit.canonical import canonical_json
from jdl.audit.compare import flatten, key_changes, result_changes
from jdl.audit.reproduce import recorded_spec_is_intact
from jdl.cli import main

SPEC: dict[str, Any] = {
    "id": "example",
    "matching": {"method": "nearest_neighbour", "ratio": 5, "replace": True,
                 "caliper": {"width": 0.2, "scale": "logit_sd"}},
    "covariates": [{"name": "age_at_index", "window": None}, {"name": "prior_cautions", "window": "2y"}],
    "outcomes": {"follow_up": "1y"},
}
RESULTS: dict[str, Any] = {
    "primary": "reoffending_rate",
    "n": {"submitted": 500, "linked": 480, "treatment": 400, "comparison": 2000},
    "measures": {
        "reoffending_frequency": {"display": "per_100", "treatment": 1.2, "comparison": 1.5,
                                  "difference": -0.3, "ci_low": -0.5, "ci_high": -0.1, "p_value": 0.003,
                                  "significant": True, "n_treatment": 400, "n_comparison": 2000},
        "reoffending_rate": {"display": "percent", "treatment": 0.40, "comparison": 0.45,
                             "difference": -0.05, "ci_low": -0.10, "ci_high": 0.0, "p_value": 0.05,
                             "significant": False, "n_treatment": 400, "n_comparison": 2000},
    },
    "balance": [{"covariate": "age_at_index", "kind": "numeric", "smd_after": 0.02, "flag": "good"},
                {"covariate": "prior_cautions_2y", "kind": "numeric", "smd_after": 0.12,
                 "flag": "imbalanced"}],
}


def _write_run(folder: Path, spec: dict[str, Any], results: dict[str, Any], *,
               events_sha: str = "a" * 64, numpy: str = "2.4.6") -> Path:
    folder.mkdir(parents=True)
    manifest = {
        "run_id": folder.name, "spec_path": "spec.yaml", "resolved_spec": spec,
        "spec_sha256": "0" * 64, "packages": {"numpy": numpy, "jdl": "0.1.0"},
        "platform": {"python": "3.11.7"},
        "inputs": {"events": {"sha256": events_sha, "files": {"events/part-0.parquet": events_sha}}},
    }
    (folder / "manifest.json").write_text(canonical_json(manifest))
    (folder / "results.json").write_text(canonical_json(results))
    return folder


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    spec_b = copy.deepcopy(SPEC)
    spec_b["matching"]["ratio"] = 1
    spec_b["covariates"][1]["window"] = "5y"
    results_b = copy.deepcopy(RESULTS)
    results_b["n"]["comparison"] = 400
    results_b["measures"]["reoffending_rate"].update(comparison=0.48, difference=-0.08, ci_low=-0.13,
                                                     ci_high=-0.03, p_value=0.002, significant=True)
    a = _write_run(tmp_path / "a", SPEC, RESULTS)
    b = _write_run(tmp_path / "b", spec_b, results_b, events_sha="b" * 64, numpy="2.5.0")
    return a, b


def test_text_diff_shows_method_and_results(two_runs: tuple[Path, Path],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_runs
    assert main(["diff", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "matching.ratio: 5 -> 1" in out
    assert "covariates[prior_cautions].window: '2y' -> '5y'" in out
    assert "-  ratio: 5\n+  ratio: 1\n" in out  # the unified YAML diff
    assert "events: events/part-0.parquet changed content" in out
    assert "numpy: '2.4.6' -> '2.5.0'" in out
    rate_lines = [line.split() for line in out.splitlines() if line.startswith("reoffending_rate ")]
    assert rate_lines[0] == ["reoffending_rate", "treatment", "40.00%", "40.00%", "="]
    assert ["reoffending_rate", "comparison", "45.00%", "48.00%", "+3.00", "pp"] in rate_lines
    assert ["reoffending_rate", "difference", "-5.00", "pp", "-8.00", "pp", "-3.00", "pp"] in rate_lines
    assert ["reoffending_rate", "significant", "no", "yes", "differs"] in rate_lines
    assert ["comparison", "2000", "400", "-1600"] in [line.split() for line in out.splitlines()]
    assert "A max |SMD| 0.12, 1 imbalanced" in out


def test_json_diff_is_machine_readable(two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_runs
    assert main(["diff", str(a), str(b), "--format", "json", "--exit-code"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["differs"] is True
    assert {c["key"] for c in report["method"]["spec_changes"]} == {
        "matching.ratio", "covariates[prior_cautions].window"}
    assert report["method"]["input_changes"] == [
        {"table": "events", "path": "events/part-0.parquet", "a": "a" * 64, "b": "b" * 64}]
    difference = next(r for r in report["results"]["measures"]
                      if r["measure"] == "reoffending_rate" and r["field"] == "difference")
    assert difference["a"] == -0.05 and difference["b"] == -0.08
    assert difference["change"] == pytest.approx(-0.03)
    assert report["results"]["balance"]["summary"]["a"]["imbalanced"] == 1
    assert {"covariate": "prior_cautions_2y", "a": 0.12, "b": 0.12, "change": 0.0, "same": True} in \
        report["results"]["balance"]["covariates"]
    assert {"count": "comparison", "a": 2000, "b": 400, "change": -1600.0, "same": False} in \
        report["results"]["n"]


def test_a_run_diffed_with_itself_shows_no_differences(two_runs: tuple[Path, Path],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = two_runs
    assert main(["diff", str(a), str(a), "--exit-code"]) == 0
    out = capsys.readouterr().out
    assert "The resolved specs are identical." in out and "results.json is byte-identical." in out


def test_a_folder_that_is_not_a_run_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["diff", str(tmp_path / "empty"), str(tmp_path / "missing")]) == 2
    assert "manifest.json: not found" in capsys.readouterr().err


def test_result_changes_name_the_moved_numbers_headline_first() -> None:
    after = copy.deepcopy(RESULTS)
    after["measures"]["reoffending_rate"]["treatment"] = 0.41
    after["measures"]["reoffending_frequency"]["treatment"] = 1.3
    changes = result_changes(RESULTS, after)
    assert [c.key for c in changes] == ["measures.reoffending_rate.treatment",
                                        "measures.reoffending_frequency.treatment"]
    assert "0.4 -> 0.41" in changes[0].render() and "+1.00 percentage points" in changes[0].render()


def test_named_lists_are_compared_by_name() -> None:
    before = {"covariates": [{"name": "a", "window": None}, {"name": "b", "window": "2y"}]}
    after = {"covariates": [{"name": "b", "window": "2y"}, {"name": "c", "window": None}]}
    assert flatten(before) == {"covariates[a].window": None, "covariates[b].window": "2y"}
    assert [c.render() for c in key_changes(before, after)] == [
        "covariates[a].window: removed (was null)", "covariates[c].window: added, null"]


def test_the_recorded_spec_hash_detects_an_edited_manifest() -> None:
    import hashlib

    spec = {"id": "x", "matching": {"ratio": 5}}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert recorded_spec_is_intact({"resolved_spec": spec, "spec_sha256": digest})
    edited = {"id": "x", "matching": {"ratio": 1}}
    assert not recorded_spec_is_intact({"resolved_spec": edited, "spec_sha256": digest})
