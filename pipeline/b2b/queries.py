"""The SQL the b2b assets run beyond the foundation's bulk operations.

Identifiers come from :mod:`pipeline.b2b.tables` specs and are quoted by psycopg.sql; every
value is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql

from pipeline.resources.warehouse import TableSpec


def fetch(
    conn: psycopg.Connection, query: sql.Composable, params: Sequence[Any] | None = None
) -> pd.DataFrame:
    """A query's rows as a frame, on a connection the caller holds (inside its transaction)."""
    with conn.cursor() as cur:
        cur.execute(query, params)
        columns = [d.name for d in cur.description] if cur.description else []
        return pd.DataFrame(cur.fetchall(), columns=columns)


def lock(conn: psycopg.Connection, *specs: TableSpec) -> None:
    """Serialise writers of these tables until the transaction ends (readers are not blocked).

    Read-then-write steps (the company upsert, inferred members) would otherwise race with a
    concurrent run of another day.
    """
    tables = sql.SQL(", ").join(spec.table for spec in specs)
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(tables))


def _columns(spec: TableSpec, columns: Sequence[str] | None) -> sql.Composable:
    return sql.SQL(", ").join(spec.column(c) for c in (columns or spec.column_names))


def select_all(spec: TableSpec, columns: Sequence[str] | None = None) -> sql.Composable:
    return sql.SQL("SELECT {} FROM {}").format(_columns(spec, columns), spec.table)


def select_in(spec: TableSpec, column: str, columns: Sequence[str] | None = None) -> sql.Composable:
    """Rows whose ``column`` is in the list given as the only parameter."""
    return sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
        _columns(spec, columns), spec.table, spec.column(column)
    )


def select_in_other_batch(
    spec: TableSpec, column: str, batch_column: str, columns: Sequence[str] | None = None
) -> sql.Composable:
    """Rows whose ``column`` is in the first parameter and whose batch is not the second."""
    return sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s) AND {} <> %s").format(
        _columns(spec, columns), spec.table, spec.column(column), spec.column(batch_column)
    )


def select_up_to(spec: TableSpec, column: str) -> sql.Composable:
    """Rows whose ``column`` is at most the only parameter (a day's view of a growing table)."""
    return sql.SQL("SELECT {} FROM {} WHERE {} <= %s").format(
        _columns(spec, None), spec.table, spec.column(column)
    )


def count_up_to(spec: TableSpec, column: str) -> sql.Composable:
    return sql.SQL("SELECT count(*) FROM {} WHERE {} <= %s").format(spec.table, spec.column(column))


def count_where(spec: TableSpec, column: str) -> sql.Composable:
    return sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(spec.table, spec.column(column))


def orphans(child: TableSpec, child_column: str, parent: TableSpec, parent_column: str) -> sql.Composable:
    """Count of ``child`` rows whose reference has no ``parent`` row (a foreign key, checked)."""
    return sql.SQL(
        "SELECT count(*) FROM {child} AS c"
        " WHERE NOT EXISTS (SELECT 1 FROM {parent} AS p WHERE p.{pc} = c.{cc})"
    ).format(
        child=child.table, parent=parent.table, pc=parent.column(parent_column), cc=child.column(child_column)
    )
