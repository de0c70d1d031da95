"""`jdl reproduce` end to end: an untouched run reproduces; a changed event, spec key or recorded
package version each makes it fail with a message naming that cause.

One recorded run (on a private copy of the events, so one event can be changed) and one re-run per
test: about six runs on the 150k-person session records.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jdl.cli import main
from tests.conftest import write_spec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recorded(synthetic_records: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    work = tmp_path_factory.mktemp("reproduce")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JDL_CACHE_DIR", str(work / "cache"))
        events = work / "events"
        shutil.copytree(synthetic_records / "national" / "events", events)
        spec = write_spec(work / "spec.yaml", synthetic_records, cohort="medium")
        spec.write_text(spec.read_text().replace(str(synthetic_records / "national" / "events"), str(events)))
        run = work / "run"
        assert main(["run", str(spec), "--out", str(run), "--quiet"]) == 0
        yield {"work": work, "spec": spec, "run": run, "events": events}


def _copy_run(recorded: dict[str, Path], name: str) -> Path:
    copy = recorded["work"] / name
    shutil.copytree(recorded["run"], copy)
    return copy


def _reproduce(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["reproduce", "--quiet", *args])
    return status, capsys.readouterr().out


def test_an_untouched_run_reproduces(recorded: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rerun = recorded["work"] / "rerun-untouched"
    status, out = _reproduce([str(recorded["run"]), "--out", str(rerun)], capsys)
    assert status == 0, out
    assert out.startswith("REPRODUCED: the re-run's results.json is byte-identical")
    assert "still resolves to the recorded spec" in out
    assert (rerun / "results.json").read_bytes() == (recorded["run"] / "results.json").read_bytes()


def test_a_different_recorded_package_version_is_named(recorded: dict[str, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    run = _copy_run(recorded, "run-old-numpy")
    manifest = json.loads((run / "manifest.json").read_text())
    current = manifest["packages"]["numpy"]
    manifest["packages"]["numpy"] = "1.26.4"
    (run / "manifest.json").write_text(json.dumps(manifest))
    status, out = _reproduce([str(run), "--out", str(recorded["work"] / "rerun-numpy")], capsys)
    assert status == 1
    assert "NOT REPRODUCED: results.json is byte-identical, but the re-run did not use the recorded inputs" in out
    assert f"numpy: '1.26.4' -> '{current}'" in out
    assert "Data:" not in out and "Spec:" not in out


def test_a_changed_spec_key_is_named_with_the_numbers_it_moved(
    recorded: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    spec = recorded["spec"]
    original = spec.read_text()
    try:
        spec.write_text(original + "matching:\n  ratio: 1\n  replace: false\n")
        # The recorded spec still reproduces; the edited file on disk is reported.
        status, out = _reproduce([str(recorded["run"]), "--out", str(recorded["work"] / "rerun-a")], capsys)
        assert status == 0, out
        assert "now differs from the recorded spec (2 key(s))" in out
        assert "matching.ratio: 5 -> 1" in out and "matching.replace: true -> false" in out
        # Re-running the spec file as it is now does not, and says why.
        rerun = recorded["work"] / "rerun-current-spec"
        status, out = _reproduce([str(recorded["run"]), "--current-spec", "--out", str(rerun)], capsys)
    finally:
        spec.write_text(original)
    assert status == 1
    assert "NOT REPRODUCED: the re-run's results.json differs" in out
    assert "- Spec: 2 key(s) of the spec re-run (spec file" in out
    assert "matching.ratio: 5 -> 1" in out
    assert "- Data:" not in out and "- Software:" not in out
    assert "n.comparison:" in out  # 1:1 without replacement: fewer comparison people
    assert f"jdl diff {recorded['run']} {rerun}" in out


def test_diff_of_the_recorded_run_and_the_changed_spec_run(
    recorded: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rerun = recorded["work"] / "rerun-current-spec"
    if not (rerun / "results.json").is_file():
        pytest.skip("needs the re-run of the previous test")
    assert main(["diff", str(recorded["run"]), str(rerun)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "-  ratio: 5" in lines and "+  ratio: 1" in lines and "+  replace: false" in lines
    assert "The input data are identical" in out
    assert any(line.startswith("reoffending_rate") and "comparison" in line for line in out.splitlines())


def _one_proven_reoffence(events_dir: Path, run: Path) -> tuple[Path, int]:
    """(file, row) of the only proven reoffence of a matched participant with exactly one."""
    matched = pd.read_parquet(run / "matched.parquet")
    treated = matched.loc[matched["treated"], ["person_id", "index_date"]]
    for part in sorted(events_dir.glob("*.parquet")):
        events = pd.read_parquet(part).reset_index(drop=True)
        events["row"] = range(len(events))
        joined = events.merge(treated, on="person_id")
        index = pd.to_datetime(joined["index_date"])
        window_end = index + pd.DateOffset(years=1)
        proven = joined.loc[
            joined["outcome_type"].isin(["court_conviction", "caution"])
            & (pd.to_datetime(joined["offence_date"]) > index)
            & (pd.to_datetime(joined["offence_date"]) <= window_end)
            & (pd.to_datetime(joined["outcome_date"]) <= window_end + pd.DateOffset(months=6))
        ]
        counts = proven.groupby("person_id")["row"].agg(["count", "min"])
        single = counts.loc[counts["count"] == 1].sort_index()
        if len(single):
            return part, int(single["min"].iloc[0])
    raise AssertionError("no participant with exactly one proven reoffence")


def test_a_changed_event_is_named_with_the_numbers_it_moved(
    recorded: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    part, row = _one_proven_reoffence(recorded["events"], recorded["run"])
    original = part.read_bytes()
    table = pq.read_table(part)
    frame = table.to_pandas()
    frame.loc[row, "outcome_type"] = "pnd"  # a penalty notice is not a proven reoffence
    frame.loc[row, "disposal"] = "pnd"
    try:
        pq.write_table(pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False), part)
        status, out = _reproduce([str(recorded["run"]), "--out", str(recorded["work"] / "rerun-data")], capsys)
    finally:
        part.write_bytes(original)
    assert status == 1
    assert "NOT REPRODUCED: the re-run's results.json differs" in out
    assert f"events: {part} changed content" in out
    assert "- Spec:" not in out and "- Software:" not in out
    assert "measures.reoffending_rate.treatment:" in out
    moved = next(line for line in out.splitlines() if "measures.reoffending_rate.treatment:" in line)
    assert "percentage points" in moved


def test_a_folder_without_a_completed_run_is_bad_input(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", str(tmp_path / "nowhere")]) == 2
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "manifest.json").write_text(json.dumps(
        {"resolved_spec": {}, "inputs": {}, "packages": {}}))
    assert main(["reproduce", str(tmp_path / "half")]) == 2
    assert "has no results.json: the run did not complete" in capsys.readouterr().err
