"""Running Dask work with a progress bar on stderr (rich), or silently.

On a distributed client (a LocalCluster or a remote cluster) the bar counts
finished futures; on Dask's local schedulers it counts finished tasks through
a `dask.diagnostics` callback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dask
from dask.diagnostics import Callback
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def current_client() -> Any | None:
    """The distributed client Dask would use now, if any."""
    try:
        from distributed import get_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    scheduler = dask.config.get("scheduler", None)
    if scheduler is not None and scheduler.__class__.__name__ == "Client":
        return scheduler
    try:
        return get_client()
    except ValueError:
        return None


@contextlib.contextmanager
def _bar(label: str, total: int | None) -> Iterator[Progress]:
    progress = Progress(
        TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    )
    with progress:
        progress.add_task(label, total=total)
        yield progress


class _TaskCounter(Callback):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def _start_state(self, dsk: Any, state: Any) -> None:
        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self.progress.update(self.progress.task_ids[0], total=total)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        self.progress.advance(self.progress.task_ids[0])


def compute(label: str, *collections: Any, show: bool = False) -> tuple[Any, ...]:
    """`dask.compute(*collections)`, with a progress bar labelled `label` when `show` (and stderr
    is a terminal: logs and pipes get no bar)."""
    if not show or not Console(stderr=True).is_terminal:
        return dask.compute(*collections)
    client = current_client()
    if client is None:
        with _bar(label, None) as progress, _TaskCounter(progress):
            return dask.compute(*collections)
    from distributed import as_completed

    futures = client.compute(list(collections))
    with _bar(label, len(futures)) as progress:
        for _ in as_completed(futures, loop=client.loop):
            progress.advance(progress.task_ids[0])
    return tuple(client.gather(futures))


__all__ = ["compute", "current_client"]
