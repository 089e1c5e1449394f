"""The Spark engine returns exactly the pandas engine's frames: values, dtypes, row order.

Input is the generator's: the init load and two days of files (a few lines corrupted), read
and assembled as the assets do, with snapshots written and read back as Parquet so the reports
see the warehouse's types (Decimal amounts, UTC timestamps, nullable ids). Doubles are compared
exactly too: both engines sum money exactly (integers of 1/10,000 in pandas, decimals in Spark)
and divide only at the end, and an IEEE division of exact operands has one correct result.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest

from pipeline.b2b import generate, storage
from pipeline.b2b.assets import read_init_tables
from pipeline.b2b.definitions import build_defs
from pipeline.b2b.partitions import init_day
from pipeline.b2b.tables import SNAPSHOTS, arrow_schema
from pipeline.b2b.transform import (
    COMPANY_CHANGE_FIELDS,
    LEAD_FIELDS,
    QUOTE_FIELDS,
    PandasEngine,
    assemble_day_orders,
    build_reports,
    missing_ids,
    parse_rows,
)
from pipeline.b2b.weblog import parse_weblog
from pipeline.resources.lake import LocalLake
from pipeline.settings import Settings

START = dt.date(2024, 1, 31)  # the two days cross a month end
DAYS = [START, START + dt.timedelta(days=1)]
PANDAS = PandasEngine()


@pytest.fixture(scope="module")
def engine(spark):
    from pipeline.b2b.spark_transform import SparkEngine

    return SparkEngine(session=spark)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    lake = LocalLake(tmp_path_factory.mktemp("b2b-parity"))
    generate.generate(lake, seed=11, start=START, days=len(DAYS), init_rows=2000, rows=1500, bad_lines=3)
    return lake


def _raw(lake, day, name, fields):
    return parse_rows(lake.read_text(storage.raw_key(day, name)), fields, source=name)[0]


def _leads_with_contradictions(lake, day):
    """The day's leads with a few rows made to contradict themselves, both ways."""
    leads = _raw(lake, day, storage.LEADS_FILE, LEAD_FIELDS)
    sales = leads.index[leads["is_lead_sale"]][:3]
    no_sales = leads.index[~leads["is_lead_sale"]][:2]
    leads.loc[sales, "order_id"] = pd.NA
    leads.loc[no_sales, "order_id"] = 42
    return leads


def _as_read_from_postgres(frame):
    """Amounts as the Decimals psycopg returns for numeric(15,4)."""
    money = [c for c in ("prod_unit_price", "prod_quote_price") if c in frame]
    return frame.assign(**{c: frame[c].map(lambda v: Decimal(f"{v:.4f}")) for c in money})


@pytest.fixture(scope="module")
def snapshot(lake):
    """The last day's five snapshot frames (init load and every day), as the reports read them,
    built as the assets build them."""
    init, _ = read_init_tables(lake, init_day(START))
    tables = {name: init[name] for name in ("companies", "customers", "products", "orders")}
    tables["weblogs"] = pd.DataFrame()
    for day in DAYS:
        quotes = PANDAS.orders_from_quotes(_raw(lake, day, storage.QUOTES_FILE, QUOTE_FIELDS))
        leads, _ = PANDAS.orders_from_leads(_raw(lake, day, storage.LEADS_FILE, LEAD_FIELDS))
        nothing_loaded = pd.DataFrame({"order_id": pd.Series(dtype="int64"), "batch_date": []})
        day_orders, _ = assemble_day_orders(
            pd.concat([quotes, leads], ignore_index=True), init["products"]["prod_id"], nothing_loaded, day
        )
        inserts, _ = parse_rows(
            lake.read_text(storage.change_key("insert", day)), COMPANY_CHANGE_FIELDS, source="insert"
        )
        hits, _ = parse_weblog(lake.read_text(storage.raw_key(day, storage.WEBLOG_FILE)))
        tables["orders"] = pd.concat([tables["orders"], day_orders], ignore_index=True)
        tables["weblogs"] = pd.concat([tables["weblogs"], hits.assign(log_date=day)], ignore_index=True)
        tables["companies"] = pd.concat(
            [tables["companies"], inserts[["company_id", "company_name"]].assign(updated_on=day)],
            ignore_index=True,
        )
        # Members an order names before any file does are inferred with empty fields, as the asset does.
        for table, column in (("customers", "customer_id"), ("companies", "company_id")):
            new = missing_ids(day_orders[column], tables[table][column])
            tables[table] = pd.concat([tables[table], pd.DataFrame({column: new})], ignore_index=True)
    snapshot = {}
    for name, frame in tables.items():
        key = storage.snapshot_key(name, DAYS[-1])
        storage.write_parquet(lake, key, _as_read_from_postgres(frame), arrow_schema(SNAPSHOTS[name]))
        snapshot[name] = storage.read_parquet(lake, key)
    return snapshot


