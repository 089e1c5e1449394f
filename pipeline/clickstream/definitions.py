"""The clickstream asset group, built from the platform settings and the clickstream ini."""

from __future__ import annotations

import os

import dagster as dg

from pipeline.clickstream.assets import GROUP, build_assets
from pipeline.clickstream.checks import build_checks
from pipeline.clickstream.config import ClickstreamConfig, load_config
from pipeline.clickstream.mongo import MongoResource
from pipeline.clickstream.partitions import daily_partitions
from pipeline.clickstream.schedules import build_schedule
from pipeline.clickstream.sensors import JOB_NAME, build_metadata_sensor, build_notification_sensors
from pipeline.settings import Settings

MONGODB_URL_ENV = "MONGODB_URL"


def mongo_resource() -> MongoResource:
    # EnvVar keeps the URL (and its password) out of the UI and the run config.
    if os.environ.get(MONGODB_URL_ENV):
        return MongoResource(url=dg.EnvVar(MONGODB_URL_ENV))
    return MongoResource()


def build_defs(
    settings: Settings, config: ClickstreamConfig | None = None, mongo: MongoResource | None = None
) -> dg.Definitions:
    """Assets, checks, job, schedule and sensors of the group, plus its own ``mongo`` resource
    (``warehouse`` and ``lake`` come from the platform). The ini is read here, so a bad value stops
    the code location with a message naming it. ``config`` and ``mongo`` are for tests."""
    config = config or load_config()
    partitions = daily_partitions(settings)
    assets = build_assets(config, partitions)
    job = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.groups(GROUP),
        # one value for every run: a run-queue limit of 1 on this tag keeps runs from overlapping
        tags={"clickstream": "report"},
        description="Daily clicks and the period report over a range of days, in one run.",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=build_checks(config),
        jobs=[job],
        schedules=[build_schedule(config, partitions, job)],
        sensors=[
            build_metadata_sensor(config, partitions, job, settings.sensor_interval_seconds),
            *build_notification_sensors(JOB_NAME),
        ],
        resources={"mongo": mongo or mongo_resource()},
    )
