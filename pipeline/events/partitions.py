"""Partitions of the event system: partition by hour, store by minute (DESIGN section 4).

Open-ended by default: the partition that is still filling is a partition too (end_offset=1),
so live files land in it. ``PIPELINE_PARTITIONS_END`` closes the range for a replay of history,
which keeps the partition count (and every partition listing) small.
"""

from __future__ import annotations

import dagster as dg

from pipeline.settings import Settings


def _bounds(settings: Settings, fmt: str) -> dict:
    start = f"{settings.partitions_start}{fmt}"
    if settings.partitions_end:
        return {"start_date": start, "end_date": f"{settings.partitions_end}{fmt}"}
    return {"start_date": start, "end_offset": 1}


def hourly_partitions(settings: Settings) -> dg.HourlyPartitionsDefinition:
    return dg.HourlyPartitionsDefinition(**_bounds(settings, "-00:00"))


def archive_partitions(settings: Settings) -> dg.TimeWindowPartitionsDefinition:
    if settings.archive_block == "hour":
        return dg.HourlyPartitionsDefinition(**_bounds(settings, "-00:00"))
    return dg.DailyPartitionsDefinition(**_bounds(settings, ""))
