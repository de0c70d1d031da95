"""`jdl batch`: many specs, failures isolated, deterministic summaries; every example spec runs.

The example specs in configs/examples point at data/synthetic; here they are copied with their data
paths rewritten to the session's synthetic records, and run once, in one batch.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest

from jdl.batch import collect_specs, run_batch
from jdl.cli import main

REPOSITORY = Path(__file__).resolve().parents[1]
CONFIGS = REPOSITORY / "configs"
BROKEN = """spec_version: 1
id: broken-spec
title: A spec with a misspelt matching method
organisation: Nobody
extends: {methodology}
data:
  national_records: {{people: people.parquet, events: events.parquet}}
  cohort: cohort.csv
cohort:
  period: {{from: 2016-01-01, to: 2018-12-31}}
matching:
  method: nearest_neighbor
"""


def _read_summary(folder: Path) -> list[dict[str, str]]:
    with (folder / "summary.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _copy_configs(target: Path, records: Path) -> Path:
    """configs/ with the examples' data paths pointing at `records` (and table data at the repository)."""
    shutil.copytree(CONFIGS / "methodology", target / "methodology")
    examples = target / "examples"
    examples.mkdir()
    for spec in sorted((CONFIGS / "examples").glob("*.yaml")):
        text = spec.read_text().replace("data/synthetic/", f"{records}/")
        text = text.replace("configs/examples/data/", f"{CONFIGS / 'examples' / 'data'}/")
        (examples / spec.name).write_text(text)
    return examples


def _broken(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "broken.yaml"
    path.write_text(BROKEN.format(methodology=CONFIGS / "methodology" / "jdl-standard.yaml"))
    return path


# ---------------------------------------------------------------- fast: no engine


def _valid_spec(folder: Path, name: str, extends: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"""spec_version: 1
id: {name}
title: {name}
organisation: Org {name}
extends: {extends}
data:
  national_records: {{people: p, events: e}}
  cohort: c.csv
cohort:
  period: {{from: 2016-01-01, to: 2018-12-31}}
""")
    return path


def test_folders_are_searched_recursively_and_bases_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "specs" / "nested").mkdir(parents=True)
    (tmp_path / "specs" / "methodology").mkdir()
    shutil.copy(CONFIGS / "methodology" / "jdl-standard.yaml", tmp_path / "specs" / "methodology")
    b = _valid_spec(tmp_path / "specs" / "nested", "b", "../methodology/jdl-standard.yaml")
    a = _valid_spec(tmp_path / "specs", "a", "methodology/jdl-standard.yaml")
    specs, skipped = collect_specs([tmp_path / "specs", a])
    assert specs == [a, b]
    assert skipped == [tmp_path / "specs" / "methodology" / "jdl-standard.yaml"]


def test_a_missing_path_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "out")]) == 2
    assert "no such spec file or folder" in capsys.readouterr().err


def test_a_failing_evaluation_does_not_stop_the_others(tmp_path: Path) -> None:
    methodology = str(CONFIGS / "methodology" / "jdl-standard.yaml")
    specs = [_valid_spec(tmp_path, name, methodology) for name in ("first", "crashes", "last")]
    ran: list[str] = []

    def fake_run(spec_path: Path, run_dir: Path, scheduler: str | None) -> tuple[Any, int, str]:
        ran.append(spec_path.stem)
        assert scheduler == "tcp://shared:8786"
        if spec_path.stem == "crashes":
            raise RuntimeError("disk on fire")
        run_dir.mkdir(parents=True)
        results = {"primary": "rate", "measures": {"rate": {"display": "percent", "label": "Rate",
                   "treatment": 0.4, "comparison": 0.5, "difference": -0.1, "ci_low": -0.15,
                   "ci_high": -0.05, "p_value": 0.001, "significant": True, "suppressed": False,
                   "lower_is_better": True}}, "n": {"treatment": 100}, "organisation": "Org"}
        (run_dir / "results.json").write_text("{}")
        return results, 0, ""

    outcome = run_batch(specs, tmp_path / "out", scheduler="tcp://shared:8786", run_spec=fake_run)
    assert ran == ["first", "crashes", "last"]
    assert [e.status for e in outcome.entries] == ["complete", "failed", "complete"]
    assert "internal error RuntimeError: disk on fire" in outcome.entries[1].message
    assert (tmp_path / "out" / "crashes" / "traceback.txt").is_file()
    assert outcome.exit_status == 1
    rows = _read_summary(tmp_path / "out")
    assert [r["id"] for r in rows] == ["first", "crashes", "last"]
    assert rows[0]["difference"] == "-0.1" and rows[0]["run_dir"] == "first"
    assert rows[0]["results_sha256"] == hashlib.sha256(b"{}").hexdigest()


