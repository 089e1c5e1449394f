"""Peak memory of a process tree (the JVM that PySpark starts included), sampled in a thread.

The resident set sizes of the process and all its descendants are summed every ``interval``
seconds; shared pages count once per process, so the figure errs on the high side.
"""

from __future__ import annotations

import threading

import psutil


def tree_rss(pid: int) -> int:
    return _rss(pid)[0]


def _rss(pid: int) -> tuple[int, int]:
    """(summed RSS of the process and its descendants, RSS of the process alone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0, 0
    total = own = 0
    for process in processes:
        try:
            rss = process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # ended between listing and sampling
        total += rss
        own = rss if process.pid == pid else own
    return total, own


class PeakMemory:
    """``with PeakMemory(pid) as peak: ...`` then ``peak.bytes`` (the tree) and ``peak.root_bytes``
    (the process alone, e.g. the Spark driver's Python without its JVM)."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid, self.interval, self.bytes, self.root_bytes = pid, interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    def _sample(self) -> None:
        while True:
            total, own = _rss(self.pid)
            self.bytes, self.root_bytes = max(self.bytes, total), max(self.root_bytes, own)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
