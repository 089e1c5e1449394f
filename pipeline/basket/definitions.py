"""The basket asset group: what the code location needs from this package."""

from __future__ import annotations

import dagster as dg

from pipeline.settings import Settings

from .assets import build_feature_assets, build_input_assets
from .config import BasketConfig
from .partitions import daily_partitions
from .schedules import build_daily_schedule
from .sensors import build_reference_sensor, build_stream_sensor
from .transform import FeatureEngine, PandasEngine


def select_engine(settings: Settings) -> FeatureEngine:
    """``PIPELINE_ENGINE`` picks where the features are computed. Spark is imported only when
    chosen, and its session (``PIPELINE_SPARK_MASTER``) starts in the run that first needs it."""
    if settings.engine == "spark":
        from .spark_transform import SparkEngine

        return SparkEngine(settings.spark_master)
    return PandasEngine()


def build_defs(settings: Settings) -> dg.Definitions:
    """Assets, checks, jobs, sensors and the schedule, the features on the engine
    ``PIPELINE_ENGINE`` names; resources (``warehouse``, ``lake``) come from the code location.
    Reads and validates the ``PIPELINE_BASKET_*`` variables."""
    config = BasketConfig.from_env()
    partitions = daily_partitions(config.start)
    reference, orders = build_input_assets(partitions, config)
    features = build_feature_assets(select_engine(settings))
    reference_job = dg.define_asset_job("basket_reference_job", selection=[reference])
    orders_job = dg.define_asset_job("basket_orders_job", selection=[orders])
    daily_job = dg.define_asset_job("basket_daily_job", selection=[reference, orders, *features])
    return dg.Definitions(
        assets=[reference, orders, *features],
        jobs=[reference_job, orders_job, daily_job],
        schedules=[build_daily_schedule(daily_job)],
        sensors=[
            build_stream_sensor(
                orders_job,
                config,
                interval_seconds=settings.sensor_interval_seconds,
                page_size=settings.landing_page_size,
            ),
            build_reference_sensor(reference_job, interval_seconds=settings.sensor_interval_seconds),
        ],
    )
