"""Warehouse tables of the insights pipeline (schema ``insights``) and the SQL they need.

No primary keys, as in the seed: a month's slice is the rows with its ``_year`` and ``_month``,
replaced as a whole. Every statement takes identifiers from these specs and values as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import psycopg
from psycopg import sql

from pipeline.resources.warehouse import Column, TableSpec, Warehouse

SCHEMA = "insights"

_YEAR = Column("_year", "integer", nullable=False)
_MONTH = Column("_month", "integer", nullable=False)
_INGESTED_AT = Column("ingested_at", "timestamptz", nullable=False)
_COUNT = Column("_count", "bigint", nullable=False)
_RANK = Column("rank", "integer", nullable=False)

EVENTS = TableSpec(SCHEMA, "events", (
    Column("timestamp", "timestamptz", nullable=False),
    Column("email", "text"),
    Column("country", "text"),
    Column("tags", "text"),
    Column("extra", "jsonb"),  # every other column of the dump, as {"name": value}
    _YEAR, _MONTH, _INGESTED_AT,
))

RECORD_INGESTION = TableSpec(SCHEMA, "record_ingestion", (
    _YEAR, _MONTH, _INGESTED_AT,
    Column("rows", "bigint", nullable=False),  # rows loaded into insights.events
    Column("rejected_rows", "bigint", nullable=False),  # rows sent to quarantine
    Column("source_key", "text", nullable=False),
    Column("checksum", "text", nullable=False),  # sha256 of the dump's bytes
))


@dataclass(frozen=True)
class Analysis:
    """One of the seed's questions: its per-month counts, its monthly top and its all-time top."""

    counts: TableSpec
    month_top: TableSpec
    all_time: TableSpec

    @property
    def value(self) -> str:
        return self.counts.columns[0].name

    @property
    def value_is_text(self) -> bool:
        return self.counts.columns[0].type == "text"


def _analysis(counts: str, month_top: str, value: Column) -> Analysis:
    return Analysis(
        counts=TableSpec(SCHEMA, counts, (value, _COUNT, _YEAR, _MONTH, _INGESTED_AT)),
        month_top=TableSpec(SCHEMA, month_top, (value, _COUNT, _RANK, _YEAR, _MONTH)),
        all_time=TableSpec(SCHEMA, f"all_time_{month_top}", (value, _COUNT, _RANK)),
    )


ANALYSES = {  # keyed by the per-month count table's name, as transform.aggregate_month returns them
    "country": _analysis("country", "top_countries", Column("country", "text", nullable=False)),
    "userbase": _analysis("userbase", "top_users", Column("email", "text", nullable=False)),
    "dateevent": _analysis("dateevent", "busiest_day", Column("_date", "date", nullable=False)),
    "companies": _analysis("companies", "top_companies", Column("company", "text", nullable=False)),
    "tags": _analysis("tags", "top_tags", Column("tag", "text", nullable=False)),
}

ALL_TABLES = (EVENTS, RECORD_INGESTION, *(
    spec for a in ANALYSES.values() for spec in (a.counts, a.month_top, a.all_time)
))


def month_lock(year: int, month: int) -> str:
    """Advisory lock name: ingestion and the monthly tops of one month never interleave."""
    return f"insights:month:{year:04d}-{month:02d}"


ALL_TIME_LOCK = "insights:all-time"


def replace_month(conn: psycopg.Connection, spec: TableSpec, year: int, month: int,
                  frame: pd.DataFrame) -> int:
    """Delete the month's rows (a month is two columns: ``_year``, ``_month``) and COPY ``frame``
    in, inside the caller's transaction."""
    Warehouse.delete_where(conn, spec, {"_year": [year], "_month": [month]})
    return Warehouse.copy_frame(conn, spec, frame)


def read(conn: psycopg.Connection, query: sql.Composable, params: tuple = ()) -> pd.DataFrame:
    with conn.cursor() as cur:
        cur.execute(query, params)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


def month_counts_query(spec: TableSpec) -> sql.Composed:
    """The month's ``(value, _count)`` rows; parameters ``(year, month)``."""
    value = spec.columns[0].name
    return sql.SQL("SELECT {v}, {c} FROM {t} WHERE {y} = %s AND {m} = %s").format(
        v=spec.column(value), c=spec.column("_count"), t=spec.table,
        y=spec.column("_year"), m=spec.column("_month"))


def all_time_top_query(analysis: Analysis) -> sql.Composed:
    """``SUM(_count)`` per value over every month, best first, ties by value; parameter ``(n,)``.

    Text ties are ordered with the "C" collation (code points), the order Python sorts by, so
    this agrees with :func:`pipeline.insights.transform.top_n` whatever the database's locale.
    """
    spec = analysis.counts
    value = spec.column(analysis.value)
    order = sql.SQL('{} COLLATE "C"').format(value) if analysis.value_is_text else value
    query = "SELECT {v}, SUM({c})::bigint AS {c} FROM {t} GROUP BY {v} ORDER BY {c} DESC, {o} LIMIT %s"
    return sql.SQL(query).format(v=value, c=spec.column("_count"), t=spec.table, o=order)


def months_loaded_query() -> sql.Composed:
    spec = ANALYSES["dateevent"].counts
    return sql.SQL("SELECT DISTINCT {y}, {m} FROM {t} ORDER BY {y}, {m}").format(
        y=spec.column("_year"), m=spec.column("_month"), t=spec.table)
