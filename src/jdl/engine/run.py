"""One run: load and check the spec, run its mode's stages, write the run directory."""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hashlib
import importlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask

from jdl.audit import RunWriter, canonical_json, git_state, package_versions, platform_facts
from jdl.engine.checks import load_and_check
from jdl.engine.evaluation import Evaluation, StageClock
from jdl.engine.progress import current_client
from jdl.engine.records import RecordsEvaluation
from jdl.engine.table import TableEvaluation
from jdl.errors import EvaluationCannotComplete, JdlUserError
from jdl.sources.cache import FeatureCache
from jdl.spec import LoadedSpec, canonical_spec_json, spec_sha256

log = logging.getLogger("jdl")


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    results: dict[str, Any] | None
    exit_status: int
    message: str


def _run_id(spec_hash: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{spec_hash[:8]}"


# Dask's local execution when no cluster is given: chosen by measurement on the 2-core, 24 GiB
# reference machine (benchmarks/scaling.py --schedulers threads processes, cold runs of the large
# cohort): threads 6.7 s / 12.0 s / 90.8 s at 100k / 1M / 10M people, a LocalCluster of two
# worker processes 7.8 s / 16.2 s / 99.3 s, with a higher peak memory (8.9 against 8.1 GiB at 10M).
# Arrow and most pandas kernels release the GIL, so threads keep both cores busy without the
# cost of pickling the blocks' results and starting workers.
LOCAL_SCHEDULERS = ("processes", "threads", "synchronous")
DEFAULT_LOCAL_SCHEDULER = "threads"
LOCAL_SCHEDULER_ENV = "JDL_LOCAL_SCHEDULER"
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


class _SharedLocalCluster:
    """One LocalCluster per process, started on first use: a batch or a test session pays its
    start-up (about two seconds) once. Closed when the process exits."""

    def __init__(self) -> None:
        self.cluster: Any = None
        self.client: Any = None

    def get(self) -> Any:
        if self.client is not None and self.client.status == "running" and self.cluster.status.name == "running":
            return self.client
        self.close()
        from distributed import Client, LocalCluster

        workers = local_worker_count()
        self.cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
        self.client = Client(self.cluster, set_as_default=False)
        atexit.register(self.close)
        # Workers import the pass's modules while this process reads the cohort and fingerprints.
        for address in self.client.scheduler_info(n_workers=-1)["workers"]:
            self.client.submit(importlib.import_module, "jdl.engine.pool", workers=[address], pure=False,
                               key=f"warm-up-{address}")
        return self.client

    def close(self) -> None:
        client, cluster, self.client, self.cluster = self.client, self.cluster, None, None
        with contextlib.suppress(Exception):
            if client is not None:
                client.close()
        with contextlib.suppress(Exception):
            if cluster is not None:
                cluster.close()


_LOCAL_CLUSTER = _SharedLocalCluster()


def local_worker_count() -> int:
    """One worker process per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _connect(address: str) -> Any:
    """A client of the scheduler at `address`; waits as long as dask's connect timeout (30 s by
    default; DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT)."""
    from distributed import Client

    timeout = dask.config.get("distributed.comm.timeouts.connect")
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise JdlUserError.single(
            "--scheduler",
            f"cannot reach a Dask scheduler there within {timeout} ({error})",
            value=address,
            allowed="the address of a running dask.distributed scheduler, e.g. tcp://10.0.0.5:8786",
            hint=f"start one with `dask scheduler` (or dask-kubernetes / dask-jobqueue), or leave out "
            f"--scheduler and ${SCHEDULER_ENV} to run on this machine",
        ) from None


@contextlib.contextmanager
def dask_context(scheduler: str | None, *, local: str | None = None) -> Iterator[str]:
    """Where Dask work runs: the cluster at `scheduler`, a client already set up by the caller
    (a batch), or this machine (`local`: threads, processes (a LocalCluster with one worker
    process per CPU) or synchronous; default $JDL_LOCAL_SCHEDULER, else threads). Yields a
    description for the manifest."""
    if scheduler:
        client = _connect(scheduler)
        try:
            with dask.config.set(scheduler=client):
                yield f"distributed:{scheduler} ({_worker_summary(client)})"
        finally:
            with contextlib.suppress(Exception):
                client.close()
        return
    # a client exists only once distributed is imported: a threads run need not import it (0.4 s)
    existing = current_client() if "distributed" in sys.modules else None
    if existing is not None:
        yield f"distributed:{existing.scheduler.address} ({_worker_summary(existing)})"
        return
    kind = local or os.environ.get(LOCAL_SCHEDULER_ENV) or DEFAULT_LOCAL_SCHEDULER
    if kind not in LOCAL_SCHEDULERS:
        raise JdlUserError.single(
            LOCAL_SCHEDULER_ENV if not local else "local scheduler", "unknown local scheduler",
            value=kind, allowed=", ".join(LOCAL_SCHEDULERS),
        )
    if kind == "processes":
        client = _LOCAL_CLUSTER.get()
        with dask.config.set(scheduler=client):
            yield f"local-processes ({_worker_summary(client)})"
    elif kind == "threads":
        workers = local_worker_count()
        with dask.config.set(scheduler=_local_get(kind), num_workers=workers):
            yield f"local-threads ({workers} threads)"
    else:
        with dask.config.set(scheduler=_local_get(kind)):
            yield f"local-{kind}"


def _local_get(kind: str) -> Callable[..., Any]:
    """Dask's own function for a local scheduler name. Given by name, dask would import
    distributed (0.4 s) on every compute to look for a client first."""
    import dask.local
    import dask.threaded

    return dask.threaded.get if kind == "threads" else dask.local.get_sync


def _worker_summary(client: Any) -> str:
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except Exception:  # a summary only; never fail a run for it
        return "workers unknown"
    threads = sum(int(w.get("nthreads", 0)) for w in workers.values())
    return f"{len(workers)} workers, {threads} threads"


def _lost_workers(error: BaseException) -> EvaluationCannotComplete | None:
    """A clear message for a run that lost its Dask workers or scheduler (None: another error)."""
    name = type(error).__name__
    try:
        text = str(error)
    except Exception:  # some distributed errors cannot render themselves
        text = name
    if name == "KilledWorker":
        task = getattr(error, "task", "a task")
        return EvaluationCannotComplete(
            "dask", f"{task} was lost with every worker that ran it (dask retries a task on another "
            "worker, up to distributed.scheduler.allowed-failures times)",
            hint="workers died (memory limit, lost node): give them more memory, or rerun; "
            "no results were written",
        )
    if name in ("CommClosedError", "FutureCancelledError", "CancelledError") or (
        isinstance(error, OSError) and "scheduler" in text.lower()
    ):
        return EvaluationCannotComplete(
            "dask", f"the connection to the Dask scheduler was lost ({name}: {text})",
            hint="check that the scheduler is still running, then rerun; no results were written",
        )
    return None


def run_evaluation(
    spec_path: Path,
    *,
    out_dir: Path | None = None,
    scheduler: str | None = None,
    on_stage: Callable[[str], None] | None = None,
    cache_dir: Path | str | None = None,
    use_cache: bool = True,
    progress: bool = False,
    local_scheduler: str | None = None,
) -> RunOutcome:
    """Run one evaluation and write its run directory.

    `cache_dir`: the feature cache folder (default: $JDL_CACHE_DIR, else ~/.cache/jdl);
    `use_cache=False` neither reads nor writes it. `progress` draws progress bars on stderr.
    `local_scheduler` (processes, threads, synchronous) applies when no `scheduler` is given.
    """
    started = time.perf_counter()
    loaded = load_and_check(spec_path)
    return _run_checked(loaded, spec_path, started=started, out_dir=out_dir, scheduler=scheduler,
                        on_stage=on_stage, cache_dir=cache_dir, use_cache=use_cache, progress=progress,
                        local_scheduler=local_scheduler)


def _run_checked(
    loaded: LoadedSpec,
    spec_path: Path,
    *,
    started: float,
    out_dir: Path | None,
    scheduler: str | None,
    on_stage: Callable[[str], None] | None,
    cache_dir: Path | str | None,
    use_cache: bool,
    progress: bool,
    local_scheduler: str | None,
) -> RunOutcome:
    spec = loaded.spec
    spec_hash = spec_sha256(spec)
    run_id = _run_id(spec_hash)
    run_dir = out_dir if out_dir is not None else Path("runs") / spec.id / run_id
    writer = RunWriter(run_dir)
    log_handler = _attach_log(writer.adopt("run.log"))
    clock = StageClock(on_stage=on_stage)
    mode: type[Evaluation] = TableEvaluation if spec.data.mode == "table" else RecordsEvaluation
    evaluation = mode(loaded, clock)
    if isinstance(evaluation, RecordsEvaluation):
        evaluation.feature_cache = FeatureCache(cache_dir) if use_cache else None
        evaluation.show_progress = progress
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "spec_path": str(spec_path),
        "spec_sha256": spec_hash,
        "resolved_spec": json.loads(canonical_spec_json(spec)),
        "spec_chain": [str(p) for p in loaded.chain],
        "spec_migrations": list(loaded.migrated),
        # data paths in a spec are relative to the folder jdl ran in: reproduce needs it
        "working_directory": str(Path.cwd()),
        "git": git_state(spec_path),
        "packages": package_versions(),
        "platform": platform_facts(),
        "seeds": {"matching": spec.matching.seed, "bootstrap": spec.estimator.variance.seed},
    }
    status, message, results = 0, "", None
    try:
        with dask_context(scheduler, local=local_scheduler) as executor:
            manifest["executor"] = executor
            log.info("run %s of spec %s (sha256 %s) on %s", run_id, spec.id, spec_hash, executor)
            try:
                results = evaluation.run()
            except Exception as error:
                lost = _lost_workers(error)
                if lost is None:
                    raise
                raise lost from error
    except EvaluationCannotComplete as error:
        status, message = error.exit_status, error.render()
        log.error("evaluation could not complete: %s", message)
    except BaseException:
        _detach_log(log_handler)
        writer.abandon()
        raise
    if isinstance(evaluation, RecordsEvaluation):
        manifest["features"] = {"cache": evaluation.cache_status, "participants_cache": evaluation.participants_cache,
                                "layout": evaluation.layout}
    manifest["inputs"] = evaluation.inputs
    manifest["status"] = "complete" if results is not None else "incomplete"
    writer.csv("rejects.csv", evaluation.rejects_frame())
    if results is None:
        writer.text("attrition.json", canonical_json({"attrition": evaluation.attrition(), "reason": message}))
    else:
        with clock.stage("report"):
            from jdl.report import render_report

            writer.csv("balance.csv", evaluation.balance)
            writer.parquet("matched.parquet", evaluation.matched)
            for fmt in spec.report.formats:
                if fmt == "json":
                    continue
                name = "report.html" if fmt == "html" else "report.md"
                writer.text(name, render_report(results, template=spec.report.template, fmt=fmt))
            results_text = canonical_json(results)
            writer.text("results.json", results_text)
        manifest["results_sha256"] = hashlib.sha256(results_text.encode()).hexdigest()
    manifest["timings_seconds"] = {**clock.timings, "total": round(time.perf_counter() - started, 3)}
    writer.text("manifest.json", canonical_json(manifest))
    _detach_log(log_handler)
    writer.commit()
    return RunOutcome(run_dir, results, status, message)


def _attach_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _detach_log(handler: logging.Handler) -> None:
    handler.close()
    log.removeHandler(handler)


__all__ = ["RunOutcome", "dask_context", "run_evaluation"]
