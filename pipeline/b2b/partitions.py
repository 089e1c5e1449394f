"""Daily partitions of the b2b group: one partition per calendar day (UTC).

The first day comes from ``PIPELINE_B2B_START`` (ISO date, default 2024-01-01); the init load
is labelled with the day before it, so the first daily run finds a snapshot to build on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import dagster as dg

from pipeline.settings import SettingsError

START_VARIABLE = "PIPELINE_B2B_START"
DEFAULT_START = "2024-01-01"


def start_date(env: Mapping[str, str]) -> dt.date:
    raw = (env.get(START_VARIABLE) or DEFAULT_START).strip()
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(
            f"{START_VARIABLE}={raw!r} is not valid: expected an ISO date such as 2024-01-01."
        ) from None
    if day <= dt.date(2018, 1, 1):
        raise SettingsError(
            f"{START_VARIABLE}={raw!r} is not valid: the generated order history starts on "
            "2018-01-01, so the first daily partition must be later."
        )
    return day


def init_day(start: dt.date) -> dt.date:
    """The day the init load's snapshot is labelled with."""
    return start - dt.timedelta(days=1)


def daily_partitions(start: dt.date) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone="UTC")
