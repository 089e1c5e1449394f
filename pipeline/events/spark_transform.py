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
    return sums_and_totals(spark, cleaned, events, dimensions)[0]


_ROWS = "__rows__"  # the pseudo-dimension whose groups are the minutes' rows, for the totals


def sums_and_totals(
    spark: SparkSession, cleaned: pa.Table | pd.DataFrame | DataFrame, events: Iterable[str],
    dimensions: Iterable[str], after: pd.Timestamp | None = None,
) -> tuple[dict[tuple[str, str], pa.Table], dict[str, tuple[int, float]]]:
    """``aggregation.sums_and_totals``: ``minute_sums`` and, from the same query, the per-event
    (rows, sum of prices) of the deduplicated rows of minutes after ``after`` (the reference of
    the raw -> t1 check: counted per minute from the rows, not from any dimension's sums). Only
    these aggregates reach the driver."""
    events, dimensions = tuple(events), tuple(dimensions)
    for event in events:
        metric_columns(event, "")
    rows = to_spark(spark, cleaned).where(F.col("event_type").isin(list(events)))
    if "view" in events:
        rows = dedupe_views(rows)
    keys = F.array(*[F.struct(F.lit(d).alias("dimension"), F.col(d).cast("string").alias("key"))
                     for d in dimensions],
                   F.struct(F.lit(_ROWS).alias("dimension"), F.lit(None).cast("string").alias("key")))
    long = rows.select(F.col("event_type").alias("event"), F.col("minute").alias("time"),
                       _units(F.col("price")).alias("units"), F.col("price"), F.inline(keys))
    sums = long.groupBy("event", "dimension", "time", "key").agg(
        F.count(F.lit(1)).alias("count"), F.sum("units").alias("units"),
        F.sum(F.when(F.col("dimension") == _ROWS, F.col("price"))).alias("price"))
    table = sums.toArrow()
    out = {(event, dimension): _sums(table.filter(pc.and_(pc.equal(table["event"], event),
                                                          pc.equal(table["dimension"], dimension))), dimension)
           for event in events for dimension in dimensions}
    per_minute = table.filter(pc.equal(table["dimension"], _ROWS))
    if after is not None:
        time = pc.cast(per_minute["time"], SUMS.field("time").type)
        per_minute = per_minute.filter(pc.greater(time, pa.scalar(after.value, SUMS.field("time").type)))
    totals = {}
    for event in events:
        mine = per_minute.filter(pc.equal(per_minute["event"], event))
        count = int(pc.sum(mine["count"]).as_py() or 0)
        totals[event] = (count, float(pc.sum(mine["price"]).as_py() or 0.0) if event == "purchase" else 0.0)
    return out, totals


def hour_sums(spark: SparkSession, minutes: list[pa.Table], key_type: pa.DataType) -> pa.Table:
    """``aggregation.merge_sums(..., hourly=True)``: minute sums of one (event, dimension) merged
    into one row per (hour, key)."""
    from pipeline.events.spark_tasks import minute_sums_table

    table = pa.concat_tables([m for m in minutes if m.num_rows], promote_options="permissive")
    merged = _hourly(spark.createDataFrame(minute_sums_table(("", ""), table)))
    return _sums(merged.filter(pc.invert(merged["total"])), key_type)


def hourly_sums_and_totals(
    rows: DataFrame, pairs: Iterable[tuple[str, str]],
) -> tuple[dict[tuple[str, str], pa.Table], dict[tuple[pd.Timestamp, str, str], tuple[int, int]]]:
    """Minute sums (event, dimension, time, key as text, count, units) -> for each (event,
    dimension), ``hour_sums``; and each hour's (count, units) per (event, dimension), counted from
    the minute sums apart from the keys (the t2 check's reference). One query; only these reach
    the driver."""
    merged = _hourly(rows)
    per_key, per_hour = merged.filter(pc.invert(merged["total"])), merged.filter(merged["total"])
    hourly = {}
    for event, dimension in pairs:
        mine = pc.and_(pc.equal(per_key["event"], event), pc.equal(per_key["dimension"], dimension))
        hourly[(event, dimension)] = _sums(per_key.filter(mine), dimension)
    hours = pc.cast(per_hour["time"], SUMS.field("time").type).to_pylist()
    totals = {(pd.Timestamp(hour), event, dimension): (int(count), int(units)) for hour, event, dimension, count, units
              in zip(hours, *(per_hour[c].to_pylist() for c in ("event", "dimension", "count", "units")))}
    return hourly, totals


def _hourly(rows: DataFrame) -> pa.Table:
    """Sums per (event, dimension, hour, key) and, flagged ``total``, per (event, dimension, hour)."""
    hourly = rows.select("event", "dimension", F.date_trunc("hour", F.col("time")).alias("time"), "key",
                         "count", "units")
    sums = [F.sum("count").alias("count"), F.sum("units").alias("units")]
    per_key = hourly.groupBy("event", "dimension", "time", "key").agg(*sums).withColumn("total", F.lit(False))
    per_hour = (hourly.groupBy("event", "dimension", "time").agg(*sums)
                .withColumn("key", F.lit(None).cast("string")).withColumn("total", F.lit(True)))
    return per_key.unionByName(per_hour).toArrow()


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
