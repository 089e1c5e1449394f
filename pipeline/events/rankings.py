"""``rankings``: every key of the 60 minutes ending at the newest t1 minute, merged and ranked in
PostgreSQL."""

from __future__ import annotations

import pandas as pd
from psycopg import sql

from pipeline.events import transform
from pipeline.events.clock import newest_t1_minute
from pipeline.events.tables import metric_names, pairs, rank_table, t1_table
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings


def rebuild_rankings(warehouse: Warehouse, settings: Settings) -> tuple[int, pd.Timestamp | None]:
    """Rank every key of the 60 minutes ending at the newest t1 minute; replace the rank tables.

    Read, rank and replace happen under one lock and one transaction, so overlapping runs can
    only ever leave the rankings of the newest committed t1 state. The merge runs in PostgreSQL,
    where the t1 rows are (whatever the engine): an hour of t1 is up to millions of rows, which
    would cost more to move than to merge.
    """
    written = 0
    with warehouse.advisory_lock("events-rankings"), warehouse.connect() as conn, conn.transaction():
        newest = newest_t1_minute(warehouse, settings)
        for event, dimension in pairs(settings.events, settings.dimensions):
            target = rank_table(event, dimension)
            conn.execute(sql.SQL("DELETE FROM {}").format(target.table))
            if newest is None:
                continue
            start = newest - pd.Timedelta(minutes=59)
            window = {"start": start.to_pydatetime(), "end": (newest + pd.Timedelta(minutes=1)).to_pydatetime()}
            written += conn.execute(rank_statement(event, dimension), window).rowcount
    return written, newest


def rank_statement(event: str, dimension: str) -> sql.Composed:
    """Fill a rank table from the t1 minutes since ``%(start)s``, as ``transform.merge_partials``
    merges partials and ranked by the metric (gmv for purchases, view_count for views), highest
    first, ties by key in byte order (``COLLATE "C"``, as pandas sorts text).

    Money is summed exactly as in the pandas engine: each partial back to 1/10,000 units
    (``round`` is ``rint`` on double precision, as ``np.rint``), summed as integers, then divided
    once; so gmv and avg_price are the very floats the engines compute for the same rows.
    """
    source, target = t1_table(event, dimension), rank_table(event, dimension)
    key = source.column(dimension)
    metrics = metric_names(event, dimension)
    count = source.column("purchase_count" if event == "purchase" else "view_count")
    scale = sql.Literal(transform.PRICE_SCALE)
    if "gmv" in metrics:
        units = sql.SQL("round({} * {})").format(source.column("gmv"), scale)
    elif "avg_price" in metrics:
        units = sql.SQL("round({} * {}::float8 * {})").format(source.column("avg_price"), count, scale)
    else:
        units = sql.SQL("0")
    outer = {"gmv": sql.SQL("_money"), "purchase_count": sql.SQL("_n"), "view_count": sql.SQL("_n"),
             "avg_price": sql.SQL("_money / _n")}
    by = sql.SQL("_money") if event == "purchase" else sql.SQL("_n")
    text_key = next(c.type for c in source.columns if c.name == dimension) == "text"
    key_order = sql.SQL('{} COLLATE "C"').format(key) if text_key else key
    return sql.SQL(
        "INSERT INTO {target} ({key}, {metrics}, {rank}, {window_start}, {window_end}) "
        "SELECT {key}, {values}, row_number() OVER (ORDER BY {by} DESC, {key_order}), %(start)s, %(end)s "
        "FROM (SELECT {key}, sum({count})::bigint AS _n, sum({units}::bigint)::float8 / {scale} AS _money "
        "FROM {source} WHERE {minute} >= %(start)s GROUP BY {key}) AS w"
    ).format(
        target=target.table, source=source.table, key=key, count=count, units=units, scale=scale, by=by,
        key_order=key_order, minute=source.column("minute"), rank=target.column("rank"),
        window_start=target.column("window_start"), window_end=target.column("window_end"),
        metrics=sql.SQL(", ").join(map(target.column, metrics)),
        values=sql.SQL(", ").join(outer[m] for m in metrics),
    )
