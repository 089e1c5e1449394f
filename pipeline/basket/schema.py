"""The input contract: the public Instacart files' tables, columns and value rules.

One declaration serves the parser, the audit and the warehouse tables, so the three cannot
disagree about what a valid row is.
"""

from __future__ import annotations

from dataclasses import dataclass

REFERENCE_TABLES = ("departments", "aisles", "products")
STREAM_TABLES = ("orders", "order_products")
EVAL_SETS = ("prior", "train", "test")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "int", "float" or "text"
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    allowed: tuple[str, ...] = ()  # the only values a text field may hold, when given


INPUT: dict[str, tuple[Field, ...]] = {
    "departments": (Field("department_id", "int"), Field("department", "text")),
    "aisles": (Field("aisle_id", "int"), Field("aisle", "text")),
    "products": (
        Field("product_id", "int"),
        Field("product_name", "text"),
        Field("aisle_id", "int"),
        Field("department_id", "int"),
    ),
    "orders": (
        Field("order_id", "int"),
        Field("user_id", "int"),
        Field("eval_set", "text", allowed=EVAL_SETS),
        Field("order_number", "int", low=1),
        Field("order_dow", "int", low=0, high=6),
        Field("order_hour_of_day", "int", low=0, high=23),
        Field("days_since_prior_order", "float", low=0),
    ),
    "order_products": (
        Field("order_id", "int"),
        Field("product_id", "int"),
        Field("add_to_cart_order", "int", low=1),
        Field("reordered", "int", low=0, high=1),
    ),
}

KEYS: dict[str, tuple[str, ...]] = {
    "departments": ("department_id",),
    "aisles": ("aisle_id",),
    "products": ("product_id",),
    "orders": ("order_id",),
    "order_products": ("order_id", "product_id"),
}

# (child table, column) -> parent table whose key the column must name.
REFERENCES: dict[tuple[str, str], str] = {
    ("products", "aisle_id"): "aisles",
    ("products", "department_id"): "departments",
    ("order_products", "order_id"): "orders",
    ("order_products", "product_id"): "products",
}

# Largest share of empty values a column may hold; every column not listed: none.
MAX_NULL_FRACTION: dict[tuple[str, str], float] = {}

# Columns that may be empty only on a user's first order (order_number = 1), whatever the share.
FIRST_ORDER_ONLY_NULLS: dict[str, str] = {"orders": "days_since_prior_order"}


def columns(table: str) -> tuple[str, ...]:
    return tuple(field.name for field in INPUT[table])


def text_columns(table: str) -> tuple[str, ...]:
    return tuple(field.name for field in INPUT[table] if field.kind == "text")
