"""The minute and hour transforms on Spark, for large backfills: ``transform``'s contract, bit for bit.

``aggregate_minutes`` and ``merge_partials`` return the same frames as their namesakes in
:mod:`pipeline.events.transform` (the parity test compares them with ``==``), because they make
the same two choices:

* Money is summed as int64 units of 1/10,000 (``transform.PRICE_SCALE``). Each unit count comes
  from the same IEEE operations in the same order as numpy's (``rint(price * 10000)``,
  ``rint(avg_price * count * 10000)``; Java's ``Math.rint`` rounds half to even like ``np.rint``),
  the sums are exact in any order, and gmv and avg_price are derived from them by the same two
  correctly rounded divisions.
* A duplicate view is resolved by content only: the earliest, then the cheapest, then the first in
  the order of every other column (missing values last); a missing user_session is one session.

Inputs are pandas or Spark DataFrames; results are pandas frames with the pandas engine's columns,
dtypes and order (time, then key). All (event, dimension) aggregates of a call come from one
Spark query. No Dagster here.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipeline.events.transform import INT_DIMENSIONS, PRICE_SCALE, TEXT, metric_columns


def to_spark(spark: SparkSession, frame: pd.DataFrame | DataFrame) -> DataFrame:
    """A Spark DataFrame of ``frame``, sent through Arrow (text columns that are all missing,
    which Arrow cannot type, become strings)."""
    if isinstance(frame, DataFrame):
        return frame
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]
    return spark.createDataFrame(table.cast(pa.schema(fields)))


def dedupe_views(rows: DataFrame) -> DataFrame:
    """``transform.dedupe_views``: one view per (minute, user_session, product_id), the earliest;
    ties go to the first row in the order of price, then every other column, missing last."""
    others = [c for c in rows.columns if c != "price"]
    order = [F.col(c).asc_nulls_last() for c in ("event_time", "price", *others)]
    # Nulls share a partition: views without a session are one session, as in pandas.
    window = Window.partitionBy("event_type", "minute", "product_id", "user_session").orderBy(*order)
    numbered = rows.withColumn("_n", F.row_number().over(window))
    return numbered.where((F.col("event_type") != "view") | (F.col("_n") == 1)).drop("_n")


def aggregate_minutes(
    spark: SparkSession, cleaned: pd.DataFrame | DataFrame, events: Iterable[str], dimensions: Iterable[str],
) -> dict[tuple[str, str], pd.DataFrame]:
    """``transform.aggregate_minutes``: every (event, dimension) aggregate of cleaned rows of one
    or many minutes. The rows are read once: each row becomes one row per dimension (its key as
    text), so all the aggregates are one group-by and one collect."""
    events, dimensions = tuple(events), tuple(dimensions)
    for event in events:
        metric_columns(event, "")
    rows = to_spark(spark, cleaned).where(F.col("event_type").isin(list(events)))
    if "view" in events:
        rows = dedupe_views(rows)
    keys = F.array(*[F.struct(F.lit(d).alias("dimension"), F.col(d).cast("string").alias("key"))
                     for d in dimensions])
    long = rows.select(F.col("event_type").alias("event"), F.col("minute").alias("time"),
                       _units(F.col("price")).alias("units"), F.inline(keys))
    sums = long.groupBy("event", "dimension", "time", "key").agg(
        F.count(F.lit(1)).alias("count"), F.sum("units").alias("money"))
    table = _with_metrics(sums).toArrow()
    out = {}
    for event in events:
        for dimension in dimensions:
            at = pc.and_(pc.equal(table["event"], event), pc.equal(table["dimension"], dimension))
            out[(event, dimension)] = _result(table.filter(at), event, dimension, "minute")
    return out


def merge_partials(
    spark: SparkSession, partials: pd.DataFrame | DataFrame, event: str, dimension: str, time_col: str,
) -> pd.DataFrame:
    """``transform.merge_partials``: counts and gmv add, avg_price is count-weighted; each partial's
    exact money units are recovered from its float metrics with numpy's operations, in its order."""
    metrics = metric_columns(event, dimension)
    count = "view_count" if event == "view" else "purchase_count"
    if "gmv" in metrics:
        units = _units(F.col("gmv"))
    elif "avg_price" in metrics:
        units = _units(F.col("avg_price") * F.col(count))
    else:
        units = F.lit(0).cast("long")
    rows = to_spark(spark, partials).select(
        F.col(time_col).alias("time"), F.col(dimension).alias("key"), F.col(count).cast("long").alias("n"),
        units.alias("units"),
    )
    sums = rows.groupBy("time", "key").agg(F.sum("n").alias("count"), F.sum("units").alias("money"))
    return _result(_with_metrics(sums).toArrow(), event, dimension, time_col)


def _units(amount: Column) -> Column:
    """Money as exact int64 units: ``transform._price_units``, the same double product and rounding."""
    return F.rint(amount * F.lit(PRICE_SCALE)).cast("long")


def _with_metrics(sums: DataFrame) -> DataFrame:
    # long / int is a double division in Spark, as int64 / int is in numpy.
    gmv = F.col("money") / F.lit(PRICE_SCALE)
    return sums.select("*", gmv.alias("gmv"), (gmv / F.col("count")).alias("avg_price"))


def _result(table: pa.Table, event: str, dimension: str, time_col: str) -> pd.DataFrame:
    """The pandas engine's frame: time (ns, UTC), typed key, the event's metrics; sorted by both."""
    key = table["key"]
    if dimension in INT_DIMENSIONS:
        keys = pd.Series(pc.cast(key, pa.int64()).to_numpy(), dtype=np.int64)
    else:
        keys = pd.Series(TEXT.__from_arrow__(pc.cast(key, pa.string())))
    times = pd.Series(table["time"].to_pandas(), dtype="datetime64[ns, UTC]")
    out = pd.DataFrame({time_col: times, dimension: keys})
    values = {
        "view_count": table["count"].to_numpy().astype(np.int64),
        "purchase_count": table["count"].to_numpy().astype(np.int64),
        "gmv": table["gmv"].to_numpy().astype(np.float64),
        "avg_price": table["avg_price"].to_numpy().astype(np.float64),
    }
    for name in metric_columns(event, dimension):
        out[name] = values[name]
    return out.sort_values([time_col, dimension], kind="mergesort").reset_index(drop=True)
