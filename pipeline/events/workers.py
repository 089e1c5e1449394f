"""Worker processes for the pandas engine: the heavy pure work (staging landed files, summing
chunks of minutes) runs outside this process's GIL, on every core.

Threads gave 1.3x on two cores (measured: the Python between Arrow calls holds the GIL);
processes give the cores. The pool starts on first use, forked from a clean server process that
imported the work's modules (``forkserver``: not a fork of a process running Dagster's threads),
and serves every later call of the process, so batch mode pays its start once; small calls (a
live minute's files) stay on threads in this process, where starting workers would cost more than
it saves. Work sent here is a module-level function of picklable arguments that reads and writes
the lake itself.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from pipeline.events import staging

T, R = TypeVar("T"), TypeVar("R")

WORKERS = max(1, os.cpu_count() or 1)
PROCESSES_FROM = 16  # files of a claim from which staging goes to running worker processes
COLD_FACTOR = 16  # ... and when they would have to start first: ~250 files (a large hour)
PRELOAD = ("pipeline.events.engine", "pipeline.events.staging", "pipeline.events.aggregation")
_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def _pool_now() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            context = multiprocessing.get_context("forkserver")
            # The server imports the work's modules once and forks each worker from that: quick
            # to start, and never the caller's __main__ (a script without a main guard would run).
            context.set_forkserver_preload(list(PRELOAD))
            _pool = ProcessPoolExecutor(WORKERS, mp_context=context)
            atexit.register(shutdown)
        return _pool


def warm() -> None:
    """Start the workers in the background (batch mode, before its first claim): they are ready
    by the time they are wanted, their start having overlapped this process's own."""
    threading.Thread(target=lambda: _pool_now().submit(int).result(), name="clickflow-warm", daemon=True).start()


def running() -> bool:
    with _lock:
        return _pool is not None


def wanted(items: int, threshold: int) -> bool:
    """Whether ``items`` of work go to the worker processes: from ``threshold`` on when they run
    already, from ``COLD_FACTOR`` times it when they would have to start first (a start costs
    about what two cores save on an hour of a large shop's files)."""
    if WORKERS < 2:
        return False
    return items >= threshold * (1 if running() else COLD_FACTOR)


def shutdown() -> None:
    """Stop the workers (at exit, or when a test wants no process left)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def in_order(work: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
    """``work(item)`` for each item on the worker processes, yielded in order, a few items ahead
    (at most ``2 * WORKERS`` results wait); an error is raised where its item's result is taken."""
    yield from staging.ahead(_pool_now(), work, items, 2 * WORKERS)
