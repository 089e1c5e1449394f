"""The event system's Definitions, built from settings (no work at import time)."""

from __future__ import annotations

import dagster as dg

from pipeline.events.assets import build_event_assets
from pipeline.events.freshness_checks import build_freshness_checks, build_freshness_sensor
from pipeline.events.jobs import build_jobs, build_schedules
from pipeline.events.sensors import build_sensors
from pipeline.settings import Settings


def build_defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=build_event_assets(settings),
        asset_checks=[build_freshness_checks(settings)],
        jobs=build_jobs(settings),
        schedules=build_schedules(),
        sensors=[*build_sensors(settings), build_freshness_sensor(settings)],
    )
