"""The same spec on a real dask.distributed cluster: a `dask scheduler` and two `dask worker` processes.

The cluster runs on 127.0.0.1 on free ports and is torn down even when a test
fails; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jdl.engine import records
from jdl.engine.run import run_evaluation
from tests.conftest import write_spec

pytestmark = pytest.mark.slow
DASK = str(Path(sys.executable).with_name("dask"))
START_TIMEOUT = 60.0
COHORT = "medium"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Cluster:
    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    logs = tmp_path / "cluster-logs"
    logs.mkdir()
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    processes: list[subprocess.Popen] = []
    try:
        processes.append(subprocess.Popen(
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
             "--dashboard-address", ":0", "--no-show"],
            stdout=subprocess.DEVNULL, stderr=(logs / "scheduler.log").open("w"), env=env,
        ))
        for n in range(2):
            # no nanny: a killed worker stays dead, as a lost machine would
            processes.append(subprocess.Popen(
                [DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--name", f"w{n}", "--local-directory", str(tmp_path / f"w{n}")],
                stdout=subprocess.DEVNULL, stderr=(logs / f"worker{n}.log").open("w"), env=env,
            ))
        with Client(address, timeout=START_TIMEOUT, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT)
        yield Cluster(address, processes[0], processes[1:])
    finally:
        for process in reversed(processes):
            _stop(process)


def _spec(synthetic_records: Path, tmp_path: Path) -> Path:
    return write_spec(tmp_path / "spec.yaml", synthetic_records, cohort=COHORT)


def test_a_distributed_cluster_gives_byte_identical_results(
    cluster: Cluster, synthetic_records: Path, tmp_path: Path
) -> None:
    spec = _spec(synthetic_records, tmp_path)
    local = run_evaluation(spec, out_dir=tmp_path / "local", use_cache=False)
    remote = run_evaluation(spec, out_dir=tmp_path / "remote", use_cache=False, scheduler=cluster.address)
    assert local.exit_status == remote.exit_status == 0
    manifest = json.loads((tmp_path / "remote" / "manifest.json").read_text())
    assert manifest["executor"] == f"distributed:{cluster.address} (2 workers, 2 threads)"
    for name in ("results.json", "rejects.csv", "matched.parquet"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "remote" / name).read_bytes(), name


def test_a_worker_lost_mid_run_is_survived(
    cluster: Cluster, synthetic_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client

    spec = _spec(synthetic_records, tmp_path)
    assert run_evaluation(spec, out_dir=tmp_path / "reference", use_cache=False, local_scheduler="threads").exit_status == 0
    monkeypatch.setattr(records, "BLOCK_TARGET_ROWS", 60_000)  # many blocks: the pass outlives the kill
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["run"] = run_evaluation(spec, out_dir=tmp_path / "run", use_cache=False,
                                            scheduler=cluster.address)
        except BaseException as error:  # reported by the assertion below
            outcome["error"] = error

    killed = None
    with Client(cluster.address, timeout=START_TIMEOUT, set_as_default=False) as observer:
        pids = observer.run(os.getpid)
        runner = threading.Thread(target=run, daemon=True)
        runner.start()
        deadline = time.monotonic() + 120
        while killed is None and runner.is_alive() and time.monotonic() < deadline:
            busy = {w: keys for w, keys in observer.processing().items()
                    if any("features-block" in str(k) for k in keys)}
            if busy:
                victim = sorted(busy)[0]
                os.kill(pids[victim], signal.SIGKILL)
                killed = victim
            time.sleep(0.02)
    runner.join(timeout=300)
    assert killed is not None, "the pass finished before a worker could be killed"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["run"].exit_status == 0  # type: ignore[attr-defined]
    assert cluster.workers[0].poll() is not None or cluster.workers[1].poll() is not None
    assert (tmp_path / "run" / "results.json").read_bytes() == (tmp_path / "reference" / "results.json").read_bytes()


def test_losing_every_worker_of_a_task_is_an_incomplete_run_with_a_clear_message() -> None:
    from distributed import KilledWorker

    from jdl.engine.run import _lost_workers

    failure = _lost_workers(KilledWorker("features-block-3-abc", "tcp://10.0.0.7:4001", 3))  # type: ignore[arg-type]
    assert failure is not None and failure.exit_status == 1
    assert "features-block-3-abc was lost with every worker that ran it" in failure.render()
    assert _lost_workers(ValueError("a bug")) is None


def test_an_unreachable_scheduler_is_a_clear_error(synthetic_records: Path, tmp_path: Path) -> None:
    spec = _spec(synthetic_records, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "jdl.cli", "run", str(spec), "--out", str(tmp_path / "run"),
         "--scheduler", f"tcp://127.0.0.1:{_free_port()}"],
        capture_output=True, text=True, timeout=180, env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"},
    )
    assert done.returncode == 2, done.stderr
    assert "cannot reach a Dask scheduler" in done.stderr and "within 3s" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "run" / "results.json").exists()
