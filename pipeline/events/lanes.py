"""The lanes of runs (live, backlog, housekeeping), their tags, and live minutes first on the CPU.

Dagster's run priority (``dagster/priority``) orders the run queue; once runs execute side by
side on a few cores, the operating system shares the CPU among them equally. So runs of the
background lanes (backlog ingest, archives, retention) and the dashboard page lower their own
scheduling priority at their first step: a surge of them slows down, never the live minutes'
runs (DESIGN section 5).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

BACKLOG_TAG = "backlog"  # "true" on runs of late files
LANE_TAG = "clickflow/lane"
RANGE_START_TAG = "dagster/asset_partition_range_start"  # a run over several partitions (single run backfill)
RANGE_END_TAG = "dagster/asset_partition_range_end"
HOUSEKEEPING = "housekeeping"  # archives and retention: one at a time (dagster.yaml)
BACKGROUND_NICE = 10


def is_background(tags: Mapping[str, str]) -> bool:
    return tags.get(BACKLOG_TAG) == "true" or tags.get(LANE_TAG) == HOUSEKEEPING


def give_way() -> None:
    """Lower the calling thread, and the threads it starts from now on, to ``BACKGROUND_NICE``.

    Runs execute their steps on the run process's main thread (in-process executor), so this
    covers the whole run. Never raises the priority back; a no-op where unsupported.
    """
    try:
        current = os.getpriority(os.PRIO_PROCESS, 0)
        if current < BACKGROUND_NICE:
            os.setpriority(os.PRIO_PROCESS, 0, BACKGROUND_NICE)
    except (AttributeError, OSError):
        pass


def in_own_process(run) -> bool:
    """Whether a Dagster run executes in a process of its own: a run launched from a code location
    (the daemon, the UI) has its origin; one executed in process (batch mode, tests) has none and
    shares its caller's process, whose priority is not the run's to change."""
    return getattr(run, "remote_job_origin", None) is not None


def give_way_if_background(run) -> None:
    """``give_way`` for a launched run of a background lane (see ``is_background``)."""
    if in_own_process(run) and is_background(run.tags):
        give_way()
