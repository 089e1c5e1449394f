"""The b2b group as Dagster definitions (resources ``warehouse`` and ``lake`` come from the
code location)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from pipeline.b2b.assets import build_assets
from pipeline.b2b.checks import build_checks
from pipeline.b2b.partitions import daily_partitions, start_date
from pipeline.b2b.schedules import daily_job, daily_schedule
from pipeline.b2b.sensors import build_sensors, init_job, load_job
from pipeline.b2b.transform import Engine, PandasEngine
from pipeline.settings import Settings


def select_engine(settings: Settings) -> Engine:
    """``PIPELINE_ENGINE`` picks where orders and reports are computed. Spark is imported only
    when chosen, and its session (``PIPELINE_SPARK_MASTER``) starts in the run that first needs it."""
    if settings.engine == "spark":
        from pipeline.b2b.spark_transform import SparkEngine

        return SparkEngine(settings.spark_master)
    return PandasEngine()


def build_defs(settings: Settings, env: Mapping[str, str] | None = None) -> dg.Definitions:
    """Assets, checks, the daily job and its schedule, the sensors that load files found in the lake
    (with their jobs), on the engine ``PIPELINE_ENGINE`` names."""
    start = start_date(os.environ if env is None else env)
    job = daily_job()
    return dg.Definitions(
        assets=build_assets(start, select_engine(settings)),
        asset_checks=build_checks(),
        jobs=[job, init_job(), load_job()],
        schedules=[daily_schedule(job)],
        sensors=build_sensors(daily_partitions(start), settings.sensor_interval_seconds),
    )
