"""Warehouse tables of the event system: names and columns exactly as DESIGN section 4."""

from __future__ import annotations

from pipeline.resources.warehouse import Column, TableSpec

SCHEMA = "events"
_KEY_TYPES = {"product_id": "bigint", "category_id": "bigint"}
_METRIC_TYPES = {"view_count": "bigint", "purchase_count": "bigint", "gmv": "double precision",
                 "avg_price": "double precision"}


def metric_names(event: str, dimension: str) -> tuple[str, ...]:
    if event == "view":
        return ("view_count", "avg_price") if dimension == "product_id" else ("view_count",)
    return ("gmv", "purchase_count", "avg_price")


def _columns(time_col: str | None, event: str, dimension: str) -> tuple[Column, ...]:
    columns = [Column(time_col, "timestamptz", nullable=False)] if time_col else []
    columns.append(Column(dimension, _KEY_TYPES.get(dimension, "text"), nullable=False))
    columns += [Column(m, _METRIC_TYPES[m], nullable=False) for m in metric_names(event, dimension)]
    return tuple(columns)


def t1_table(event: str, dimension: str) -> TableSpec:
    return TableSpec(SCHEMA, f"{event}_{dimension}_minute", _columns("minute", event, dimension),
                     key=("minute", dimension))


def t2_table(event: str, dimension: str) -> TableSpec:
    return TableSpec(SCHEMA, f"{event}_{dimension}_hour", _columns("hour", event, dimension), key=("hour", dimension))


def rank_table(event: str, dimension: str) -> TableSpec:
    columns = _columns(None, event, dimension) + (
        Column("rank", "bigint", nullable=False),
        Column("window_start", "timestamptz", nullable=False),
        Column("window_end", "timestamptz", nullable=False),
    )
    return TableSpec(SCHEMA, f"{event}_{dimension}_rank", columns, key=(dimension,))


def pairs(events, dimensions) -> list[tuple[str, str]]:
    return [(event, dimension) for event in events for dimension in dimensions]


def all_tables(events, dimensions) -> list[TableSpec]:
    return [make(e, d) for e, d in pairs(events, dimensions) for make in (t1_table, t2_table, rank_table)]
