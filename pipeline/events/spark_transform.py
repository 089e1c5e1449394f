"""The minute and hour transforms on Spark, for large backfills: ``transform``'s contract, bit for bit.

``minute_sums`` and ``hour_sums`` return the same sums as their namesakes in
:mod:`pipeline.events.aggregation` (the parity test compares them with ``==``), because they make
the same two choices:

* Money is summed as int64 units of 1/10,000 (``aggregation.PRICE_SCALE``). Each unit count comes
  from the same IEEE operations in the same order as numpy's (``rint(price * 10000)``,
  ``rint(avg_price * count * 10000)``; Java's ``Math.rint`` rounds half to even like ``np.rint``),
  the sums are exact in any order, and gmv and avg_price are derived from them by the same two
  correctly rounded divisions.
* A duplicate view is resolved by content only: the earliest, then the cheapest, then the first in
  the order of every other column (missing values last); a missing user_session is one session.

Inputs are Arrow tables, pandas or Spark DataFrames; results are the pandas engine's sums (and,
for the parity tests, its frames). All (event, dimension) aggregates of a call come from one Spark
query. No Dagster here.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from pipeline.events.aggregation import INT_DIMENSIONS, PRICE_SCALE, SUMS, metric_columns
from pipeline.events.transform import sums_frame


def to_spark(spark: SparkSession, frame: pa.Table | pd.DataFrame | DataFrame) -> DataFrame:
    """A Spark DataFrame of ``frame``, sent through Arrow (text columns that are all missing,
    which Arrow cannot type, become strings)."""
    if isinstance(frame, DataFrame):
        return frame
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
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


def minute_sums(
    spark: SparkSession, cleaned: pa.Table | pd.DataFrame | DataFrame, events: Iterable[str],
    dimensions: Iterable[str],
) -> dict[tuple[str, str], pa.Table]:
    """``aggregation.minute_sums``: every (event, dimension) minute aggregate of cleaned rows of one
    or many minutes, as sums. The rows are read once: each row becomes one row per dimension (its
    key as text), so all the aggregates are one group-by and one collect."""
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
        F.count(F.lit(1)).alias("count"), F.sum("units").alias("units"))
    table = sums.toArrow()
    return {(event, dimension): _sums(table.filter(pc.and_(pc.equal(table["event"], event),
                                                           pc.equal(table["dimension"], dimension))), dimension)
            for event in events for dimension in dimensions}


def hour_sums(spark: SparkSession, minutes: list[pa.Table], key_type: pa.DataType) -> pa.Table:
    """``aggregation.merge_sums(..., hourly=True)``: minute sums of one (event, dimension) merged
    into one row per (hour, key)."""
    parts = [m for m in minutes if m.num_rows]
    rows = spark.createDataFrame(pa.concat_tables(parts, promote_options="permissive"))
    hourly = rows.select(F.date_trunc("hour", F.col("time")).alias("time"), "key", "count", "units")
    sums = hourly.groupBy("time", "key").agg(F.sum("count").alias("count"), F.sum("units").alias("units"))
    return _sums(sums.toArrow(), key_type)


def aggregate_minutes(spark: SparkSession, cleaned, events: Iterable[str],
                      dimensions: Iterable[str]) -> dict[tuple[str, str], pd.DataFrame]:
    """``minute_sums`` as the frames of the tables (as ``transform.aggregate_minutes``)."""
    return {(e, d): sums_frame(table, e, d, "minute")
            for (e, d), table in minute_sums(spark, cleaned, events, dimensions).items()}


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
    sums = rows.groupBy("time", "key").agg(F.sum("n").alias("count"), F.sum("units").alias("units"))
    key_type = pa.int64() if dimension in INT_DIMENSIONS else pa.string()
    return sums_frame(_sums(sums.toArrow(), key_type), event, dimension, time_col)


def _units(amount: Column) -> Column:
    """Money as exact int64 units: ``aggregation.price_units``, the same double product and rounding."""
    return F.rint(amount * F.lit(PRICE_SCALE)).cast("long")


def _sums(table: pa.Table, dimension_or_type) -> pa.Table:
    """Spark's result as the pandas engine's sums: typed key, time in ns UTC, sorted (time, key)."""
    key_type = dimension_or_type if isinstance(dimension_or_type, pa.DataType) else (
        pa.int64() if dimension_or_type in INT_DIMENSIONS else pa.string())
    out = pa.table({
        "time": pc.cast(table["time"], SUMS.field("time").type),
        "key": pc.cast(table["key"], key_type),
        "count": pc.cast(table["count"], pa.int64()),
        "units": pc.cast(table["units"], pa.int64()),
    })
    return out.sort_by([("time", "ascending", "at_end"), ("key", "ascending", "at_end")])
