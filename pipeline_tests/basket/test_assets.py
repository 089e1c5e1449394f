"""The assets on the real embedded PostgreSQL and a folder lake: load, audit, features, final CSV."""

import io
import json

import dagster as dg
import pandas as pd
import pytest
from psycopg import sql

from pipeline.basket import assets, files, tables
from pipeline.basket.config import BasketConfig
from pipeline.basket.generate import generate
from pipeline.basket.partitions import daily_partitions
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FINAL_HEADER = (
    "product_id,user_id,up_orders,up_first_order,up_last_order,up_average_cart_position,max_order_number,"
    "total_days_prior_order,avg_days_prior_order,user_total_products,user_distinct_products,user_reorder_ratio,"
    "prod_orders,prod_reorders,prod_first_orders,prod_second_orders"
)
REFERENCE = {
    "departments": "department_id,department\n4,produce\n16,dairy eggs\n",
    "aisles": "aisle_id,aisle\n24,fresh fruits\n120,yogurt\n",
    "products": "product_id,product_name,aisle_id,department_id\n"
    '100,Banana,24,4\n200,"Yogurt, Greek",120,16\n'
    "300,Organic Strawberries,24,4\n",
}
# The tiny set of test_transform.py without its deliberate defects; order 13 is a train order.
ORDERS_CSV = (
    "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order\n"
    "10,1,prior,1,2,08,\n11,1,prior,2,3,07,15.0\n12,1,prior,3,3,12,21.0\n13,1,train,4,4,07,29.0\n"
    "20,2,prior,1,5,15,\n21,2,prior,2,1,09,8.0\n22,2,test,3,1,10,30.0\n"
    "30,3,prior,1,0,11,\n31,3,prior,2,6,20,6.0\n40,4,prior,1,2,09,\n"
)
ORDER_PRODUCTS = [
    (10, 100, 1, 0),
    (10, 200, 2, 0),
    (11, 100, 1, 1),
    (11, 300, 2, 0),
    (12, 100, 2, 1),
    (12, 200, 1, 1),
    (12, 300, 3, 1),
    (13, 100, 1, 1),
    (20, 200, 1, 0),
    (21, 200, 1, 1),
    (21, 100, 2, 0),
    (30, 300, 1, 0),
    (31, 300, 1, 1),
    (40, 100, 1, 0),
]


@pytest.fixture
def graph():
    reference, orders = assets.build_input_assets(daily_partitions("2024-01-01"), BasketConfig())
    return [reference, orders, *assets.FEATURE_ASSETS]


@pytest.fixture
def resources(pg_url, lake):
    return {"warehouse": WarehouseResource(url=pg_url), "lake": LakeResource(url=str(lake.root))}


def push_day(lake, day, orders_csv=ORDERS_CSV, order_products=ORDER_PRODUCTS):
    for table, text in REFERENCE.items():
        lake.write_text(files.reference_key(table), text)
    lake.write_text(f"{files.stream_prefix('orders', day)}orders-1.csv", orders_csv)
    names = ("order_id", "product_id", "add_to_cart_order", "reordered")
    lines = "".join(json.dumps(dict(zip(names, row, strict=True))) + "\n" for row in order_products)
    lake.write_text(f"{files.stream_prefix('order_products', day)}order-products-1.jsonl", lines)


def count(warehouse, name):
    spec = tables.RAW.get(name) or tables.FEATURES[name]
    return warehouse.row_count(spec)


