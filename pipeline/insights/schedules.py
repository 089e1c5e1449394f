"""The monthly job and its schedule: 10:00 UTC on the 1st loads the month that just ended."""

from __future__ import annotations

import dagster as dg

MONTH_JOB = "insights_month"


def build_month_job(assets: list[dg.AssetsDefinition]):
    """Ingestion and the monthly tops of one month (their checks ride along)."""
    return dg.define_asset_job(
        MONTH_JOB,
        selection=dg.AssetSelection.assets(*assets),
        description="Load one month's dump into insights.* and rank its countries, users, days, "
                    "companies and tags.",
    )


def build_monthly_schedule(job) -> dg.ScheduleDefinition:
    # The partitions are monthly in UTC with day offset 1, so this ticks at 10:00 UTC on the 1st
    # and requests the last complete month.
    return dg.build_schedule_from_partitioned_job(
        job,
        name="insights_monthly",
        hour_of_day=10,
        minute_of_hour=0,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="10:00 UTC on the 1st: load the previous month's dump.",
    )
