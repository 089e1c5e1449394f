"""The seed's rescheduling: a run every ``time_interval_hours`` (stopped until switched on).

Like the seed, a scheduled run only reads what is newer than the last upload: the days from the
statistics object's latest date up to today (the latest day is redone, it may have grown).
Late rows for older days are the marker sensor's job.
"""

import datetime as dt

import dagster as dg

from pipeline.clickstream import storage
from pipeline.clickstream.config import ClickstreamConfig
from pipeline.clickstream.partitions import clamp, range_tags
from pipeline.resources.lake import LakeResource


def build_schedule(
    config: ClickstreamConfig, partitions: dg.DailyPartitionsDefinition, job
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="clickstream_schedule",
        cron_schedule=config.cron_schedule,
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def clickstream_schedule(context: dg.ScheduleEvaluationContext, lake: LakeResource):
        """Every time_interval_hours: the days since the last reported one (all days the first time)."""
        latest = storage.read_latest_date(lake.get())
        span = clamp(partitions, latest or dt.date.min, dt.date.max)
        if span is None:
            return dg.SkipReason(f"no daily partition from {latest} on")
        return dg.RunRequest(tags=range_tags(*span))

    return clickstream_schedule
