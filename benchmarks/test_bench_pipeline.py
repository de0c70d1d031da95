"""End-to-end timings: `jdl synth` and `jdl run` on synthetic national records.

Run with `make bench`. The baseline for ratios is the bare pyarrow scan of the
events columns a run needs, measured in the same session.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
import pytest
from tests.conftest import write_spec

from jdl.cli import main
from jdl.synth import generate

PEOPLE = 200_000


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench_records")
    generate(PEOPLE, out, seed=11)
    return out


def test_synth(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    counter = iter(range(1000))
    benchmark.pedantic(lambda: generate(PEOPLE, tmp_path / f"synth{next(counter)}", seed=11), rounds=2,
                       iterations=1)


def test_scan_floor(benchmark, records: Path) -> None:  # type: ignore[no-untyped-def]
    """The floor: reading the events columns a run needs with pyarrow alone."""
    dataset = ds.dataset(records / "national" / "events", format="parquet")
    benchmark.pedantic(lambda: dataset.to_table(), rounds=3, iterations=1)


def test_run_large_cohort(benchmark, records: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(tmp_path / "spec.yaml", records, cohort="large")
    counter = iter(range(1000))
    result = benchmark.pedantic(
        lambda: main(["run", str(spec), "--out", str(tmp_path / f"run{next(counter)}"), "--quiet"]),
        rounds=2, iterations=1,
    )
    assert result == 0
