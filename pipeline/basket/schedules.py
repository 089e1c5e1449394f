"""The seed's EventBridge rule: the whole chain daily at 23:35 UTC, for that same day."""

import datetime as dt

import dagster as dg


def build_daily_schedule(job) -> dg.ScheduleDefinition:
    """``job``: the daily chain (``define_asset_job`` over reference, orders and features)."""

    @dg.schedule(
        name="basket_daily_schedule",
        job=job,
        cron_schedule="35 23 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def basket_daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        """Reloads the reference and the day's orders (re-audited, so late files of the day are in),
        then rebuilds every feature and the final CSV. 23:35 falls inside the day it runs for: the
        day's partition already exists (``end_offset=1``), as the seed ran on the day's data."""
        day = context.scheduled_execution_time.astimezone(dt.UTC).date().isoformat()
        return dg.RunRequest(run_key=f"daily:{day}", partition_key=day)

    return basket_daily_schedule
