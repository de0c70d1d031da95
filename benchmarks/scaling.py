"""Scaling of `jdl synth` and `jdl run` with the number of people; prints a markdown table.

    .venv/bin/python benchmarks/scaling.py                       # 100k, 1M and 10M people
    .venv/bin/python benchmarks/scaling.py --sizes 100000 1000000 --schedulers processes threads

For each size it generates synthetic national records once (kept in
--data-dir), then times, each in a fresh process:
  - cold: `jdl run` of the `large` cohort (5,000 rows) with an empty feature cache;
  - warm: the same run again, with the cache the cold run filled;
  - floor: a bare pyarrow scan of the columns the run needs (all of both tables);
  - pandas: benchmarks/pandas_baseline.py, whole tables in one process (sizes up to --pandas-max).
Peak memory is the largest sum of the resident memory of the process and all its
children (Dask workers included), sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
METHODOLOGY = ROOT / "configs" / "methodology" / "jdl-standard.yaml"
SCAN_FLOOR = """
import sys, time, pyarrow.dataset as ds
started = time.perf_counter()
rows = 0
for table in ("events", "people"):
    rows += ds.dataset(sys.argv[1] + "/national/" + table, format="parquet").to_table().num_rows
print(rows)
"""


@dataclass
class Measured:
    seconds: float
    peak_bytes: int
    output: str = ""


@dataclass
class Row:
    people: int
    synth: Measured | None = None
    cold: dict[str, Measured] = field(default_factory=dict)
    warm: dict[str, Measured] = field(default_factory=dict)
    floor: Measured | None = None
    pandas: Measured | None = None


def measure(command: list[str], *, env: dict[str, str] | None = None) -> Measured:
    """Wall time and peak resident memory of a command's whole process tree."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})})
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                members = [root, *root.children(recursive=True)]
                total = 0
                for member in members:
                    with contextlib.suppress(psutil.Error):
                        total += member.memory_info().rss
                peak = max(peak, total)
            except psutil.Error:
                pass
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{err[-3000:]}")
    return Measured(seconds, peak, out)


def write_spec(path: Path, data: Path) -> Path:
    path.write_text(f"""spec_version: 1
id: scaling-{data.name}
title: Scaling benchmark ({data.name})
organisation: Benchmark
extends: {METHODOLOGY}
data:
  national_records:
    people: {data / "national" / "people"}
    events: {data / "national" / "events"}
  cohort: {data / "cohorts" / "large.csv"}
cohort:
  period: {{from: 2016-01-01, to: 2018-12-31}}
""")
    return path


def gib(value: int) -> str:
    return f"{value / 2**30:.1f}"


def run_size(people: int, args: argparse.Namespace, work: Path) -> Row:
    row = Row(people)
    data = args.data_dir / f"people-{people}"
    if not (data / "truth.json").exists():
        shutil.rmtree(data, ignore_errors=True)
        row.synth = measure([str(BIN / "jdl"), "synth", "--people", str(people), "--out", str(data), "--quiet"])
        print(f"synth {people:,}: {row.synth.seconds:.1f} s, peak {gib(row.synth.peak_bytes)} GiB", file=sys.stderr)
    spec = write_spec(work / f"spec-{people}.yaml", data)
    row.floor = measure([sys.executable, "-c", SCAN_FLOOR, str(data)])
    for scheduler in args.schedulers:
        cache = work / f"cache-{people}-{scheduler}"
        for label, target in (("cold", row.cold), ("warm", row.warm)):
            out = work / f"run-{people}-{scheduler}-{label}"
            target[scheduler] = measure(
                [str(BIN / "jdl"), "run", str(spec), "--out", str(out), "--quiet", "--cache-dir", str(cache),
                 "--local-scheduler", scheduler])
            manifest = json.loads((out / "manifest.json").read_text())
            print(f"{label} {people:,} ({scheduler}): {target[scheduler].seconds:.1f} s, peak "
                  f"{gib(target[scheduler].peak_bytes)} GiB; stages {manifest['timings_seconds']}",
                  file=sys.stderr)
        first = work / f"run-{people}-{args.schedulers[0]}-cold" / "results.json"
        again = work / f"run-{people}-{scheduler}-warm" / "results.json"
        if first.read_bytes() != again.read_bytes():
            raise RuntimeError(f"results differ between {first} and {again}")
    if people <= args.pandas_max:
        row.pandas = measure([sys.executable, str(HERE / "pandas_baseline.py"), str(spec)])
        engine = json.loads((work / f"run-{people}-{args.schedulers[0]}-cold" / "results.json").read_text())
        baseline = json.loads(row.pandas.output)
        if abs(baseline["difference"] - engine["measures"][baseline["measure"]]["difference"]) > 1e-12:
            raise RuntimeError(f"the pandas baseline disagrees with the engine: {baseline}")
    return row


def table(rows: list[Row], schedulers: list[str]) -> str:
    main = schedulers[0]
    lines = [
        "| people | synth s | cold s | warm s | peak GiB (cold) | floor s | cold / floor | pandas s | cold / pandas |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        cold, warm = row.cold[main], row.warm[main]
        floor = row.floor.seconds if row.floor else float("nan")
        pandas = f"{row.pandas.seconds:.1f}" if row.pandas else "–"
        ratio = f"{cold.seconds / row.pandas.seconds:.2f}" if row.pandas else "–"
        synth = f"{row.synth.seconds:.1f}" if row.synth else "(kept)"
        lines.append(
            f"| {row.people:,} | {synth} | {cold.seconds:.1f} | {warm.seconds:.1f} | {gib(cold.peak_bytes)} "
            f"| {floor:.1f} | {cold.seconds / floor:.1f} | {pandas} | {ratio} |"
        )
    if len(schedulers) > 1:
        lines += ["", "| people | " + " | ".join(f"cold s ({s})" for s in schedulers) + " |",
                  "|---:|" + "---:|" * len(schedulers)]
        for row in rows:
            lines.append(f"| {row.people:,} | " + " | ".join(f"{row.cold[s].seconds:.1f}" for s in schedulers) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "jdl-scaling")
    parser.add_argument("--schedulers", nargs="+", default=["processes"],
                        choices=["processes", "threads", "synchronous"],
                        help="local schedulers to time (the first one fills the main table)")
    parser.add_argument("--pandas-max", type=int, default=1_000_000,
                        help="largest size for the whole-table pandas baseline")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="jdl-scaling-") as scratch:
        for people in args.sizes:
            rows.append(run_size(people, args, Path(scratch)))
    load = os.getloadavg()
    print(table(rows, args.schedulers))
    print(f"\n{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB; load average at the end "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


if __name__ == "__main__":
    main()
