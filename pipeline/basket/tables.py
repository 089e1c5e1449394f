"""The ``basket`` schema's tables, and the few reads the assets make of them.

Raw tables carry ``stream_date`` (the day folder a row came from) so a day is replaced as one
slice. Every statement takes its identifiers from a :class:`TableSpec` and its values as
parameters.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import pandas as pd
import psycopg
from psycopg import sql

from pipeline.resources.warehouse import Column, TableSpec, Warehouse

from . import schema, transform

SCHEMA = "basket"
_SQL_TYPES = {"int": "bigint", "float": "double precision", "text": "text"}
_FEATURE_TYPES = {
    "max_order_number": "integer",
    "total_days_prior_order": "double precision",
    "avg_days_prior_order": "double precision",
    "user_total_products": "bigint",
    "user_distinct_products": "bigint",
    "user_reorder_ratio": "double precision",
    "up_orders": "bigint",
    "up_first_order": "integer",
    "up_last_order": "integer",
    "up_average_cart_position": "double precision",
    "prod_orders": "bigint",
    "prod_reorders": "bigint",
    "prod_first_orders": "bigint",
    "prod_second_orders": "bigint",
}
_PANDAS_TYPES = {
    "bigint": "Int64",
    "integer": "Int64",
    "double precision": "float64",
    "text": "object",
    "date": "object",
}


def _raw(table: str) -> TableSpec:
    key = schema.KEYS[table]
    columns = [Column(f.name, _SQL_TYPES[f.kind], nullable=f.name not in key) for f in schema.INPUT[table]]
    if table in schema.STREAM_TABLES:
        columns.append(Column("stream_date", "date", nullable=False))
    return TableSpec(SCHEMA, table, tuple(columns), key=key)


def _input_type(name: str) -> str:
    for fields in schema.INPUT.values():
        for f in fields:
            if f.name == name:
                return _SQL_TYPES[f.kind]
    return _FEATURE_TYPES[name]


def _feature(name: str, columns: Sequence[str], key: tuple[str, ...]) -> TableSpec:
    return TableSpec(SCHEMA, name, tuple(Column(c, _input_type(c)) for c in columns), key=key)


RAW: dict[str, TableSpec] = {table: _raw(table) for table in schema.REFERENCE_TABLES + schema.STREAM_TABLES}
FEATURES: dict[str, TableSpec] = {
    "order_products_prior": _feature(
        "order_products_prior", transform.ORDER_PRODUCTS_PRIOR_COLUMNS, ("order_id", "product_id")
    ),
    "user_features_1": _feature("user_features_1", transform.USER_FEATURES_1_COLUMNS, ("user_id",)),
    "user_features_2": _feature("user_features_2", transform.USER_FEATURES_2_COLUMNS, ("user_id",)),
    "up_features": _feature("up_features", transform.UP_FEATURES_COLUMNS, ("user_id", "product_id")),
    "prd_features": _feature("prd_features", transform.PRD_FEATURES_COLUMNS, ("product_id",)),
}
ALL = tuple(RAW.values()) + tuple(FEATURES.values())


def read_table(warehouse: Warehouse, spec: TableSpec, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A whole table through ``COPY ... TO STDOUT`` (fast for millions of rows), typed as the spec says."""
    names = list(columns or spec.column_names)
    query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(
        sql.SQL(", ").join(spec.column(name) for name in names), spec.table
    )
    buffer = io.BytesIO()
    with warehouse.connect() as conn, conn.cursor() as cur, cur.copy(query) as copy:
        for block in copy:
            buffer.write(block)
    buffer.seek(0)
    types = {c.name: _PANDAS_TYPES[c.type] for c in spec.columns if c.name in names}
    return pd.read_csv(buffer, dtype=types, keep_default_na=False, na_values=[""])


def rows_on_day(warehouse: Warehouse, spec: TableSpec, day: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(spec.table, spec.column("stream_date"))
    return int(warehouse.scalar(query, (day,)))


def keys_on_other_days(
    warehouse: Warehouse, spec: TableSpec, day: str, order_ids: Sequence[int]
) -> pd.DataFrame:
    """The spec's key columns of rows from days other than ``day`` whose order_id is in ``order_ids``."""
    query = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s) AND {} <> %s").format(
        sql.SQL(", ").join(map(spec.column, spec.key)),
        spec.table,
        spec.column("order_id"),
        spec.column("stream_date"),
    )
    return warehouse.read_frame(query, (list(order_ids), day))


def existing(warehouse: Warehouse, spec: TableSpec, column: str, values: Sequence[int]) -> list[int]:
    """Which of ``values`` the table holds in ``column``."""
    query = sql.SQL("SELECT DISTINCT {0} FROM {1} WHERE {0} = ANY(%s)").format(
        spec.column(column), spec.table
    )
    return warehouse.read_frame(query, (list(values),))[column].tolist()


def newest_day(warehouse: Warehouse) -> str | None:
    spec = RAW["orders"]
    day = warehouse.scalar(sql.SQL("SELECT max({}) FROM {}").format(spec.column("stream_date"), spec.table))
    return day.isoformat() if day else None


def lock(conn: psycopg.Connection, spec: TableSpec, day: str = "") -> None:
    """Serialise replaces of a table (or of one day of it) across concurrent runs, until the
    transaction ends: two DELETE-then-COPY of the same rows at once would collide on the key."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{spec.qualified}:{day}",))
