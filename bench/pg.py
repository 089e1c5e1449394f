"""The benchmark's PostgreSQL: one embedded server per run, a fresh database per measurement."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql

from pipeline.events.tables import metric_names, pairs, t1_table
from pipeline.resources.warehouse import embedded_server_url, with_database


def start_server(workdir: Path) -> str:
    """Admin URL of an embedded server under ``workdir``; it stops when this process exits."""
    return embedded_server_url(Path(workdir) / "pg", database="postgres", cleanup_mode="stop")


def fresh_database(admin_url: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def t1_totals(
    url: str, events, dimensions, before: pd.Timestamp | None = None
) -> dict[str, tuple[int, int, float]]:
    """Per t1 table: (rows, sum of the event count, money) where money is gmv for purchases and
    avg_price x count for views by product_id (0 otherwise); only minutes before ``before``."""
    totals = {}
    limit = before.to_pydatetime() if before is not None else dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc)
    with psycopg.connect(url) as conn:
        for event, dimension in pairs(events, dimensions):
            spec = t1_table(event, dimension)
            count = spec.column("view_count" if event == "view" else "purchase_count")
            metrics = metric_names(event, dimension)
            if "gmv" in metrics:
                money = spec.column("gmv")
            elif "avg_price" in metrics:
                money = sql.SQL("{} * {}").format(spec.column("avg_price"), count)
            else:
                money = sql.SQL("0")
            query = sql.SQL(
                "SELECT count(*), coalesce(sum({}), 0), coalesce(sum({}), 0) FROM {} WHERE minute < %s"
            )
            rows, counted, amount = conn.execute(query.format(count, money, spec.table), (limit,)).fetchone()
            totals[spec.qualified] = (int(rows), int(counted), float(amount))
    return totals


def same_totals(left: dict, right: dict, rel: float = 1e-9) -> bool:
    """Equal rows and counts, money equal to ``rel`` (float sums differ in the last digits)."""
    if left.keys() != right.keys():
        return False
    for table, (rows, counted, amount) in left.items():
        other = right[table]
        if (rows, counted) != other[:2] or abs(amount - other[2]) > rel * max(1.0, abs(amount)):
            return False
    return True
