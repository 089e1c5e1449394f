"""The report table in PostgreSQL and its idempotent writes.

A run recomputes whole (grouping, day) slices: every key of a day comes from the same window of
daily clicks, so the slice is deleted and copied again in one transaction. That replaces the
rows of each (grouping, key, day) and also removes keys that a corrected source no longer has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
from psycopg import sql

from pipeline.resources.warehouse import Column, TableSpec, Warehouse

SCHEMA = "clickstream"


def report_table(table_name: str) -> TableSpec:
    return TableSpec(
        schema=SCHEMA,
        name=table_name,
        columns=(
            Column("grouping", "text", nullable=False),
            Column("key", "text", nullable=False),
            Column("date", "date", nullable=False),
            Column("daily_clicks", "bigint", nullable=False),
            Column("rolling_clicks", "bigint", nullable=False),
            Column("start_date", "date", nullable=False),
        ),
        key=("grouping", "key", "date"),
    )


def to_rows(report: pd.DataFrame) -> pd.DataFrame:
    """Report frame with ``datetime.date`` days, as COPY writes them into ``date`` columns."""
    rows = report.copy()
    for column in ("date", "start_date"):
        rows[column] = pd.to_datetime(rows[column]).dt.date
    return rows


def replace_days(
    warehouse: Warehouse,
    spec: TableSpec,
    report: pd.DataFrame,
    groupings: Sequence[str],
    days: Sequence[dt.date],
) -> int:
    """Replace the (grouping, day) slices of ``days`` with ``report``'s rows, in one transaction."""
    warehouse.ensure([spec])
    with warehouse.connect() as conn, conn.transaction():
        warehouse.delete_where(conn, spec, {"grouping": groupings, "date": days})
        return warehouse.copy_frame(conn, spec, to_rows(report))


def rebuild(warehouse: Warehouse, spec: TableSpec, report: pd.DataFrame) -> int:
    """Replace the whole table with ``report`` (``postgres_data_append = false``), atomically."""
    warehouse.ensure([spec])
    return warehouse.replace_all(spec, to_rows(report))


def read_report(warehouse: Warehouse, spec: TableSpec, days: Sequence[dt.date] | None = None) -> pd.DataFrame:
    columns = sql.SQL(", ").join(map(spec.column, spec.column_names))
    if days is None:
        query = sql.SQL("SELECT {} FROM {} ORDER BY 1, 2, 3").format(columns, spec.table)
        return warehouse.read_frame(query)
    query = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s) ORDER BY 1, 2, 3").format(
        columns, spec.table, spec.column("date")
    )
    return warehouse.read_frame(query, (list(days),))
