"""Jobs and the retention schedule of the event system."""

from __future__ import annotations

import dagster as dg

from pipeline.events import keys
from pipeline.events.assets import PRIORITY_ARCHIVE, PRIORITY_RETENTION
from pipeline.events.lanes import BACKLOG_TAG, HOUSEKEEPING, LANE_TAG, RANGE_END_TAG, RANGE_START_TAG
from pipeline.settings import Settings

INGEST_JOB = "events_ingest"
ARCHIVE_JOB = "events_archive"
REFRESH_JOB = "events_refresh"
DASHBOARD_JOB = "events_dashboard"
RETENTION_JOB = "events_retention"
HOUR_TAG = "clickflow/hour"  # one run per value at a time (dagster.yaml tag concurrency limit)


def build_jobs(settings: Settings) -> list[dg.UnresolvedAssetJobDefinition]:
    return [
        dg.define_asset_job(
            INGEST_JOB,
            selection=dg.AssetSelection.assets(keys.RAW_FILES, keys.T1_MINUTE, keys.T2_HOUR) - keys.FRESHNESS_CHECKS,
            description="Claim an hour's landed files, recompute its changed minutes (t1) and its hour (t2).",
        ),
        dg.define_asset_job(
            ARCHIVE_JOB,
            selection=dg.AssetSelection.assets(keys.ARCHIVE),
            tags={"dagster/priority": str(PRIORITY_ARCHIVE), LANE_TAG: HOUSEKEEPING},
            description="Archive a settled block and delete its verified raw files.",
        ),
        dg.define_asset_job(REFRESH_JOB,
                            selection=dg.AssetSelection.assets(keys.RANKINGS, keys.DASHBOARD) - keys.FRESHNESS_CHECKS,
                            description="Re-rank the last 60 minutes and rebuild the dashboard from them."),
        dg.define_asset_job(DASHBOARD_JOB, selection=dg.AssetSelection.assets(keys.DASHBOARD),
                            description="Rebuild the HTML dashboard in the lake (dashboard/index.html)."),
        dg.define_asset_job(
            RETENTION_JOB,
            selection=dg.AssetSelection.assets(keys.T1_RETENTION, keys.T2_RETENTION),
            tags={"dagster/priority": str(PRIORITY_RETENTION), LANE_TAG: HOUSEKEEPING},
            description="Delete t1 and t2 rows older than their windows.",
        ),
    ]


def build_schedules() -> list[dg.ScheduleDefinition]:
    return [
        dg.ScheduleDefinition(
            name="events_retention_hourly",
            job_name=RETENTION_JOB,
            cron_schedule="17 * * * *",
            execution_timezone="UTC",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Hourly retention of t1 and t2, at the lowest run priority.",
        )
    ]
