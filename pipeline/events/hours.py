"""``t2_hour``: each hour as the merge of its minute aggregates, and the end of an hour's pending
state once raw -> t1 -> t2 is complete."""

from __future__ import annotations

import pandas as pd

from pipeline.events import layout, transform
from pipeline.events.aggregates import empty_long, from_long, read_aggregates
from pipeline.events.clock import newest_t1_minute, t2_cutoff
from pipeline.events.engine import Engine, engine_for
from pipeline.events.layout import Manifest, hour_lock_name
from pipeline.events.tables import pairs, t2_table
from pipeline.resources.lake import Lake
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings


def rebuild_hours(lake: Lake, warehouse: Warehouse, settings: Settings, hours: list[pd.Timestamp],
                  engine: Engine | None = None) -> int:
    """Replace the hours' t2 rows with the merge of their minute aggregates; returns rows written.

    One merge per table for all the hours (one Spark query per table for a backfill range) and one
    transaction, under the hours' locks. Hours older than the t2 window get no rows.
    """
    engine = engine or engine_for(settings)
    written = 0
    with warehouse.advisory_lock(*(hour_lock_name(h) for h in hours)):
        newest = newest_t1_minute(warehouse, settings)
        cutoff = None if newest is None else t2_cutoff(newest, settings)
        longs = [read_aggregates(lake, hour)[0] for hour in hours if cutoff is None or hour > cutoff]
        long = pd.concat([df for df in longs if len(df)] or [empty_long()], ignore_index=True)
        hours_py = [hour.to_pydatetime() for hour in hours]
        with warehouse.connect() as conn, conn.transaction():
            for event, dimension in pairs(settings.events, settings.dimensions):
                minutes = from_long(long, event, dimension)
                hourly = engine.merge(transform.to_hour(minutes), event, dimension, "hour")
                written += warehouse.replace_slice(t2_table(event, dimension), "hour", hours_py, hourly, conn)
    return written


def clear_pending_if_current(lake: Lake, warehouse: Warehouse, settings: Settings, hour: pd.Timestamp) -> bool:
    """Drop the hour's pending marker once every accepted file is in its aggregates (call under
    the hour's lock): a claim by another run since this run's t1 keeps the marker."""
    wanted = Manifest.load(lake, hour).accepted_by_minute()
    _, state = read_aggregates(lake, hour)
    newest = newest_t1_minute(warehouse, settings)
    cutoff = None if newest is None else t2_cutoff(newest, settings)
    behind = [m for m, files in wanted.items()
              if state.get(m) != files and (cutoff is None or pd.Timestamp(m).floor("h") > cutoff)]
    if behind:
        return False
    lake.delete(layout.pending_key(hour))
    return True