def test_reference_one_day_and_features(graph, resources, warehouse, lake):
    push_day(lake, "2024-01-02")
    result = dg.materialize(graph, partition_key="2024-01-02", resources=resources)

    assert result.success
    expected = {
        "departments": 2,
        "aisles": 2,
        "products": 3,
        "orders": 10,
        "order_products": 14,
        "order_products_prior": 13,
        "user_features_1": 4,
        "user_features_2": 4,
        "up_features": 7,
        "prd_features": 3,
    }
    assert {name: count(warehouse, name) for name in expected} == expected
    row_counts = {
        e.asset_key.to_user_string(): e.materialization.metadata["dagster/row_count"].value
        for e in result.get_asset_materialization_events()
    }
    assert row_counts == {
        "basket/reference": 7,
        "basket/orders": 24,
        "basket/order_products_prior": 13,
        "basket/user_features_1": 4,
        "basket/user_features_2": 4,
        "basket/up_features": 7,
        "basket/prd_features": 3,
        "basket/features_csv": 7,
    }
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert len(result.get_asset_check_evaluations()) == 12

    text = lake.read_text("basket/final/2024-01-02/basket_features.csv")
    lines = text.splitlines()
    assert lines[0] == FINAL_HEADER
    assert len(lines) == 1 + 7
    # user 4: one first order, so no days and no reorder ratio (empty); product 100: 5 rows, 2 reorders,
    # first bought by users 1, 2 and 4, bought a second time by user 1.
    assert "100,4,1,1,1,1.0,1,,,1,1,,5,2,3,1" in lines
    for name in tables.FEATURES:
        frame = pd.read_parquet(io.BytesIO(lake.read_bytes(files.feature_key(name))))
        assert len(frame) == expected[name]


def test_reloading_a_day_replaces_it(graph, resources, warehouse, lake):
    push_day(lake, "2024-01-02")
    assert dg.materialize(graph[:2], partition_key="2024-01-02", resources=resources).success
    fewer = [row for row in ORDER_PRODUCTS if row[0] != 12]
    push_day(lake, "2024-01-02", order_products=fewer)
    assert dg.materialize(graph[1:2], partition_key="2024-01-02", resources=resources).success
    assert count(warehouse, "orders") == 10
    assert count(warehouse, "order_products") == len(fewer)


def test_failed_audit_blocks_the_features_and_publishes_nothing(graph, resources, warehouse, lake):
    push_day(lake, "2024-01-02", order_products=ORDER_PRODUCTS + [(40, 999, 2, 0)])  # no product 999
    broken = files.stream_prefix("order_products", "2024-01-02") + "order-products-2.jsonl"
    lake.write_text(broken, '{"order_id": 40, "product_id": 300,\n')

    result = dg.materialize(graph, partition_key="2024-01-02", resources=resources, raise_on_error=False)

    assert not result.success
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"basket/reference"}  # basket/orders failed; no feature ran
    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert set(failed) == {"columns_and_types", "referential_integrity"}
    integrity = failed["referential_integrity"].metadata
    assert integrity["order_products.product_id.orphan_rows"].value == 1
    assert integrity["order_products.product_id.examples"].value == [999]
    assert count(warehouse, "orders") == 0 and count(warehouse, "order_products") == 0
    quarantined = "quarantine/basket/stream/order_products/2024-01-02/order-products-2.jsonl"
    assert lake.exists(quarantined) and not lake.exists(broken)
    assert "record 1 is not valid JSON" in lake.read_text(quarantined + ".reason.txt")
    assert not list(lake.list("basket/final/"))


def test_day_over_day_band_compares_with_the_previous_day(graph, resources, warehouse, lake):
    push_day(lake, "2024-01-02")
    assert dg.materialize(graph[:2], partition_key="2024-01-02", resources=resources).success
    # One order and its products the next day: 1/10 of the orders, below the 0.5 band.
    push_day(
        lake,
        "2024-01-03",
        orders_csv=ORDERS_CSV.replace("\n10,", "\n50,").split("\n11,")[0] + "\n",
        order_products=[(50, 100, 1, 0), (50, 200, 2, 0)],
    )
    result = dg.materialize(graph[1:2], partition_key="2024-01-03", resources=resources, raise_on_error=False)
    counts = next(e for e in result.get_asset_check_evaluations() if e.check_name == "row_counts")
    assert not counts.passed
    assert counts.metadata["orders.previous_day_rows"].value == 10
    assert counts.metadata["orders.day_over_day_ratio"].value == 0.1
    assert counts.metadata["day"].value == "2024-01-03"


