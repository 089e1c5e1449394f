"""The insights group's Definitions, built from settings (no work at import time).

Resources (``warehouse``, ``lake``) are added by the code location, not here.
"""

from __future__ import annotations

from typing import Mapping

import dagster as dg

from pipeline.insights.assets import build_assets
from pipeline.insights.checks import build_checks
from pipeline.insights.config import InsightsConfig
from pipeline.insights.partitions import monthly_partitions
from pipeline.insights.schedules import build_month_job, build_monthly_schedule
from pipeline.insights.sensors import build_sensors
from pipeline.settings import Settings


def build_defs(settings: Settings, env: Mapping[str, str] | None = None) -> dg.Definitions:
    """``env`` (default ``os.environ``) supplies the ``PIPELINE_INSIGHTS_*`` variables."""
    config = InsightsConfig.from_env(env)
    partitions = monthly_partitions(config.start)
    ingest, month_top, all_time = build_assets(partitions, config.top_n)
    job = build_month_job([ingest, month_top])
    return dg.Definitions(
        assets=[ingest, month_top, all_time],
        asset_checks=build_checks(),
        jobs=[job],
        schedules=[build_monthly_schedule(job)],
        sensors=build_sensors(job, all_time, partitions, settings.landing_page_size),
    )
