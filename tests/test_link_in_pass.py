"""Linking the cohort inside the pass's Dask graph: the same bytes as linking first, and a graph in
which no block's read and pool features wait for the linkage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dask
import pytest

from jdl.cli import main
from jdl.engine import progress, records
from tests.conftest import write_spec

OUTPUTS = ("results.json", "rejects.csv", "matched.parquet", "balance.csv")


def _run(spec: Path, out: Path, *extra: str) -> dict[str, Any]:
    assert main(["run", str(spec), "--out", str(out), "--quiet", "--no-cache", *extra]) == 0
    return json.loads((out / "manifest.json").read_text())


def _ancestors(graph: dict[Any, Any], key: Any) -> set[Any]:
    """Every task `key` depends on, directly or not."""
    seen: set[Any] = set()
    pending = [key]
    while pending:
        for dependency in graph[pending.pop()].dependencies:
            if dependency not in seen:
                seen.add(dependency)
                pending.append(dependency)
    return seen


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_linking_in_the_pass_gives_the_bytes_of_linking_first(
    synthetic_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheduler: str
) -> None:
    spec = write_spec(tmp_path / "spec.yaml", synthetic_records, cohort="small")
    graphs: list[tuple[Any, ...]] = []
    compute = progress.compute

    def recording(label: str, *collections: Any, show: bool = False) -> tuple[Any, ...]:
        graphs.append((label, *collections))
        return compute(label, *collections, show=show)

    monkeypatch.setattr(progress, "compute", recording)
    inside = _run(spec, tmp_path / "inside", "--local-scheduler", scheduler)
    assert [g[0] for g in graphs] == ["features"]  # the linkage has no compute of its own
    monkeypatch.setattr(records.RecordsEvaluation, "link_in_pass", False)
    first = _run(spec, tmp_path / "first", "--local-scheduler", scheduler)
    assert [g[0] for g in graphs[1:]] == ["linkage", "features"]
    for name in OUTPUTS:
        assert (tmp_path / "inside" / name).read_bytes() == (tmp_path / "first" / name).read_bytes(), name
    assert inside["timings_seconds"].keys() == first["timings_seconds"].keys()

    # the graph: the linkage's outcome first, then one selection of linked rows per block
    _, link, *selections = graphs[0]
    graph = dict(dask.delayed(list)([link, *selections]).__dask_graph__().items())
    link_key = link.key
    assert link_key in _ancestors(graph, selections[0].key)
    for selection in selections:
        blocks = [k for k in _ancestors(graph, selection.key) if str(k).startswith("features-block-")]
        assert len(blocks) == 1  # its own block's read and pool features ...
        assert link_key not in _ancestors(graph, blocks[0])  # ... which never wait for the linkage
        assert link_key in _ancestors(graph, selection.key)


def test_a_cached_pool_links_the_cohort_on_its_own(
    synthetic_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = write_spec(tmp_path / "small.yaml", synthetic_records, cohort="small")
    assert main(["run", str(first), "--out", str(tmp_path / "a"), "--quiet", "--cache-dir", str(cache)]) == 0
    labels: list[str] = []
    compute = progress.compute

    def recording(label: str, *collections: Any, show: bool = False) -> tuple[Any, ...]:
        labels.append(label)
        return compute(label, *collections, show=show)

    monkeypatch.setattr(progress, "compute", recording)
    other = write_spec(tmp_path / "medium.yaml", synthetic_records, cohort="medium")
    assert main(["run", str(other), "--out", str(tmp_path / "b"), "--quiet", "--cache-dir", str(cache)]) == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["features"]["cache"] == "hit"
    # no pass to overlap: the linkage is computed (and timed) in its own stage
    assert labels[0] == "linkage" and "features" not in labels
