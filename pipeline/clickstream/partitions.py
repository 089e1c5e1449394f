"""Daily partitions and the look-back that makes "the partitions follow the period".

A day's report sums the ``period`` days ending at that day, so the report partition D depends on
the daily-clicks partitions D-(period-1) .. D: ``TimeWindowPartitionMapping(start_offset=-(period-1))``.
Dagster then knows that a new daily partition D makes the reports D .. D+period-1 stale, and a
backfill of the report over [a, b] reads the daily clicks of [a-(period-1), b]. Before the first
partition the window is simply shorter (the mapping drops days that do not exist).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import dagster as dg

from pipeline.settings import Settings

DAY = dt.timedelta(days=1)
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"


def daily_partitions(settings: Settings) -> dg.DailyPartitionsDefinition:
    """From PIPELINE_PARTITIONS_START; open-ended (today's partition exists, so today's partial
    report is visible and later runs recompute it) unless PIPELINE_PARTITIONS_END closes it."""
    if settings.partitions_end:
        return dg.DailyPartitionsDefinition(
            start_date=settings.partitions_start, end_date=settings.partitions_end
        )
    return dg.DailyPartitionsDefinition(start_date=settings.partitions_start, end_offset=1)


def lookback(period: int) -> dg.TimeWindowPartitionMapping:
    return dg.TimeWindowPartitionMapping(start_offset=-(period - 1))


def range_tags(start: dt.date, end: dt.date) -> dict[str, str]:
    """Run tags for one run over the partition range [start, end] (single-run backfill policy)."""
    return {RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()}


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + DAY * offset for offset in range((end - start).days + 1)]


def window_days(window: dg.TimeWindow) -> list[dt.date]:
    """The days of a partition time window (its end is exclusive)."""
    return days_between(window.start.date(), window.end.date() - DAY)


def run_days(tags: Mapping[str, str]) -> list[dt.date]:
    """The days a run covers, from its public partition tags; [] for an unpartitioned run."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return days_between(
            dt.date.fromisoformat(tags[RANGE_START_TAG]), dt.date.fromisoformat(tags[RANGE_END_TAG])
        )
    if PARTITION_TAG in tags:
        return [dt.date.fromisoformat(tags[PARTITION_TAG])]
    return []


def clamp(
    partitions: dg.DailyPartitionsDefinition, start: dt.date, end: dt.date
) -> tuple[dt.date, dt.date] | None:
    """[start, end] cut to the existing partitions, or None if nothing is left."""
    first, last = partitions.get_first_partition_key(), partitions.get_last_partition_key()
    if first is None or last is None:
        return None
    start = max(start, dt.date.fromisoformat(first))
    end = min(end, dt.date.fromisoformat(last))
    return (start, end) if start <= end else None
