"""Daily partitions of streamed orders: one partition per day folder under basket/stream/<table>/."""

from __future__ import annotations

import dagster as dg


def daily_partitions(start: str) -> dg.DailyPartitionsDefinition:
    """Days from ``start`` (``PIPELINE_BASKET_START``) up to and including today, UTC.

    ``end_offset=1`` makes today a partition already: orders stream in during the day, the sensor
    loads them as they land, and the 23:35 UTC schedule runs the day before it ends, as the seed did.
    """
    return dg.DailyPartitionsDefinition(start_date=start, end_offset=1, timezone="UTC")
