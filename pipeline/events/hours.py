"""``t2_hour``: each hour as the merge of its minute aggregates, and the end of an hour's pending
state once raw -> t1 -> t2 is complete."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from pipeline.events import aggregation, layout
from pipeline.events.aggregates import read_state
from pipeline.events.clock import newest_t1_minute, t2_cutoff
from pipeline.events.engine import Engine, engine_for
from pipeline.events.layout import Manifest, hour_lock_name
from pipeline.events.tables import pairs, t2_table
from pipeline.resources.lake import Lake
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings


@dataclass
class HourReport:
    rows: int = 0
    # (hour, event, dimension) -> (count, money units) of the hour's minute aggregates: what the
    # t2 check compares the table with. Hours outside the t2 window are absent (no rows expected).
    minute_totals: dict[tuple[pd.Timestamp, str, str], tuple[int, int]] = field(default_factory=dict)


def rebuild_hours(lake: Lake, warehouse: Warehouse, settings: Settings, hours: list[pd.Timestamp],
                  engine: Engine | None = None) -> HourReport:
    """Replace the hours' t2 rows with the merge of their minute aggregates.

    One merge for all the hours (on Spark, one query whose executors read the aggregates files)
    and one transaction, under the hours' locks. Hours older than the t2 window get no rows.
    """
    engine = engine or engine_for(settings)
    report = HourReport()
    with warehouse.advisory_lock(*(hour_lock_name(h) for h in hours)):
        newest = newest_t1_minute(warehouse, settings)
        cutoff = None if newest is None else t2_cutoff(newest, settings)
        current = [hour for hour in hours if cutoff is None or hour > cutoff]
        hourly, report.minute_totals = engine.hour_sums(lake, current, settings.events, settings.dimensions)
        hours_py = [hour.to_pydatetime() for hour in hours]
        with warehouse.connect() as conn, conn.transaction():
            for event, dimension in pairs(settings.events, settings.dimensions):
                sums = hourly[(event, dimension)]
                spec = t2_table(event, dimension)
                warehouse.delete_where(conn, spec, {"hour": hours_py})
                values = aggregation.metrics(sums["count"].to_numpy(), sums["units"].to_numpy(), event, dimension)
                report.rows += warehouse.copy_columns(
                    conn, spec, {"hour": sums["time"], dimension: sums["key"], **values}, sums.num_rows)
    return report


def clear_pending_if_current(lake: Lake, warehouse: Warehouse, settings: Settings, hour: pd.Timestamp) -> bool:
    """Drop the hour's pending marker once every accepted file is in its aggregates (call under
    the hour's lock): a claim by another run since this run's t1 keeps the marker."""
    wanted = Manifest.load(lake, hour).accepted_by_minute()
    state = read_state(lake, hour)
    newest = newest_t1_minute(warehouse, settings)
    cutoff = None if newest is None else t2_cutoff(newest, settings)
    behind = [m for m, files in wanted.items()
              if state.get(m) != files and (cutoff is None or pd.Timestamp(m).floor("h") > cutoff)]
    if behind:
        return False
    lake.delete(layout.pending_key(hour))
    return True
