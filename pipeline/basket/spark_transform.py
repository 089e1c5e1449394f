"""The six basket features on Spark (``PIPELINE_ENGINE=spark``), the seed's own engine.

Same SQL as :mod:`pipeline.basket.transform` (quoted there), same pandas frames in and out:
each method sends its input to Spark through Arrow, runs the statement with the DataFrame API
and returns a frame equal to the pandas engine's, dtypes and row order included (the parity
test holds the two to that). Spark already has the SQL semantics the pandas functions recreate:
GROUP BY keeps NULL keys, SUM over only NULLs is NULL, AVG ignores NULLs, inner joins never match
NULL keys, RANK ties share a rank and ascending order puts NULLs first. Only two things are
spelled out: a zero denominator gives NULL whatever ``spark.sql.ansi.enabled`` says (ANSI mode,
Spark 4's default, would raise), and results are sorted with NULL keys last, as pandas sorts.
The session starts on first use, never at import; no Dagster here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .transform import (
    FINAL_COLUMNS,
    ORDER_COLUMNS,
    ORDER_PRODUCTS_PRIOR_COLUMNS,
    PRD_FEATURES_COLUMNS,
    UP_FEATURES_COLUMNS,
    USER_FEATURES_1_COLUMNS,
    USER_FEATURES_2_COLUMNS,
)

PRODUCT_COLUMNS = ("product_id", "add_to_cart_order", "reordered")


def to_spark(spark: SparkSession, frame: pd.DataFrame) -> DataFrame:
    """A frame of whole numbers, doubles and text as a Spark DataFrame; types come from the
    dtypes, so an empty frame converts too."""
    fields = [T.StructField(str(name), _spark_type(dtype)) for name, dtype in frame.dtypes.items()]
    return spark.createDataFrame(frame, schema=T.StructType(fields))


def _spark_type(dtype: Any) -> T.DataType:
    if pd.api.types.is_integer_dtype(dtype):
        return T.LongType()
    if pd.api.types.is_float_dtype(dtype):
        return T.DoubleType()
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        return T.StringType()
    raise TypeError(f"no Spark type for a {dtype} column")


def to_pandas(df: DataFrame, dtypes: dict[str, Any]) -> pd.DataFrame:
    """Back to pandas through Arrow with the pandas engine's dtypes; integers pass as nullable
    Int64 (``toPandas`` would turn a column with NULLs into float64)."""
    frame = df.toArrow().to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return frame.astype(dtypes)


def _sorted(df: DataFrame, *keys: str) -> DataFrame:
    return df.orderBy(*[F.asc_nulls_last(key) for key in keys])


def _count_if(condition: Column) -> Column:
    return F.sum(F.when(condition, 1).otherwise(0))


def _dtypes(frame: pd.DataFrame, columns: tuple[str, ...] | list[str]) -> dict[str, Any]:
    return frame.dtypes[list(columns)].to_dict()


class SparkEngine:
    """The features on Spark; ``session`` for a session started elsewhere (tests), else one
    started on first use with ``master``."""

    name = "spark"

    def __init__(self, master: str = "local[*]", *, session: SparkSession | None = None):
        self._master, self._session = master, session

    @property
    def spark(self) -> SparkSession:
        if self._session is None:
            from pipeline.resources.spark import local_session  # Dagster's Spark resource module

            self._session = local_session(self._master)
        return self._session

    def order_products_prior(self, orders: pd.DataFrame, order_products: pd.DataFrame) -> pd.DataFrame:
        prior = to_spark(self.spark, orders[list(ORDER_COLUMNS)]).where(
            (F.col("eval_set") == "prior") & F.col("order_id").isNotNull()
        )
        products = to_spark(self.spark, order_products[["order_id", *PRODUCT_COLUMNS]])
        joined = prior.join(products, "order_id", "inner").select(*ORDER_PRODUCTS_PRIOR_COLUMNS)
        dtypes = {**_dtypes(orders, ORDER_COLUMNS), **_dtypes(order_products, PRODUCT_COLUMNS)}
        return to_pandas(_sorted(joined, "order_id", "product_id"), dtypes)

    def user_features_1(self, orders: pd.DataFrame) -> pd.DataFrame:
        days = F.col("days_since_prior_order")
        out = (
            to_spark(self.spark, orders[["user_id", "order_number", "days_since_prior_order"]])
            .groupBy("user_id")
            .agg(
                F.max("order_number").alias("max_order_number"),
                F.sum(days).alias("total_days_prior_order"),
                F.avg(days).alias("avg_days_prior_order"),
            )
        )
        dtypes = {
            "user_id": orders["user_id"].dtype,
            "max_order_number": orders["order_number"].dtype,
            "total_days_prior_order": "float64",
            "avg_days_prior_order": "float64",
        }
        return to_pandas(_sorted(out, "user_id").select(*USER_FEATURES_1_COLUMNS), dtypes)

    def user_features_2(self, prior: pd.DataFrame) -> pd.DataFrame:
        reordered = _count_if(F.col("reordered") == 1)
        later = _count_if(F.col("order_number") > 1)
        out = (
            to_spark(self.spark, prior[["user_id", "product_id", "reordered", "order_number"]])
            .groupBy("user_id")
            .agg(
                F.count(F.lit(1)).alias("user_total_products"),
                F.countDistinct("product_id").alias("user_distinct_products"),
                F.when(later > 0, reordered.cast("double") / later).alias("user_reorder_ratio"),
            )
        )
        dtypes = {
            "user_id": prior["user_id"].dtype,
            "user_total_products": "int64",
            "user_distinct_products": "int64",
            "user_reorder_ratio": "float64",
        }
        return to_pandas(_sorted(out, "user_id").select(*USER_FEATURES_2_COLUMNS), dtypes)

    def up_features(self, prior: pd.DataFrame) -> pd.DataFrame:
        out = (
            to_spark(self.spark, prior[["user_id", "product_id", "order_number", "add_to_cart_order"]])
            .groupBy("user_id", "product_id")
            .agg(
                F.count(F.lit(1)).alias("up_orders"),
                F.min("order_number").alias("up_first_order"),
                F.max("order_number").alias("up_last_order"),
                F.avg("add_to_cart_order").alias("up_average_cart_position"),
            )
        )
        dtypes = {
            **_dtypes(prior, ["user_id", "product_id"]),
            "up_orders": "int64",
            "up_first_order": prior["order_number"].dtype,
            "up_last_order": prior["order_number"].dtype,
            "up_average_cart_position": "float64",
        }
        return to_pandas(_sorted(out, "user_id", "product_id").select(*UP_FEATURES_COLUMNS), dtypes)

    def prd_features(self, prior: pd.DataFrame) -> pd.DataFrame:
        by_user_product = Window.partitionBy("user_id", "product_id").orderBy(F.asc("order_number"))
        seq = F.col("product_seq_time")
        out = (
            to_spark(self.spark, prior[["user_id", "product_id", "order_number", "reordered"]])
            .withColumn("product_seq_time", F.rank().over(by_user_product))
            .groupBy("product_id")
            .agg(
                F.count(F.lit(1)).alias("prod_orders"),
                F.sum("reordered").alias("prod_reorders"),
                _count_if(seq == 1).alias("prod_first_orders"),
                _count_if(seq == 2).alias("prod_second_orders"),
            )
        )
        dtypes = {
            "product_id": prior["product_id"].dtype,
            "prod_orders": "int64",
            "prod_reorders": "Int64",
            "prod_first_orders": "int64",
            "prod_second_orders": "int64",
        }
        return to_pandas(_sorted(out, "product_id").select(*PRD_FEATURES_COLUMNS), dtypes)

    def basket_features(
        self, up: pd.DataFrame, user_1: pd.DataFrame, user_2: pd.DataFrame, prd: pd.DataFrame
    ) -> pd.DataFrame:
        joined = (
            to_spark(self.spark, up)
            .join(to_spark(self.spark, user_1), "user_id", "inner")
            .join(to_spark(self.spark, user_2), "user_id", "inner")
            .join(to_spark(self.spark, prd), "product_id", "inner")
        )
        dtypes = {name: dtype for frame in (up, user_1, user_2, prd) for name, dtype in frame.dtypes.items()}
        return to_pandas(
            _sorted(joined, "user_id", "product_id").select(*FINAL_COLUMNS),
            {name: dtypes[name] for name in FINAL_COLUMNS},
        )