SEED_SQL = {
    "order_products_prior": """
        SELECT o.order_id, o.user_id, o.eval_set, o.order_number, o.order_dow, o.order_hour_of_day,
               o.days_since_prior_order, op.product_id, op.add_to_cart_order, op.reordered
        FROM basket.orders o JOIN basket.order_products op ON o.order_id = op.order_id
        WHERE o.eval_set = 'prior' ORDER BY 1, 8""",
    "user_features_1": """
        SELECT user_id, max(order_number) AS max_order_number,
               sum(days_since_prior_order) AS total_days_prior_order,
               avg(days_since_prior_order) AS avg_days_prior_order
        FROM basket.orders GROUP BY user_id ORDER BY 1""",
    "user_features_2": """
        SELECT user_id, count(*) AS user_total_products, count(DISTINCT product_id) AS user_distinct_products,
               sum(CASE WHEN reordered = 1 THEN 1 ELSE 0 END)::double precision
                 / nullif(sum(CASE WHEN order_number > 1 THEN 1 ELSE 0 END), 0) AS user_reorder_ratio
        FROM prior GROUP BY user_id ORDER BY 1""",
    "up_features": """
        SELECT user_id, product_id, count(*) AS up_orders, min(order_number) AS up_first_order,
               max(order_number) AS up_last_order,
               avg(add_to_cart_order::double precision) AS up_average_cart_position
        FROM prior GROUP BY user_id, product_id ORDER BY 1, 2""",
    "prd_features": """
        SELECT product_id, count(*) AS prod_orders, sum(reordered) AS prod_reorders,
               sum(CASE WHEN product_seq_time = 1 THEN 1 ELSE 0 END) AS prod_first_orders,
               sum(CASE WHEN product_seq_time = 2 THEN 1 ELSE 0 END) AS prod_second_orders
        FROM (SELECT *,
                     rank() OVER (PARTITION BY user_id, product_id ORDER BY order_number) AS product_seq_time
              FROM prior) ranked
        GROUP BY product_id ORDER BY 1""",
}
PRIOR_CTE = "WITH prior AS (" + SEED_SQL["order_products_prior"].replace("ORDER BY 1, 8", "") + ") "


def oracle(warehouse, name):
    query = SEED_SQL[name] if name == "order_products_prior" else PRIOR_CTE + SEED_SQL[name]
    return warehouse.read_frame(sql.SQL(query))


def test_generated_data_features_equal_the_seed_sql_run_by_postgres(graph, resources, warehouse, lake):
    """Three generated days through the real assets; every feature table equals the seed's
    SQL run by PostgreSQL over the published raw tables (RANK, GROUP BY and NULL rules included)."""
    generate(lake, seed=3, start="2024-01-01", days=3)
    for day in ("2024-01-01", "2024-01-02"):
        assert dg.materialize(graph[:2], partition_key=day, resources=resources).success
    assert dg.materialize(graph, partition_key="2024-01-03", resources=resources).success

    for name, spec in tables.FEATURES.items():
        expected = oracle(warehouse, name)
        keys = [sql.Identifier(k) for k in spec.key]
        got = warehouse.read_frame(
            sql.SQL("SELECT * FROM {} ORDER BY {}").format(spec.table, sql.SQL(", ").join(keys))
        )
        assert len(got) > 0 and list(got.columns) == list(expected.columns), name
        pd.testing.assert_frame_equal(
            _floats(got), _floats(expected), check_exact=False, rtol=1e-12, obj=name
        )

    final = pd.read_csv(io.StringIO(lake.read_text("basket/final/2024-01-03/basket_features.csv")))
    assert ",".join(final.columns) == FINAL_HEADER
    assert len(final) == count(warehouse, "up_features")


def _floats(frame):
    return frame.apply(
        lambda c: c if c.dtype == object and isinstance(c.dropna().iloc[0], str) else c.astype(float)
    )
