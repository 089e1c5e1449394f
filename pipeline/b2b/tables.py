"""Warehouse tables of schema ``b2b`` and the matching Parquet schemas of the snapshots.

Beyond the seed's columns: ``orders.batch_date`` (the day whose files loaded the order; the
init load uses the day before the first partition) makes a day's orders one replaceable slice;
``companies.updated_on`` (the day whose file last set the name) lets the upsert refuse to let
an older day overwrite a newer name; ``weblog_hits`` is keyed by ``(log_date, line_number)``.
Foreign keys are not declared (the foundation's ``TableSpec`` has none): the blocking
``referential_integrity`` checks enforce them instead.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.resources.warehouse import Column, TableSpec

SCHEMA = "b2b"


def _spec(name: str, columns: list[tuple[str, str, bool]], key: tuple[str, ...]) -> TableSpec:
    return TableSpec(SCHEMA, name, tuple(Column(n, t, nullable) for n, t, nullable in columns), key=key)


COMPANIES = _spec(
    "companies",
    [("company_id", "bigint", False), ("company_name", "text", True), ("updated_on", "date", True)],
    key=("company_id",),
)
CUSTOMERS = _spec(
    "customers",
    [
        ("customer_id", "bigint", False),
        ("full_name", "text", True),
        ("dob", "date", True),
        ("user_name", "text", True),
        ("email", "text", True),
        ("most_freq_city", "text", True),
        ("most_freq_cntry", "char(3)", True),
    ],
    key=("customer_id",),
)
PRODUCTS = _spec(
    "products",
    [
        ("prod_id", "bigint", False),
        ("prod_name", "text", True),
        ("prod_unit_price", "numeric(15,4)", False),
        ("prod_currency_code", "char(3)", False),
        ("supplier_id", "bigint", False),
    ],
    key=("prod_id",),
)
ORDERS = _spec(
    "orders",
    [
        ("order_id", "bigint", False),
        ("prod_id", "bigint", False),
        ("customer_id", "bigint", False),
        ("prod_quote_price", "numeric(15,4)", False),
        ("is_lead_sale", "boolean", False),
        ("crm_lead_id", "bigint", False),
        ("company_id", "bigint", False),
        ("created_date", "timestamptz", False),
        ("batch_date", "date", False),
    ],
    key=("order_id",),
)
WEBLOG_HITS = _spec(
    "weblog_hits",
    [
        ("log_date", "date", False),
        ("line_number", "integer", False),
        ("user_name", "text", True),
        ("country", "char(3)", True),
        ("device", "text", True),
        ("prod_id", "bigint", True),
        ("created_date", "timestamptz", False),
    ],
    key=("log_date", "line_number"),
)

# The four tables of the seed, in load order (a referenced table before its referrers).
CORE = (COMPANIES, CUSTOMERS, PRODUCTS, ORDERS)
# Snapshot name -> table, as the seed named the lake folders (``table=weblogs``).
SNAPSHOTS = {
    "companies": COMPANIES,
    "customers": CUSTOMERS,
    "products": PRODUCTS,
    "orders": ORDERS,
    "weblogs": WEBLOG_HITS,
}

# (child table, child column, parent table, parent column): checked, not declared.
FOREIGN_KEYS = (
    (PRODUCTS, "supplier_id", COMPANIES, "company_id"),
    (ORDERS, "prod_id", PRODUCTS, "prod_id"),
    (ORDERS, "customer_id", CUSTOMERS, "customer_id"),
    (ORDERS, "company_id", COMPANIES, "company_id"),
)

REPORTS = {
    "monthly_sales": _spec(
        "monthly_sales",
        [
            ("report_date", "date", False),
            ("sale_month", "integer", False),
            ("sale_year", "integer", False),
            ("monthly_sales", "numeric(15,4)", False),
            ("monthly_profit", "numeric(15,4)", False),
        ],
        key=("report_date", "sale_year", "sale_month"),
    ),
    "most_popular_products": _spec(
        "most_popular_products",
        [("report_date", "date", False), ("prod_id", "bigint", False), ("country", "char(3)", False)],
        key=("report_date", "prod_id"),
    ),
    "most_used_devices": _spec(
        "most_used_devices",
        [("report_date", "date", False), ("device", "text", False), ("total_devices", "bigint", False)],
        key=("report_date", "device"),
    ),
    "total_leads": _spec(
        "total_leads",
        [("report_date", "date", False), ("customer_id", "bigint", False), ("total_leads", "bigint", False)],
        key=("report_date", "customer_id"),
    ),
    "daily_sales": _spec(
        "daily_sales",
        [
            ("report_date", "date", False),
            ("sale_date", "date", False),
            ("revenue", "numeric(15,4)", False),
            ("orders", "bigint", False),
            ("units", "bigint", False),
        ],
        key=("report_date", "sale_date"),
    ),
    "top_companies": _spec(
        "top_companies",
        [
            ("report_date", "date", False),
            ("rank", "integer", False),
            ("company_id", "bigint", False),
            ("company_name", "text", True),
            ("revenue", "numeric(15,4)", False),
            ("orders", "bigint", False),
        ],
        key=("report_date", "company_id"),
    ),
    "product_conversion": _spec(
        "product_conversion",
        [
            ("report_date", "date", False),
            ("prod_id", "bigint", False),
            ("page_views", "bigint", False),
            ("orders", "bigint", False),
            ("conversion", "double precision", True),
        ],
        key=("report_date", "prod_id"),
    ),
}

ALL_TABLES = (*CORE, WEBLOG_HITS, *REPORTS.values())

_ARROW = {
    "bigint": pa.int64(),
    "integer": pa.int32(),
    "text": pa.string(),
    "char(3)": pa.string(),
    "date": pa.date32(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "boolean": pa.bool_(),
    "numeric(15,4)": pa.decimal128(15, 4),
    "double precision": pa.float64(),
}


def arrow_schema(spec: TableSpec) -> pa.Schema:
    """The Parquet schema of a table's snapshot: same columns, same types."""
    return pa.schema([pa.field(c.name, _ARROW[c.type], nullable=c.nullable) for c in spec.columns])