def test_the_settings_choose_the_engine_and_no_spark_starts():
    from pyspark import SparkContext

    for engine in ("pandas", "spark"):
        defs = build_defs(Settings.from_env({"PIPELINE_ENGINE": engine}), env={})
        orders = next(s for a in defs.assets for s in a.specs if s.key == dg.AssetKey(["b2b", "orders"]))
        assert engine in orders.kinds  # the UI shows which engine computes the asset
    assert SparkContext._active_spark_context is None  # the session starts in a run, on first use


@pytest.mark.slow
@pytest.mark.spark
def test_daily_orders_are_identical(lake, engine):
    quotes = _raw(lake, DAYS[-1], storage.QUOTES_FILE, QUOTE_FIELDS)
    pd.testing.assert_frame_equal(engine.orders_from_quotes(quotes), PANDAS.orders_from_quotes(quotes))
    leads = _leads_with_contradictions(lake, DAYS[-1])
    spark_orders, spark_rejects = engine.orders_from_leads(leads)
    pandas_orders, pandas_rejects = PANDAS.orders_from_leads(leads)
    pd.testing.assert_frame_equal(spark_orders, pandas_orders)  # index labels of the leads kept too
    pd.testing.assert_frame_equal(spark_rejects, pandas_rejects)
    assert len(pandas_rejects) == 5 and len(pandas_orders) > 500


@pytest.mark.slow
@pytest.mark.spark
def test_every_report_is_identical(snapshot, engine):
    expected = build_reports(PANDAS, snapshot, DAYS[-1])
    actual = build_reports(engine, snapshot, DAYS[-1])
    assert actual.keys() == expected.keys()
    for name, frame in expected.items():
        assert len(frame) > 0, f"{name} is empty: the comparison would prove little"
        pd.testing.assert_frame_equal(actual[name], frame, check_exact=True, obj=name)


@pytest.mark.slow
@pytest.mark.spark
def test_edge_cases_are_identical(engine):
    """Half-cent ties of both signs, a month end in UTC, an order of an unknown product, companies
    without a name or unknown, and no web log at all."""
    stamp = pd.Timestamp
    orders = pd.DataFrame(
        {
            "order_id": [1, 2, 3, 4, 5],
            "prod_id": [10, 10, 20, 20, 30],
            "customer_id": [7, 7, 8, 9, 9],
            "prod_quote_price": [0.0100, 0.0200, 1.0000, 2.5050, 3.0],
            "is_lead_sale": [True, False, True, True, False],
            "crm_lead_id": [1, -1, 3, -1, -1],
            "company_id": [100, 100, 200, 300, 100],
            "created_date": [
                stamp("2024-01-31T23:59:59Z"),
                stamp("2024-02-01T00:00:00Z"),
                stamp("2024-02-01T12:00:00Z"),
                stamp("2024-02-29T08:00:00Z"),
                stamp("2024-02-29T09:00:00Z"),
            ],
        }
    )
    no_logs = pd.DataFrame(
        {
            "user_name": pd.Series(dtype=object),
            "country": pd.Series(dtype=object),
            "device": pd.Series(dtype=object),
            "prod_id": pd.Series(dtype="Int64"),
            "created_date": pd.Series(dtype="datetime64[ns, UTC]"),
        }
    )
    snapshot = {
        "orders": orders,
        "products": pd.DataFrame({"prod_id": [10, 20], "prod_unit_price": [0.0150, 1.0025]}),
        "companies": pd.DataFrame({"company_id": [100, 200], "company_name": ["Atlas Inc", None]}),
        "customers": pd.DataFrame({"customer_id": [7, 8, 9], "user_name": ["a", "b", None]}),
        "weblogs": no_logs,
    }
    day = dt.date(2024, 2, 29)
    expected = build_reports(PANDAS, snapshot, day)
    # February: sales 0.02 + 1.00 + 2.505 = 3.525, profit 0.005 - 0.0025 + 1.5025 = 1.505 (order 5
    # has no product); January: sales 0.01, profit 0.01 - 0.015 = -0.005. Ties round away from 0.
    assert list(expected["monthly_sales"].itertuples(index=False, name=None)) == [
        (2, 2024, 3.53, 1.51),
        (1, 2024, 0.01, -0.01),
    ]
    assert expected["most_popular_products"].empty and expected["product_conversion"].empty
    for name, frame in build_reports(engine, snapshot, day).items():
        pd.testing.assert_frame_equal(frame, expected[name], check_exact=True, obj=name)
