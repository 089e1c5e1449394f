"""Lake layout: snapshots as a date-partitioned Parquet dataset, quarantine files."""

import datetime as dt
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.b2b import storage
from pipeline.b2b.tables import ORDERS, arrow_schema

DATE_PARTITIONING = ds.partitioning(pa.schema([("snapshot_date", pa.date32())]))


def _orders(ids, day):
    return pd.DataFrame(
        {
            "order_id": ids,
            "prod_id": [1] * len(ids),
            "customer_id": [2] * len(ids),
            "prod_quote_price": [Decimal("10.5000")] * len(ids),
            "is_lead_sale": [True] * len(ids),
            "crm_lead_id": ids,
            "company_id": [3] * len(ids),
            "created_date": [pd.Timestamp("2024-01-01 10:00", tz="UTC")] * len(ids),
            "batch_date": [day] * len(ids),
        }
    )


def test_snapshots_read_back_as_a_date_partitioned_dataset(lake):
    storage.write_parquet(
        lake,
        storage.snapshot_key("orders", dt.date(2024, 1, 1)),
        _orders([1, 2], dt.date(2024, 1, 1)),
        arrow_schema(ORDERS),
    )
    storage.write_parquet(
        lake,
        storage.snapshot_key("orders", dt.date(2024, 1, 2)),
        _orders([1, 2, 3], dt.date(2024, 1, 2)),
        arrow_schema(ORDERS),
    )
    assert lake.exists("b2b/final/table=orders/2024-01-02/part-0.parquet")

    dataset = ds.dataset(
        lake.root / "b2b/final/table=orders", format="parquet", partitioning=DATE_PARTITIONING
    )
    table = dataset.to_table(filter=ds.field("snapshot_date") == pa.scalar(dt.date(2024, 1, 2)))
    assert sorted(table.column("order_id").to_pylist()) == [1, 2, 3]
    assert dataset.schema.field("prod_quote_price").type == pa.decimal128(15, 4)
    assert dataset.schema.field("created_date").type == pa.timestamp("us", tz="UTC")
    assert dataset.count_rows() == 5


def test_empty_snapshot_keeps_its_schema(lake):
    key = storage.snapshot_key("orders", dt.date(2024, 1, 1))
    storage.write_parquet(lake, key, pd.DataFrame(columns=list(ORDERS.column_names)), arrow_schema(ORDERS))
    back = storage.read_parquet(lake, key)
    assert back.empty and list(back.columns) == list(ORDERS.column_names)


def test_quarantine_writes_lines_and_reasons_and_clears_when_clean(lake):
    rejects = pd.DataFrame(
        {"source": ["f.csv"] * 2, "line_number": [7, 3], "line": ["b,b", "a"], "reason": ["bad b", "bad a"]}
    )
    key = storage.write_quarantine(lake, "2024-01-01", "f.csv", rejects)
    assert key == "quarantine/b2b/2024-01-01/f.csv"
    assert lake.read_text(key) == "a\nb,b\n"
    assert lake.read_text(key + ".reasons.csv") == "line_number,reason\n3,bad a\n7,bad b\n"

    assert storage.write_quarantine(lake, "2024-01-01", "f.csv", rejects.iloc[0:0]) is None
    assert not lake.exists(key) and not lake.exists(key + ".reasons.csv")
