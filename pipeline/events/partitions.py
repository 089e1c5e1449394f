"""Partitions of the event system: partition by hour, store by minute (DESIGN section 4)."""

from __future__ import annotations

import dagster as dg

from pipeline.settings import Settings

# The partition that is still filling is a partition too (end_offset=1): live files land in it.
def hourly_partitions(settings: Settings) -> dg.HourlyPartitionsDefinition:
    return dg.HourlyPartitionsDefinition(start_date=f"{settings.partitions_start}-00:00", end_offset=1)


def archive_partitions(settings: Settings) -> dg.TimeWindowPartitionsDefinition:
    if settings.archive_block == "hour":
        return dg.HourlyPartitionsDefinition(start_date=f"{settings.partitions_start}-00:00", end_offset=1)
    return dg.DailyPartitionsDefinition(start_date=settings.partitions_start, end_offset=1)
