"""What Spark tasks run on the executors for the Spark engine: stage landed files, read staged
rows. Each task opens the lake itself (``Lake.reopen``'s spec: a folder path, which a cluster's
executors see as a shared filesystem, or an S3 URL and endpoint, with credentials from the
executor's environment), so no event row passes through the driver.

``read`` is a Spark accumulator of the bytes the executors read from the lake (Python tasks do not
feed Spark's own input metrics); the driver sees only its total.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from pipeline.events import staging
from pipeline.events.staging import StagedFile, StageTask

# The staged rows as Spark receives them (``transform.clean_table``'s columns; Spark's timestamps
# are microseconds, and the CSV's are whole seconds).
STAGED = pa.schema([
    ("event_time", pa.timestamp("us", tz="UTC")), ("event_type", pa.string()), ("product_id", pa.int64()),
    ("category_id", pa.int64()), ("category_code", pa.string()), ("brand", pa.string()), ("price", pa.float64()),
    ("user_id", pa.int64()), ("user_session", pa.string()), ("minute", pa.timestamp("us", tz="UTC")),
    ("category_l1", pa.string()), ("category_l2", pa.string()), ("category_l3", pa.string()),
])
_SPARK_TYPES = {pa.timestamp("us", tz="UTC"): "timestamp", pa.string(): "string", pa.int64(): "bigint",
                pa.float64(): "double"}


def spark_ddl(schema: pa.Schema) -> str:
    """``mapInArrow``'s schema for batches of ``schema``."""
    return ", ".join(f"{f.name} {_SPARK_TYPES[f.type]}" for f in schema)


STAGED_DDL = spark_ddl(STAGED)
# Minute sums of the aggregates files as Spark receives them: keys as text (one column for every
# dimension; t2 types them back, exactly: they are integers or text to begin with).
MINUTE_SUMS = pa.schema([
    ("event", pa.string()), ("dimension", pa.string()), ("time", pa.timestamp("us", tz="UTC")),
    ("key", pa.string()), ("count", pa.int64()), ("units", pa.int64()),
])
MINUTE_SUMS_DDL = spark_ddl(MINUTE_SUMS)


def stage(spec: tuple[str, str | None], read, task: StageTask) -> StagedFile:
    """``staging.stage_file`` of one task on an executor; only the report goes back."""
    report = staging.stage_in_worker(spec, task)
    read.add(report.size)
    return report


def staged_rows(spec: tuple[str, str | None], read, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``: batches of staged keys (column ``key``) -> the rows staged under them."""
    lake = staging.worker_lake(spec)
    for batch in batches:
        for key in batch.column("key").to_pylist():
            data = lake.read_bytes(key)
            read.add(len(data))
            table = staging.staged_table(data, parquet=key.endswith(".parquet"))
            yield from table.select(STAGED.names).cast(STAGED, safe=False).to_batches()


def raw_digest(spec: tuple[str, str | None], read, item: tuple[str, str]) -> tuple[str, tuple[int, str]]:
    """(name, ``transform.file_digest``) of a raw file, on an executor: the reference its archive
    is checked against."""
    from pipeline.events import transform

    name, key = item
    data = staging.worker_lake(spec).read_bytes(key)
    read.add(len(data))
    return name, transform.file_digest(data, name)


def minute_sums_rows(spec: tuple[str, str | None], read, pairs: frozenset[tuple[str, str]],
                     batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``: batches of aggregates keys (column ``key``) -> the minute sums of ``pairs``
    in those files (an hour without a file has none)."""
    from pipeline.events.aggregates import parse_aggregates
    from pipeline.resources.lake import ObjectGone

    lake = staging.worker_lake(spec)
    for batch in batches:
        for key in batch.column("key").to_pylist():
            try:
                data = lake.read_bytes(key)
            except ObjectGone:
                continue
            read.add(len(data))
            for (event, dimension), sums in parse_aggregates(data)[0].items():
                if (event, dimension) not in pairs or not sums.num_rows:
                    continue
                n = sums.num_rows
                yield from pa.table({
                    "event": pa.array([event] * n, pa.string()), "dimension": pa.array([dimension] * n, pa.string()),
                    "time": sums["time"].cast(MINUTE_SUMS.field("time").type),
                    "key": sums["key"].cast(pa.string()), "count": sums["count"], "units": sums["units"],
                }, schema=MINUTE_SUMS).to_batches()
