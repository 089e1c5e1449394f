"""The daily job and its schedule: 01:00 UTC, for the day that just ended."""

from __future__ import annotations

import dagster as dg

from pipeline.b2b.assets import INIT

DAILY_JOB = "b2b_daily"
DAY_TAGS = {"b2b": "day"}  # one b2b day at a time (dagster.yaml): orders build on the day before


def daily_job() -> dg.UnresolvedAssetJobDefinition:
    """Every partitioned b2b asset and its checks for one day; the init load is run by hand."""
    return dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.groups("b2b") - dg.AssetSelection.assets(INIT),
        tags=DAY_TAGS,
        description="The b2b group's daily run for one day (UTC).",
    )


def daily_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """A daily partition ends at midnight UTC; its run starts at 01:00 UTC that night."""
    return dg.build_schedule_from_partitioned_job(
        job, name="b2b_daily_schedule", hour_of_day=1, minute_of_hour=0
    )
