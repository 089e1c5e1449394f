"""Peak memory of a process tree (the JVM that PySpark starts included), sampled in a thread.

The resident set sizes of the process and all its descendants are summed every ``interval``
seconds; shared pages count once per process, so the figure errs on the high side.
"""

from __future__ import annotations

import threading

import psutil


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass  # ended between listing and sampling
    return total


class PeakMemory:
    """``with PeakMemory(pid) as peak: ...`` then ``peak.bytes``."""

    def __init__(self, pid: int, interval: float = 0.2):
        self.pid, self.interval, self.bytes = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    def _sample(self) -> None:
        while True:
            self.bytes = max(self.bytes, tree_rss(self.pid))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
