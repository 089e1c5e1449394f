"""The Spark engine computes exactly the pandas engine's features: values, dtypes, row order.

Input is the generator's (four days, staged and typed as ``basket/orders`` stages them), and a
hand-made set full of the empty values and ties the audit would stop but the SQL must still
get right. Every feature takes the pandas engine's upstream output, read back from Parquet as
the assets read it, so a difference is pinned on one function. Doubles are compared exactly:
the days, cart positions and counts summed are whole numbers, so both engines' sums are exact
and each average or ratio is one correctly rounded division (real-valued days summed in a
different order could differ in the last bit; none occur in the Instacart schema's data).
"""

from __future__ import annotations

import io

import dagster as dg
import pandas as pd
import pytest

from pipeline.basket import files
from pipeline.basket.definitions import build_defs
from pipeline.basket.generate import generate
from pipeline.basket.transform import PandasEngine
from pipeline.resources.lake import LocalLake
from pipeline.settings import Settings

DAYS = ("2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04")
PANDAS = PandasEngine()
NA = pd.NA
NAN = float("nan")


@pytest.fixture(scope="module")
def engine(spark):
    from pipeline.basket.spark_transform import SparkEngine

    return SparkEngine(session=spark)


def _stored(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the next asset reads it back from the lake."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return pd.read_parquet(io.BytesIO(buffer.getvalue()))


def _assert_same_features(engine, orders: pd.DataFrame, order_products: pd.DataFrame) -> dict:
    """Each feature from both engines on the same input; returns the pandas ones."""
    expected = {"order_products_prior": PANDAS.order_products_prior(orders, order_products)}
    actual = {"order_products_prior": engine.order_products_prior(orders, order_products)}
    expected["user_features_1"] = PANDAS.user_features_1(orders)
    actual["user_features_1"] = engine.user_features_1(orders)
    prior = _stored(expected["order_products_prior"])
    for name in ("user_features_2", "up_features", "prd_features"):
        expected[name] = getattr(PANDAS, name)(prior)
        actual[name] = getattr(engine, name)(prior)
    names = ("up_features", "user_features_1", "user_features_2", "prd_features")
    upstream = [_stored(expected[name]) for name in names]
    expected["basket_features"] = PANDAS.basket_features(*upstream)
    actual["basket_features"] = engine.basket_features(*upstream)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(actual[name], frame, check_exact=True, obj=name)
    return expected


def test_the_settings_choose_the_engine_and_no_spark_starts():
    from pyspark import SparkContext

    final = dg.AssetKey(["basket", "features_csv"])
    for engine in ("pandas", "spark"):
        defs = build_defs(Settings.from_env({"PIPELINE_ENGINE": engine}))
        features = next(s for a in defs.assets for s in a.specs if s.key == final)
        assert engine in features.kinds  # the UI shows which engine computes the asset
    assert SparkContext._active_spark_context is None  # the session starts in a run, on first use


@pytest.mark.slow
@pytest.mark.spark
def test_generated_days_give_identical_features(tmp_path, engine):
    lake = LocalLake(tmp_path)
    generate(lake, seed=5, start=DAYS[0], days=len(DAYS), users=150)

    def staged(table: str) -> pd.DataFrame:
        days = [files.stage(lake, table, lake.list(files.stream_prefix(table, day))) for day in DAYS]
        assert not any(s.bad_format or s.bad_utf8 for s in days)
        return pd.concat([s.frame for s in days], ignore_index=True)

    expected = _assert_same_features(engine, staged("orders"), staged("order_products"))
    assert len(expected["order_products_prior"]) > 2000 and len(expected["basket_features"]) > 1000
    # The doubles compared exactly are real fractions, not only whole numbers.
    assert (expected["user_features_2"]["user_reorder_ratio"] % 1 > 0).any()
    assert (expected["user_features_1"]["avg_days_prior_order"] % 1 > 0).any()


@pytest.mark.slow
@pytest.mark.spark
def test_empty_values_and_rank_ties_give_identical_features(engine):
    orders = pd.DataFrame(
        {
            "order_id": pd.array([1, 2, 3, 4, 5, 6, 7, 8, 9], dtype="Int64"),
            "user_id": pd.array([10, 10, 10, 20, 20, NA, NA, 30, 40], dtype="Int64"),
            "eval_set": ["prior", "prior", "prior", "prior", "prior", "prior", None, "prior", "train"],
            "order_number": pd.array([1, 2, 2, 1, NA, 1, 2, 1, 1], dtype="Int64"),
            "order_dow": pd.array([0, 1, 2, 3, 4, 5, 6, 0, 1], dtype="Int64"),
            "order_hour_of_day": pd.array([8, 9, 10, 11, 12, 13, 14, 15, 16], dtype="Int64"),
            "days_since_prior_order": [NAN, 7.0, 0.0, NAN, NAN, NAN, 3.0, NAN, NAN],
        }
    )
    order_products = pd.DataFrame(
        {
            "order_id": pd.array([1, 1, 2, 3, 3, 4, 5, 5, 6, 7, 8, NA, 9], dtype="Int64"),
            "product_id": pd.array(
                [100, 200, 100, 100, 300, 100, 100, NA, 200, 200, 300, 100, 100], dtype="Int64"
            ),
            "add_to_cart_order": pd.array([1, 2, 1, 1, NA, 1, 1, 2, 1, 1, 1, 1, 1], dtype="Int64"),
            "reordered": pd.array([0, 0, 1, 1, NA, 0, NA, 0, 0, 1, NA, 1, 1], dtype="Int64"),
        }
    )
    expected = _assert_same_features(engine, orders, order_products)
    # Hand-checked against the SQL. Product 100: user 10's order numbers 1, 2, 2 rank 1, 2, 2;
    # user 20's order without a number ranks first (NULLs first), its order number 1 second.
    prd = expected["prd_features"].set_index("product_id")
    assert prd.loc[100, ["prod_orders", "prod_first_orders", "prod_second_orders"]].tolist() == [5, 2, 3]
    assert pd.isna(prd.loc[300, "prod_reorders"])  # SUM over only NULLs
    # User 10: 2 reordered rows over 3 rows after the first order; user 30 has none after it.
    ratio = expected["user_features_2"].set_index("user_id")["user_reorder_ratio"]
    assert ratio[10] == 2 / 3 and pd.isna(ratio[30])
    u1 = expected["user_features_1"]
    assert pd.isna(u1["user_id"].iloc[-1])  # the NULL user is a group, sorted last
    assert pd.isna(u1.set_index("user_id").loc[40, "total_days_prior_order"])  # no day at all: NULL
