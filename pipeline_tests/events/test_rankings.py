"""Rankings are merged and numbered in PostgreSQL; they must be the very values the pandas
transforms give for the same t1 rows (bit for bit), in the order pandas sorts."""

import numpy as np
import pandas as pd
import pytest
from psycopg import sql

from pipeline.events import transform
from pipeline.events.rankings import rebuild_rankings
from pipeline.events.tables import all_tables, rank_table, t1_table
from pipeline.settings import Settings

SETTINGS = Settings.from_env({"PIPELINE_EVENTS": "purchase,view", "PIPELINE_DIMENSIONS": "brand,product_id"})
NEWEST = pd.Timestamp("2019-10-01 10:30", tz="UTC")


def _minutes(*offsets: int) -> pd.Series:
    return pd.Series([NEWEST - pd.Timedelta(minutes=m) for m in offsets])


@pytest.fixture
def ranked(warehouse):
    warehouse.ensure(all_tables(SETTINGS.events, SETTINGS.dimensions))
    # Byte order puts "Apple" < "Zte" < "apple" < "lg"; a locale collation would not. 60 minutes
    # back is outside the window (it is the 60 minutes ending at the newest minute).
    t1 = {
        ("purchase", "brand"): pd.DataFrame({
            "minute": _minutes(0, 1, 1, 59, 60, 2, 3),
            "brand": ["sony", "sony", "apple", "Apple", "zte", "Zte", "lg"],
            "gmv": [0.1, 0.2, 0.3, 0.3, 99.0, 0.3, 0.29],
            "purchase_count": [1, 1, 3, 1, 5, 2, 1],
        }),
        ("purchase", "product_id"): pd.DataFrame({
            "minute": _minutes(0, 5, 5, 7), "product_id": [30, 10, 20, 30],
            "gmv": [1.1, 2.2, 9.5, 1.1], "purchase_count": [1, 2, 1, 1],
        }),
        ("view", "brand"): pd.DataFrame({
            "minute": _minutes(0, 0, 0, 1, 61), "brand": ["lg", "sony", "apple", "lg", "sony"],
            "view_count": [2, 7, 5, 3, 100],
        }),
        ("view", "product_id"): pd.DataFrame({
            "minute": _minutes(0, 1, 2), "product_id": [7, 7, 8],
            "view_count": [3, 1, 4], "avg_price": [0.5, 0.7, 2.675],
        }),
    }
    with warehouse.connect() as conn, conn.transaction():
        for (event, dimension), frame in t1.items():
            if event == "purchase":
                frame["avg_price"] = frame["gmv"] / frame["purchase_count"]
            warehouse.copy_frame(conn, t1_table(event, dimension), frame)
    written, newest = rebuild_rankings(warehouse, SETTINGS)
    assert newest == NEWEST
    tables = {pair: warehouse.read_frame(sql.SQL("SELECT * FROM {} ORDER BY rank").format(rank_table(*pair).table))
              for pair in t1}
    assert written == sum(len(t) for t in tables.values())
    return t1, tables


def _pandas_ranking(rows: pd.DataFrame, event: str, dimension: str) -> pd.DataFrame:
    """The same ranking with the pandas transforms: merge the window's partials, sort, number."""
    window = rows[rows["minute"] >= NEWEST - pd.Timedelta(minutes=59)].assign(minute=NEWEST)
    merged = transform.merge_partials(window, event, dimension, "minute").drop(columns=["minute"])
    metric = "gmv" if event == "purchase" else "view_count"
    out = merged.sort_values([metric, dimension], ascending=[False, True], kind="mergesort").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def test_rankings_are_the_pandas_merge_bit_for_bit(ranked):
    t1, tables = ranked
    for (event, dimension), rows in t1.items():
        actual = tables[(event, dimension)]
        expected = _pandas_ranking(rows, event, dimension)
        assert list(actual[dimension].astype(str)) == list(expected[dimension].astype(str)), (event, dimension)
        for column in expected.columns.drop(dimension):
            assert actual[column].tolist() == expected[column].tolist(), (event, dimension, column)  # exact


def test_rankings_by_hand(ranked):
    _, tables = ranked
    purchases = tables[("purchase", "brand")]
    # sony 0.1 + 0.2 is exactly 0.3 (money in 1/10,000 units), so it ties with apple and Zte and
    # the tie goes by key in byte order; Apple (minute 59) is in the window, zte (minute 60) is not.
    assert purchases["brand"].tolist() == ["Apple", "Zte", "apple", "sony", "lg"]
    assert purchases["gmv"].tolist() == [0.3, 0.3, 0.3, 0.3, 0.29]
    assert purchases["purchase_count"].tolist() == [1, 2, 3, 2, 1]
    assert purchases["avg_price"].tolist() == [0.3 / 1, 0.3 / 2, 0.3 / 3, 0.3 / 2, 0.29 / 1]
    assert tables[("view", "brand")][["brand", "view_count"]].values.tolist() == [["sony", 7], ["apple", 5], ["lg", 5]]
    views = tables[("view", "product_id")]
    assert views["product_id"].tolist() == [7, 8] and views["view_count"].tolist() == [4, 4]
    assert views["avg_price"].tolist() == [2.2 / 4, 2.675]  # 3 x 0.5 + 1 x 0.7
    window = tables[("purchase", "product_id")][["window_start", "window_end"]].drop_duplicates()
    assert window.values.tolist() == [[NEWEST - pd.Timedelta(minutes=59), NEWEST + pd.Timedelta(minutes=1)]]


def test_no_t1_rows_leaves_empty_rankings(warehouse):
    warehouse.ensure(all_tables(SETTINGS.events, SETTINGS.dimensions))
    assert rebuild_rankings(warehouse, SETTINGS) == (0, None)
    assert all(warehouse.row_count(rank_table(e, d)) == 0 for e in SETTINGS.events for d in SETTINGS.dimensions)
