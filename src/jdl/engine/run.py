"""One run: load and check the spec, run its mode's stages, write the run directory."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask

from jdl.audit import RunWriter, canonical_json, git_state, package_versions, platform_facts
from jdl.engine.checks import load_and_check
from jdl.engine.evaluation import Evaluation, StageClock
from jdl.engine.records import RecordsEvaluation
from jdl.engine.table import TableEvaluation
from jdl.errors import EvaluationCannotComplete
from jdl.report import render_report
from jdl.spec import canonical_spec_json, spec_sha256

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


@contextlib.contextmanager
def dask_context(scheduler: str | None) -> Iterator[str]:
    """A distributed client for `--scheduler`, otherwise Dask's local threaded scheduler."""
    if scheduler:
        from distributed import Client

        with Client(scheduler) as client, dask.config.set(scheduler=client):
            yield f"distributed:{scheduler}"
    else:
        with dask.config.set(scheduler="threads"):
            yield "local-threads"


def run_evaluation(
    spec_path: Path,
    *,
    out_dir: Path | None = None,
    scheduler: str | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Run one evaluation and write its run directory."""
    started = time.perf_counter()
    loaded = load_and_check(spec_path)
    spec = loaded.spec
    spec_hash = spec_sha256(spec)
    run_id = _run_id(spec_hash)
    run_dir = out_dir if out_dir is not None else Path("runs") / spec.id / run_id
    writer = RunWriter(run_dir)
    log_handler = _attach_log(writer.adopt("run.log"))
    clock = StageClock(on_stage=on_stage)
    mode: type[Evaluation] = TableEvaluation if spec.data.mode == "table" else RecordsEvaluation
    evaluation = mode(loaded, clock)
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "spec_path": str(spec_path),
        "spec_sha256": spec_hash,
        "resolved_spec": json.loads(canonical_spec_json(spec)),
        "spec_chain": [str(p) for p in loaded.chain],
        "git": git_state(spec_path),
        "packages": package_versions(),
        "platform": platform_facts(),
        "seeds": {"matching": spec.matching.seed, "bootstrap": spec.estimator.variance.seed},
    }
    status, message, results = 0, "", None
    try:
        with dask_context(scheduler) as executor:
            manifest["executor"] = executor
            log.info("run %s of spec %s (sha256 %s)", run_id, spec.id, spec_hash)
            results = evaluation.run()
    except EvaluationCannotComplete as error:
        status, message = error.exit_status, error.render()
        log.error("evaluation could not complete: %s", message)
    except BaseException:
        _detach_log(log_handler)
        writer.abandon()
        raise
    manifest["inputs"] = evaluation.inputs
    manifest["status"] = "complete" if results is not None else "incomplete"
    writer.csv("rejects.csv", evaluation.rejects_frame())
    if results is None:
        writer.text("attrition.json", canonical_json({"attrition": evaluation.attrition(), "reason": message}))
    else:
        with clock.stage("report"):
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
