"""The spell tables are read block by block like the events: other layouts give the same results.

CSV files, Parquet files in person_id ranges unlike the people table's, several blocks, and
events cut by date (the repartitioning fallback) all give the bytes of the layout `jdl synth`
writes (results.json up to the hash of the other spec file).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from jdl.engine import records
from tests.test_employment_pipeline import results_of, run_quietly, spell_spec

pytestmark = pytest.mark.slow
OUTPUTS = ("results.json", "rejects.csv", "matched.parquet", "balance.csv")


def _same_outputs(reference: Path, run: Path) -> None:
    """Byte-identical outputs; results.json may differ only in the hash of the (other) spec file."""
    for name in OUTPUTS[1:]:
        assert (reference / name).read_bytes() == (run / name).read_bytes(), name
    assert _without_spec_hash(results_of(reference)) == _without_spec_hash(results_of(run))


def _without_spec_hash(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_spec_hash(v) for k, v in value.items() if k != "spec_sha256"}
    if isinstance(value, list):
        return [_without_spec_hash(v) for v in value]
    return value


def _uneven_copy(synthetic_records: Path, target: Path, formats: tuple[str, str]) -> tuple[Path, Path]:
    """The spell tables in other files: CSV, or Parquet in person_id ranges unlike the people table's."""
    paths = []
    for table, fmt in zip(("employment", "benefits"), formats, strict=True):
        data = ds.dataset(synthetic_records / "national" / table).to_table()
        folder = target / table
        folder.mkdir(parents=True)
        ids = data.column("person_id")
        for part, (low, high) in enumerate([(0, 20_000), (20_000, 20_500), (20_500, 10**9)]):
            piece = data.filter(pc.and_(pc.greater_equal(ids, low), pc.less(ids, high)))
            if fmt == "csv":
                pacsv.write_csv(piece, folder / f"{part}.csv")
            else:
                pq.write_table(piece, folder / f"{part}.parquet", row_group_size=30_000)
        paths.append(folder)
    return paths[0], paths[1]


def test_other_layouts_of_the_spell_tables_give_identical_results(
    synthetic_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = run_quietly(spell_spec(tmp_path / "spec.yaml", synthetic_records, "medium"), tmp_path / "reference", None)
    assert reference["features"]["layout"].startswith("aligned")

    # people and events in person_id ranges that make several blocks; the spell tables in CSV files
    # whose ranges cut across the blocks'
    ranged = tmp_path / "ranged"
    (ranged / "national").mkdir(parents=True)
    shutil.copytree(synthetic_records / "cohorts", ranged / "cohorts")
    for table in ("people", "events"):
        data = ds.dataset(synthetic_records / "national" / table).to_table()
        ids = data.column("person_id")
        (ranged / "national" / table).mkdir()
        for part, (low, high) in enumerate([(0, 30_000), (30_000, 70_000), (70_000, 110_000), (110_000, 10**9)]):
            piece = data.filter(pc.and_(pc.greater_equal(ids, low), pc.less(ids, high)))
            pq.write_table(piece, ranged / "national" / table / f"{part}.parquet")
    employment, benefits = _uneven_copy(synthetic_records, tmp_path / "csv", ("csv", "parquet"))
    monkeypatch.setattr(records, "BLOCK_TARGET_ROWS", 100_000)  # several blocks, as at national scale
    spec = spell_spec(tmp_path / "csv.yaml", ranged, "medium", employment=employment, benefits=benefits)
    manifest = run_quietly(spec, tmp_path / "csv-run", None)
    assert manifest["features"]["layout"] == "aligned: 4 person_id blocks, no shuffle"
    _same_outputs(tmp_path / "reference", tmp_path / "csv-run")

    # events cut by date: the pass repartitions everything by person_id
    work = tmp_path / "by-date"
    (work / "national").mkdir(parents=True)
    shutil.copytree(synthetic_records / "cohorts", work / "cohorts")
    shutil.copytree(synthetic_records / "national" / "people", work / "national" / "people")
    events = ds.dataset(synthetic_records / "national" / "events").to_table()
    years = pc.year(events.column("outcome_date"))
    (work / "national" / "events").mkdir()
    for name, low, high in (("to-2012", 0, 2013), ("from-2013", 2013, 9999)):
        mask = pc.and_(pc.greater_equal(years, low), pc.less(years, high))
        pq.write_table(events.filter(mask), work / "national" / "events" / f"{name}.parquet")
    employment, benefits = _uneven_copy(synthetic_records, tmp_path / "parquet", ("parquet", "csv"))
    monkeypatch.setattr(records, "BLOCK_MAX_ROWS", 100_000)
    spec = spell_spec(tmp_path / "by-date.yaml", work, "medium", employment=employment, benefits=benefits)
    manifest = run_quietly(spec, tmp_path / "by-date-run", None, "--local-scheduler", "threads")
    assert manifest["features"]["layout"].startswith("not aligned")
    _same_outputs(tmp_path / "reference", tmp_path / "by-date-run")
