"""Scale benchmarks (pytest-benchmark): `jdl synth` and `jdl run` at 100k and 1M people.

    make bench                       # or: .venv/bin/pytest benchmarks/test_bench_scale.py --benchmark-enable
    JDL_BENCH_10M=1 make bench       # adds 10M people (about 5 minutes of synth, 11 GiB)

Each size is generated once per session. `cold` runs start from an empty
feature cache, `warm` ones reuse the cache a first run filled; `floor` is a
bare pyarrow scan of the columns a run needs. benchmarks/scaling.py prints the
same comparison as a markdown table, with peak memory and the pandas baseline.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from jdl.cli import main
from jdl.synth import generate

SIZES = [100_000, 1_000_000] + ([10_000_000] if os.environ.get("JDL_BENCH_10M") else [])
METHODOLOGY = Path(__file__).resolve().parents[1] / "configs" / "methodology" / "jdl-standard.yaml"


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"{n // 1000}k")
def records(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(f"scale_{request.param}")
    generate(request.param, out, seed=2013)
    return out


def _spec(records: Path, folder: Path) -> Path:
    path = folder / "spec.yaml"
    path.write_text(f"""spec_version: 1
id: bench-scale
title: Scale benchmark
organisation: Benchmark
extends: {METHODOLOGY}
data:
  national_records: {{people: {records / "national" / "people"}, events: {records / "national" / "events"}}}
  cohort: {records / "cohorts" / "large.csv"}
cohort:
  period: {{from: 2016-01-01, to: 2018-12-31}}
""")
    return path


@pytest.mark.parametrize("people", [100_000, 1_000_000])
def test_synth(benchmark, people: int, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    counter = itertools.count()
    benchmark.pedantic(lambda: generate(people, tmp_path / f"synth{next(counter)}", seed=2013), rounds=1,
                       iterations=1)


def test_scan_floor(benchmark, records: Path) -> None:  # type: ignore[no-untyped-def]
    def scan() -> int:
        return sum(ds.dataset(records / "national" / t, format="parquet").to_table().num_rows
                   for t in ("people", "events"))

    assert benchmark.pedantic(scan, rounds=2, iterations=1) > 0


def test_run_cold(benchmark, records: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(records, tmp_path)
    counter = itertools.count()

    def run() -> int:
        n = next(counter)
        return main(["run", str(spec), "--out", str(tmp_path / f"run{n}"), "--quiet",
                     "--cache-dir", str(tmp_path / f"cache{n}")])

    assert benchmark.pedantic(run, rounds=2, iterations=1) == 0


def test_run_warm(benchmark, records: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(records, tmp_path)
    cache = str(tmp_path / "cache")
    assert main(["run", str(spec), "--out", str(tmp_path / "first"), "--quiet", "--cache-dir", cache]) == 0
    counter = itertools.count()

    def run() -> int:
        return main(["run", str(spec), "--out", str(tmp_path / f"run{next(counter)}"), "--quiet",
                     "--cache-dir", cache])

    assert benchmark.pedantic(run, rounds=3, iterations=1) == 0
    assert (tmp_path / "run0" / "results.json").read_bytes() == (tmp_path / "first" / "results.json").read_bytes()
