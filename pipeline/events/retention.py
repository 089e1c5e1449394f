"""``t1_retention`` and ``t2_retention``: drop rows older than their windows (measured back from the
newest t1 minute; archives and minute aggregates stay)."""

from __future__ import annotations

import pandas as pd
from psycopg import sql

from pipeline.events import layout
from pipeline.events.clock import newest_t1_minute, t1_cutoff, t2_cutoff
from pipeline.events.tables import pairs, t1_table, t2_table
from pipeline.resources.lake import Lake
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings


def _delete_before(warehouse: Warehouse, specs, column: str, cutoff: pd.Timestamp) -> int:
    deleted = 0
    with warehouse.connect() as conn, conn.transaction():
        for spec in specs:
            cur = conn.execute(sql.SQL("DELETE FROM {} WHERE {} <= %s").format(spec.table, spec.column(column)),
                               (cutoff.to_pydatetime(),))
            deleted += cur.rowcount
    return deleted


def apply_t1_retention(warehouse: Warehouse, settings: Settings) -> tuple[int, pd.Timestamp | None]:
    newest = newest_t1_minute(warehouse, settings)
    if newest is None:
        return 0, None
    cutoff = t1_cutoff(newest, settings)
    specs = [t1_table(e, d) for e, d in pairs(settings.events, settings.dimensions)]
    return _delete_before(warehouse, specs, "minute", cutoff), cutoff


def apply_t2_retention(lake: Lake, warehouse: Warehouse, settings: Settings) -> tuple[int, pd.Timestamp | None]:
    """Drop t2 hours and staged rows older than the t2 window (aggregates and archives stay)."""
    newest = newest_t1_minute(warehouse, settings)
    if newest is None:
        return 0, None
    cutoff = t2_cutoff(newest, settings)
    specs = [t2_table(e, d) for e, d in pairs(settings.events, settings.dimensions)]
    deleted = _delete_before(warehouse, specs, "hour", cutoff)
    for obj in lake.list("staged/"):
        hour = layout.hour_of_slug(obj.key.split("/")[1])
        if hour <= cutoff:
            lake.delete(obj.key)
    return deleted, cutoff
