"""The national pass at scale: the same bytes whatever the layout, scheduler or cache state.

Every run here uses the session's synthetic records (150k people) and its own
cache folder, and compares results.json byte for byte with a reference run.
"""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from jdl.cli import main
from jdl.engine import pool as pool_pass
from jdl.engine import records
from jdl.engine.run import run_evaluation
from jdl.sources.cache import FeatureCache
from tests.conftest import write_spec

pytestmark = pytest.mark.slow
COHORT = "medium"
OUTPUTS = ("results.json", "rejects.csv", "matched.parquet", "balance.csv")


def _run(spec: Path, out: Path, cache: Path | None, *extra: str) -> dict:
    args = ["run", str(spec), "--out", str(out), "--quiet"]
    args += ["--cache-dir", str(cache)] if cache is not None else ["--no-cache"]
    assert main([*args, *extra]) == 0
    return json.loads((out / "manifest.json").read_text())


def _same_outputs(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _records_copy(source: Path, target: Path) -> Path:
    """A records folder whose cohorts are the session's (national tables are written by the caller)."""
    (target / "national").mkdir(parents=True)
    shutil.copytree(source / "cohorts", target / "cohorts")
    return target


def _write_ranges(table: pa.Table, folder: Path, edges: list[int], row_group_size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ids = table.column("person_id")
    for part, (low, high) in enumerate(itertools.pairwise(edges)):
        mask = pc.and_(pc.greater_equal(ids, low), pc.less(ids, high))
        pq.write_table(table.filter(mask), folder / f"chunk-{part:03d}.parquet", row_group_size=row_group_size)


@dataclass(frozen=True)
class Layouts:
    """One spec whose national folders are rewritten in other layouts (the spec's bytes stay the same)."""

    spec: Path
    national: Path
    reference: Path  # the run on the layout `jdl synth` writes, with no cache
    people: pa.Table
    events: pa.Table

    def rewrite(self) -> tuple[Path, Path]:
        for table in ("people", "events"):
            shutil.rmtree(self.national / table, ignore_errors=True)
            (self.national / table).mkdir(parents=True)
        return self.national / "people", self.national / "events"


@pytest.fixture(scope="module")
def layouts(synthetic_records: Path, tmp_path_factory: pytest.TempPathFactory) -> Layouts:
    work = tmp_path_factory.mktemp("scale_layouts")
    copy = _records_copy(synthetic_records, work / "records")
    for table in ("people", "events"):
        shutil.copytree(synthetic_records / "national" / table, copy / "national" / table)
    spec = write_spec(work / "spec.yaml", copy, cohort=COHORT)
    manifest = _run(spec, work / "reference", None)
    assert manifest["features"]["layout"].startswith("aligned")
    return Layouts(spec, copy / "national", work / "reference",
                   ds.dataset(synthetic_records / "national" / "people").to_table(),
                   ds.dataset(synthetic_records / "national" / "events").to_table())


def test_other_person_ranges_and_row_groups_give_identical_results(
    layouts: Layouts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = int(pc.max(layouts.people.column("person_id")).as_py()) + 1
    edges = [0, 9_000, 31_000, 32_000, 70_000, 101_000, 140_000, top]  # 7 uneven ranges
    people, events = layouts.rewrite()
    _write_ranges(layouts.people, people, edges, row_group_size=7_000)
    _write_ranges(layouts.events, events, [*edges[::2], top], row_group_size=25_000)
    monkeypatch.setattr(records, "BLOCK_TARGET_ROWS", 100_000)  # several blocks, as at national scale
    manifest = _run(layouts.spec, tmp_path / "run", tmp_path / "cache")
    assert manifest["features"]["layout"] == "aligned: 4 person_id blocks, no shuffle"
    _same_outputs(layouts.reference, tmp_path / "run")


def test_events_cut_by_date_are_repartitioned_by_person_with_identical_results(
    layouts: Layouts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people, events = layouts.rewrite()
    years = pc.year(layouts.events.column("outcome_date"))
    for name, low, high in (("to-2009", 0, 2010), ("2010-2015", 2010, 2016), ("from-2016", 2016, 9999)):
        mask = pc.and_(pc.greater_equal(years, low), pc.less(years, high))
        pq.write_table(layouts.events.filter(mask), events / f"{name}.parquet")
    order = np.random.default_rng(5).permutation(layouts.people.num_rows)
    pq.write_table(layouts.people.take(pa.array(order)), people / "shuffled.parquet", row_group_size=40_000)
    # at this size one block could hold everything; a national table could not
    monkeypatch.setattr(records, "BLOCK_MAX_ROWS", 100_000)
    monkeypatch.setattr(records, "BLOCK_TARGET_ROWS", 150_000)
    manifest = _run(layouts.spec, tmp_path / "run", None, "--local-scheduler", "threads")
    assert manifest["features"]["layout"].startswith("not aligned: repartitioned by person_id into")
    _same_outputs(layouts.reference, tmp_path / "run")


def test_csv_national_records_give_the_same_results_as_parquet(layouts: Layouts, tmp_path: Path) -> None:
    people, events = layouts.rewrite()
    options = pacsv.WriteOptions(quoting_style="needed")
    for table, folder in ((layouts.people, people), (layouts.events, events)):
        half = table.num_rows // 2
        pacsv.write_csv(table.slice(0, half), folder / "a.csv", options)
        pacsv.write_csv(table.slice(half), folder / "b.csv", options)
    manifest = _run(layouts.spec, tmp_path / "run", None)
    assert manifest["features"]["layout"].startswith("not aligned")
    _same_outputs(layouts.reference, tmp_path / "run")


def test_warm_cache_gives_identical_outputs_without_reading_the_events(
    synthetic_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_spec(tmp_path / "spec.yaml", synthetic_records, cohort=COHORT)
    cache = tmp_path / "cache"
    cold = _run(spec, tmp_path / "cold", cache)
    assert cold["features"]["cache"] == "miss, stored"
    assert cold["features"]["participants_cache"] == "miss, stored"

    def no_reading(*_: object, **__: object) -> None:
        raise AssertionError("a warm run must not read the national events")

    for stage in ("_compute_pass", "_linked_rows", "_link"):
        monkeypatch.setattr(records.RecordsEvaluation, stage, no_reading)
    warm = _run(spec, tmp_path / "warm", cache)
    assert warm["features"]["cache"] == "hit" and warm["features"]["participants_cache"] == "hit"
    _same_outputs(tmp_path / "cold", tmp_path / "warm")
    monkeypatch.undo()

    # another cohort on the same records: the pool is reused, the participants are computed
    other = write_spec(tmp_path / "other.yaml", synthetic_records, cohort="large")
    fresh = _run(other, tmp_path / "other_cold", None)
    reused = _run(other, tmp_path / "other_warm", cache)
    assert fresh["features"]["cache"] == "off"
    assert reused["features"]["cache"] == "hit" and reused["features"]["participants_cache"] == "miss, stored"
    _same_outputs(tmp_path / "other_cold", tmp_path / "other_warm")


def test_a_changed_definition_or_input_misses_the_cache(synthetic_records: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spec = write_spec(tmp_path / "spec.yaml", synthetic_records, cohort="small")
    _run(spec, tmp_path / "first", cache)
    assert len(FeatureCache(cache).entries()) == 2  # the pool's table and the participants'
    longer = write_spec(tmp_path / "longer.yaml", synthetic_records, cohort="small",
                        extra="covariates: [age_at_index, sex, prior_cautions, {name: prior_proven_offences, "
                              "window: 2y}]\n")
    assert _run(longer, tmp_path / "longer", cache)["features"]["cache"] == "miss, stored"

    copy = _records_copy(synthetic_records, tmp_path / "records")
    shutil.copytree(synthetic_records / "national" / "people", copy / "national" / "people")
    shutil.copytree(synthetic_records / "national" / "events", copy / "national" / "events")
    part = copy / "national" / "events" / "part-00000.parquet"
    table = pq.read_table(part)
    pq.write_table(table.slice(0, table.num_rows - 1), part)  # one event fewer
    changed = write_spec(tmp_path / "changed.yaml", copy, cohort="small")
    assert _run(changed, tmp_path / "changed", cache)["features"]["cache"] == "miss, stored"
    assert main(["cache", "clear", "--cache-dir", str(cache)]) == 0
    assert FeatureCache(cache).entries() == []
    assert not (cache / "fingerprints").exists()


def test_an_interrupted_run_leaves_no_results_and_no_cache_entry(
    synthetic_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pool_pass, "combine", interrupted)
    spec = write_spec(tmp_path / "spec.yaml", synthetic_records, cohort="small")
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(spec, out_dir=tmp_path / "run", cache_dir=tmp_path / "cache", local_scheduler="threads")
    assert not (tmp_path / "run" / "results.json").exists()
    assert not list((tmp_path / "run").glob(".staging-*"))
    assert FeatureCache(tmp_path / "cache").entries() == []
