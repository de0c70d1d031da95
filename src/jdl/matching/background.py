"""A thread for work that only fills a core the foreground leaves idle.

Matching and estimation alternate between stretches on both cores (the propensity
fit's row bands, the balance table's columns) and stretches on one (the matcher,
numpy on the main thread). Work that is needed later (the unmatched differences,
the weight-free half of the balance table) runs on a background thread at a lower
scheduling priority, so that it takes the idle core without slowing the two-core
stretches down. Where a thread's priority cannot be set (not Linux, or not
allowed), the thread runs at the normal priority: the results are the same, since
each task's arithmetic runs whole on one thread.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# nice +10: about a tenth of a core's share against a normal-priority thread on the same core
BACKGROUND_NICE = 10


def _lower_priority() -> None:
    if sys.platform != "linux":  # elsewhere setpriority(PRIO_PROCESS, id) would name the process
        return
    # on Linux a thread is a task of its own: PRIO_PROCESS with its id changes that thread only
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(current + BACKGROUND_NICE, 19))


def taken(future: Future[T], compute: Callable[[], T]) -> T:
    """The future's result if its task has started (waiting for it), else `compute()` here: a task
    still queued is not left to a low-priority thread the caller would then wait for."""
    if future.cancel():
        return compute()
    return future.result()


def background_executor(name: str) -> ThreadPoolExecutor:
    """One worker thread, at a lower priority where the system allows it."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=_lower_priority)


__all__ = ["BACKGROUND_NICE", "background_executor", "taken"]
