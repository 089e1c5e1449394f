"""The b2b group as Dagster definitions (resources ``warehouse`` and ``lake`` come from the
code location)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

from pipeline.b2b.assets import build_assets
from pipeline.b2b.checks import build_checks
from pipeline.b2b.partitions import start_date
from pipeline.b2b.schedules import daily_job, daily_schedule
from pipeline.b2b.transform import PandasEngine
from pipeline.settings import Settings


def build_defs(settings: Settings, env: Mapping[str, str] | None = None) -> dg.Definitions:
    """Assets, checks, the daily job and its schedule. The b2b transforms run on pandas
    whatever ``PIPELINE_ENGINE`` says: no Spark engine exists for them yet."""
    start = start_date(os.environ if env is None else env)
    job = daily_job()
    return dg.Definitions(
        assets=build_assets(start, PandasEngine()),
        asset_checks=build_checks(),
        jobs=[job],
        schedules=[daily_schedule(job)],
    )
