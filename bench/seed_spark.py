"""The seed's way: PySpark local, one micro-batch per minute, each merged into PostgreSQL t1.

Per minute: read that minute's files with Spark, apply the same contract, aggregate each
(event, dimension), and upsert into t1 through a staging table and ``INSERT ... ON CONFLICT DO
UPDATE`` that adds counts and money (the seed patched rows; the platform recomputes them). The
fixed cost of a Spark job per minute and per table is what this baseline measures.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql

from pipeline.events.schema import COLUMNS, parse_file_name
from pipeline.events.tables import metric_names, pairs, t1_table
from pipeline.resources.spark import local_session
from pipeline.resources.warehouse import TableSpec, Warehouse

EVENTS, DIMENSIONS = ("purchase", "view"), ("product_id", "brand", "category_l3")
_LEVEL3 = (
    "coalesce(nullif(split_part(code, '.', 3), ''), nullif(split_part(code, '.', 2), ''), "
    "split_part(code, '.', 1))"
)


def _clean(spark, files: list[Path], minute: pd.Timestamp):
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(c, StringType()) for c in COLUMNS])
    raw = spark.read.csv([str(f) for f in files], header=True, schema=schema)
    ts = F.to_timestamp(F.substring("event_time", 1, 19), "yyyy-MM-dd HH:mm:ss")
    typed = raw.select(
        ts.alias("ts"),
        "event_type",
        F.col("product_id").try_cast("bigint").alias("product_id"),
        F.col("category_id").try_cast("bigint").alias("category_id"),
        "category_code",
        "brand",
        F.col("price").try_cast("decimal(18,4)").alias("price"),
        F.col("user_id").try_cast("bigint").alias("user_id"),
        "user_session",
    )
    accepted = (
        typed.where(
            F.col("ts").isNotNull()
            & (F.col("product_id") >= 0)
            & (F.col("category_id") >= 0)
            & (F.col("user_id") >= 0)
            & F.col("price").between(0, 1_000_000_000)
            & F.col("event_type").isin(*EVENTS)
            & (F.date_trunc("minute", "ts") == F.lit(minute.to_pydatetime()))
        )
        .select(
            "ts",
            F.date_trunc("minute", "ts").alias("minute"),
            "event_type",
            "product_id",
            "price",
            "user_session",
            F.coalesce("brand", F.col("product_id").cast("string")).alias("brand"),
            F.coalesce("category_code", F.col("category_id").cast("string")).alias("code"),
        )
        .withColumn("category_l3", F.expr(_LEVEL3))
    )
    first = Window.partitionBy("event_type", "minute", "user_session", "product_id").orderBy("ts", "price")
    return accepted.withColumn("n", F.row_number().over(first)).where(
        (F.col("event_type") == "purchase") | (F.col("n") == 1)
    )


def _aggregate(cleaned, event: str, dimension: str) -> pd.DataFrame:
    from pyspark.sql import functions as F

    frame = (
        cleaned.where(F.col("event_type") == event)
        .groupBy("minute", dimension)
        .agg(F.count("*").alias("n"), F.sum("price").cast("double").alias("money"))
        .toPandas()
    )
    out = pd.DataFrame(
        {"minute": pd.to_datetime(frame["minute"]).dt.tz_localize("UTC"), dimension: frame[dimension]}
    )
    metrics = {
        "view_count": frame["n"],
        "purchase_count": frame["n"],
        "gmv": frame["money"],
        "avg_price": frame["money"] / frame["n"],
    }
    for name in metric_names(event, dimension):
        out[name] = metrics[name]
    return out


def _upsert(conn: psycopg.Connection, spec: TableSpec, frame: pd.DataFrame, count: str) -> None:
    """Stage the minute's rows, then add them to existing keys (the seed's merge)."""
    staging = TableSpec("pg_temp", f"staging_{spec.name}", spec.columns)
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} (LIKE {}) ON COMMIT DROP").format(
            sql.Identifier(staging.name), spec.table
        )
    )
    Warehouse.copy_frame(conn, staging, frame)
    target, new = sql.Identifier("t"), sql.Identifier("excluded")
    updates = []
    for column in spec.column_names[2:]:
        name = spec.column(column)
        if column == "avg_price":
            weight = spec.column(count)
            value = sql.SQL("({t}.{a} * {t}.{n} + {x}.{a} * {x}.{n}) / ({t}.{n} + {x}.{n})").format(
                t=target, x=new, a=name, n=weight
            )
        else:
            value = sql.SQL("{}.{} + {}.{}").format(target, name, new, name)
        updates.append(sql.SQL("{} = {}").format(name, value))
    columns = sql.SQL(", ").join(map(spec.column, spec.column_names))
    conn.execute(
        sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM {} ON CONFLICT ({}) DO UPDATE SET {}").format(
            spec.table,
            columns,
            columns,
            staging.table,
            sql.SQL(", ").join(map(spec.column, spec.key)),
            sql.SQL(", ").join(updates),
        )
    )


def run_seed(files: list[Path], pg_url: str, minutes: int, master: str = "local[2]") -> dict:
    """Micro-batch the first ``minutes`` minutes of ``files``; returns start-up and per-minute seconds."""
    by_minute: dict[pd.Timestamp, list[Path]] = {}
    for path in files:
        by_minute.setdefault(parse_file_name(path.name).minute, []).append(path)
    batches = sorted(by_minute.items())[:minutes]
    warehouse = Warehouse(pg_url)
    specs = {pair: t1_table(*pair) for pair in pairs(EVENTS, DIMENSIONS)}
    warehouse.ensure(specs.values())

    started = time.perf_counter()
    spark = local_session(master)
    spark.range(1).count()  # the JVM and the session are up
    startup = time.perf_counter() - started
    per_minute = []
    for minute, minute_files in batches:
        began = time.perf_counter()
        cleaned = _clean(spark, minute_files, minute).cache()
        with warehouse.connect() as conn, conn.transaction():
            for (event, dimension), spec in specs.items():
                count = "view_count" if event == "view" else "purchase_count"
                _upsert(conn, spec, _aggregate(cleaned, event, dimension), count)
        cleaned.unpersist()
        per_minute.append(time.perf_counter() - began)
    spark.stop()
    return {
        "startup_s": startup,
        "per_minute_s": per_minute,
        "wall_s": time.perf_counter() - started,
        "minutes": len(batches),
    }