# ---------------------------------------------------------------- slow: real runs


@pytest.fixture(scope="module")
def examples(synthetic_records: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_configs(tmp_path_factory.mktemp("configs"), synthetic_records)


@pytest.fixture(scope="module")
def example_batch(examples: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    work = tmp_path_factory.mktemp("example_batch")
    broken = _broken(work / "broken")
    # beside the examples, so that its relative `extends` finds the copied methodology
    cannot_complete = examples.parent / "strict" / "too-strict.yaml"
    cannot_complete.parent.mkdir()
    cannot_complete.write_text(
        (examples / "small-charity.yaml").read_text().replace("id: small-charity-2016-18", "id: too-strict")
        + "  caliper: {width: 0.0001, scale: absolute}\n"
    )
    out = work / "out"
    status = main(["batch", str(examples), str(broken), str(cannot_complete), "--out", str(out), "--quiet"])
    return status, out


@pytest.mark.slow
def test_every_example_spec_runs_and_failures_are_reported(examples: Path,
                                                           example_batch: tuple[int, Path]) -> None:
    status, out = example_batch
    rows = {row["spec"].rsplit("/", 1)[-1]: row for row in _read_summary(out)}
    example_names = sorted(p.name for p in examples.glob("*.yaml"))
    assert len(example_names) >= 10
    for name in example_names:
        row = rows[name]
        assert row["status"] == "complete", (name, row["error"])
        assert float(row["ci_low"]) <= float(row["difference"]) <= float(row["ci_high"])
        results = out / row["run_dir"] / "results.json"
        assert hashlib.sha256(results.read_bytes()).hexdigest() == row["results_sha256"]
    assert rows["broken.yaml"]["status"] == "failed" and rows["broken.yaml"]["exit_status"] == "2"
    assert "matching.method" in rows["broken.yaml"]["error"]
    assert "nearest_neighbour" in rows["broken.yaml"]["error"]
    assert rows["too-strict.yaml"]["status"] == "incomplete"
    assert rows["too-strict.yaml"]["exit_status"] == "1"
    assert "could be matched" in rows["too-strict.yaml"]["error"]
    assert status == 2  # bad input among the failures


@pytest.mark.slow
def test_the_examples_cover_organisations_regions_sizes_and_methods(example_batch: tuple[int, Path]) -> None:
    _, out = example_batch
    rows = [r for r in _read_summary(out) if r["status"] == "complete"]
    assert len({r["organisation"] for r in rows}) == len(rows)
    assert {"small.csv", "medium.csv", "large.csv", "lalonde.csv"} <= _cohorts_used(out, rows)
    methods = " | ".join(r["matching"] for r in rows)
    assert {"nearest_neighbour", "subclass", "exact"} <= {r["matching"].split(";")[0] for r in rows}
    for expected in ("nearest_neighbour; 1:1; without replacement", "1:3; with replacement",
                     "caliper 0.1 logit_sd", "caliper 0.25 sd", "exact on sex, index_disposal"):
        assert expected in methods, expected
    assert any(";" in r["comparison_regions"] for r in rows)  # a list of regions
    assert {"1y", "2y"} <= {r["follow_up"] for r in rows}
    html = (out / "summary.html").read_text()
    assert html.count("<svg") >= 2  # rate headlines and at least one other measure
    assert all(r["id"] in html for r in rows)


def _cohorts_used(out: Path, rows: list[dict[str, str]]) -> set[str]:
    import json

    names = set()
    for row in rows:
        manifest = json.loads((out / row["run_dir"] / "manifest.json").read_text())
        data = manifest["resolved_spec"]["data"]
        names.add(Path(data.get("cohort") or data.get("table")).name)
    return names


@pytest.mark.slow
def test_the_same_batch_twice_gives_identical_summaries(examples: Path, tmp_path: Path) -> None:
    broken = _broken(tmp_path / "broken")
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        assert main(["batch", str(examples / "small-charity.yaml"), str(broken), "--out", str(out),
                     "--quiet"]) == 2
    for name in ("summary.csv", "summary.html"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    html = (outs[0] / "summary.html").read_text()
    assert "<svg" in html and "Second Chance Trust" in html and "broken-spec" not in html.split("<svg")[1]
    rows = _read_summary(outs[0])
    assert [r["status"] for r in rows] == ["complete", "failed"]
