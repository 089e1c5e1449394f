"""The generated sample: the public files' layout and schema, realistic shape, deterministic."""

import pandas as pd

from pipeline.basket import audit, files, transform
from pipeline.basket.generate import generate
from pipeline.resources.lake import LocalLake

PUBLIC_HEADERS = {
    "departments": "department_id,department",
    "aisles": "aisle_id,aisle",
    "products": "product_id,product_name,aisle_id,department_id",
    "orders": "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order",
    "order_products": "order_id,product_id,add_to_cart_order,reordered",
}


def load(lake, keys, table):
    frames = []
    for key in keys:
        if key.startswith(files.reference_key(table)) or f"/stream/{table}/" in key:
            raw = transform.parse_records(lake.read_bytes(key), key.rsplit("/", 1)[1])
            assert audit.column_problems(raw, table) == [], key
            assert not any(audit.invalid_utf8(raw, table).values()), key
            frames.append(transform.typed(raw, table))
    return pd.concat(frames, ignore_index=True)


def test_layout_and_public_headers(lake):
    keys = generate(lake, seed=1, days=2)
    assert keys[:3] == [files.reference_key(t) for t in ("departments", "aisles", "products")]
    for key in keys[3:]:
        table, day = files.parse_stream_key(key)
        assert day in ("2024-01-01", "2024-01-02")
    assert {k.rsplit(".", 1)[1] for k in keys[3:]} == {"csv", "jsonl"}
    for key in keys:
        if key.endswith(".csv"):
            table = key.split("/")[-1][:-4] if "/reference/" in key else key.split("/")[2]
            assert lake.read_text(key).splitlines()[0] == PUBLIC_HEADERS[table]


def test_realistic_shape(lake):
    keys = generate(lake, seed=2)
    orders, products = load(lake, keys, "orders"), load(lake, keys, "order_products")
    assert orders["order_id"].is_unique
    per_user = orders.groupby("user_id")["order_number"].agg(["min", "max", "count"])
    assert (per_user["min"] == 1).all() and (per_user["max"] == per_user["count"]).all()
    assert per_user["count"].between(4, 9).all()
    first = orders["order_number"] == 1
    assert orders.loc[first, "days_since_prior_order"].isna().all()
    assert orders.loc[~first, "days_since_prior_order"].notna().all()
    last = orders.groupby("user_id")["order_number"].transform("max") == orders["order_number"]
    assert set(orders.loc[last, "eval_set"]) == {"train", "test"} and set(orders.loc[~last, "eval_set"]) == {
        "prior"
    }
    test_orders = set(orders.loc[orders["eval_set"] == "test", "order_id"])
    assert not test_orders & set(products["order_id"])
    assert set(products["reordered"]) == {0, 1}
    assert not products.duplicated(["order_id", "product_id"]).any()
    catalogue = load(lake, keys, "products")
    assert set(products["product_id"]) <= set(catalogue["product_id"])
    assert (
        catalogue["product_name"].str.contains(",").any()
        and catalogue["product_name"].str.contains("ñ").any()
    )


def test_deterministic_per_seed(tmp_path):
    a, b, c = (LocalLake(tmp_path / name) for name in "abc")
    keys = generate(a, seed=5)
    assert generate(b, seed=5) == keys
    assert all(a.read_bytes(k) == b.read_bytes(k) for k in keys)
    generate(c, seed=6)
    assert any(a.read_bytes(k) != c.read_bytes(k) for k in keys if "/stream/" in k and c.exists(k))
