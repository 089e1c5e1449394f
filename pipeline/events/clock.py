"""The platform's clock: the newest minute in t1, and the windows measured back from it.

Windows are measured in event time, not wall time, so a replay of old data behaves exactly like
live data (DESIGN section 3).
"""

from __future__ import annotations

import pandas as pd
import psycopg
from psycopg import sql

from pipeline.events.tables import pairs, t1_table
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings


def newest_t1_minute(warehouse: Warehouse, settings: Settings) -> pd.Timestamp | None:
    """The newest minute in t1: the clock all windows are measured from (event time, not wall time)."""
    specs = [t1_table(e, d) for e, d in pairs(settings.events, settings.dimensions)]
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT max(minute) FROM {}").format(spec.table) for spec in specs
    )
    try:
        frame = warehouse.read_frame(sql.SQL("SELECT max(m) FROM ({}) AS q(m)").format(query))
    except psycopg.errors.UndefinedTable:
        return None  # nothing materialized yet
    value = frame.iloc[0, 0] if len(frame) else None
    return None if value is None or pd.isna(value) else pd.Timestamp(value).tz_convert("UTC")


def t1_cutoff(newest: pd.Timestamp, settings: Settings) -> pd.Timestamp:
    """Minutes at or before this are outside the t1 window."""
    return newest - pd.Timedelta(hours=settings.t1_retention_hours)


def t2_cutoff(newest: pd.Timestamp, settings: Settings) -> pd.Timestamp:
    """Hours at or before this are outside the t2 window."""
    return newest.floor("h") - pd.Timedelta(days=settings.t2_retention_days)
