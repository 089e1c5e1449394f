"""What Spark tasks run on the executors for the Spark engine: stage landed files, read staged
rows. No event row passes through the driver.

On a folder lake (a shared filesystem on a cluster) Spark's own sources read the files: the raw
files through ``binaryFile`` (``stage_files`` stages each from its content), the staged Parquet
through ``spark.read.parquet``; so Spark's input metrics count every byte the executors read.
On an S3 lake (no Hadoop ``s3a`` connector here) each task opens the lake itself
(``Lake.reopen``'s spec: the S3 URL and endpoint, credentials from the executor's environment),
and ``read``, a Spark accumulator, counts the bytes it reads (Python reads do not feed Spark's
input metrics); the driver sees only its total. t2's aggregates files and the raw files' archive
digests are read that way on either lake (``minute_sums_rows``, ``raw_digest``), and on an S3
lake the archive's rows too (``archive_rows``, ``upload_archive``).
"""

from __future__ import annotations

import gzip
import io
import pickle
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events import staging
from pipeline.events.archive_format import SOURCE, read_archive, text_columns
from pipeline.events.schema import COLUMNS
from pipeline.events.staging import StagedFile, StageTask

# The staged rows as Spark receives them (``staging.PARQUET``: microsecond timestamps).
STAGED = staging.PARQUET
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
REPORTS_DDL = "report binary"  # ``stage_files``' output: one pickled ``StagedFile`` a row


_GLOB = re.compile(r"([\[\]{}*?\\])")


def hadoop_path(path: str) -> str:
    """A file's path as Spark's readers take it: what Hadoop would read as a glob, escaped."""
    return _GLOB.sub(r"\\\1", path)


def local_path(path: str) -> str:
    """A path as ``binaryFile`` names it (``file:/a/b c``, Hadoop's, not URL-encoded) -> the
    filesystem path."""
    return "/" + path.removeprefix("file:").lstrip("/")


def stage_files(spec: tuple[str, str | None], tasks: dict[str, StageTask],
                batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` over ``binaryFile`` rows (``path``, ``content``) -> the report of
    ``staging.stage_file`` of each file's task (``tasks`` by filesystem path), staged as Parquet."""
    lake = staging.worker_lake(spec)
    for batch in batches:
        paths, contents = batch.column("path"), batch.column("content")
        reports = [pickle.dumps(staging.stage_file(lake, tasks[local_path(paths[i].as_py())], contents[i].as_py(),
                                                   parquet=True)[0]) for i in range(batch.num_rows)]
        yield pa.record_batch([pa.array(reports, pa.binary())], names=["report"])


def stage(spec: tuple[str, str | None], read, task: StageTask) -> StagedFile:
    """``staging.stage_file`` of one task on an executor, read through the lake client; only the
    report goes back."""
    report = staging.stage_in_worker(spec, task, parquet=True)
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
            yield from staging.as_parquet_rows(table).to_batches()


def raw_digest(spec: tuple[str, str | None], read, item: tuple[str, str]) -> tuple[str, tuple[int, str], bytes]:
    """(name, ``transform.file_digest``, header line) of a raw file, on an executor: the reference
    its archive is checked against, and the column order Spark's CSV source reads it by."""
    from pipeline.events import transform

    name, key = item
    data = staging.worker_lake(spec).read_bytes(key)
    read.add(len(data))
    text = gzip.GzipFile(fileobj=io.BytesIO(data)) if name.endswith(".gz") else io.BytesIO(data)
    return name, transform.file_digest(data, name), text.readline().strip()  # the first block only


# An archive's rows as Spark handles them: text columns, ``_row`` the order within a file.
ARCHIVE_ROWS_DDL = ", ".join([f"{SOURCE} string", *(f"{c} string" for c in COLUMNS), "_row bigint"])


def archive_rows(spec: tuple[str, str | None], read, kept: frozenset[str] | None,
                 batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` over (``name``, ``key``) rows -> ``ARCHIVE_ROWS_DDL`` rows: a raw file's rows
    as the platform's parser reads them (missing = empty), or, for an empty name, the rows of the
    archive at ``key`` of the files in ``kept`` (all for ``None``)."""
    from pipeline.events import transform

    lake = staging.worker_lake(spec)
    for batch in batches:
        for name, key in zip(batch.column("name").to_pylist(), batch.column("key").to_pylist()):
            data = lake.read_bytes(key)
            read.add(len(data))
            if name:
                table = text_columns(transform.read_table(data, name))
                table = table.add_column(0, SOURCE, pa.array([name] * table.num_rows, pa.string()))
            else:
                table = pa.Table.from_pandas(read_archive(data)[[SOURCE, *COLUMNS]], preserve_index=False)
                if kept is not None:
                    table = table.filter(pc.is_in(table.column(SOURCE), pa.array(sorted(kept), pa.string())))
            table = table.append_column("_row", pa.array(np.arange(table.num_rows), pa.int64()))
            yield from table.to_batches()


def upload_archive(spec: tuple[str, str | None], key: str,
                   batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` on the one partition of an archive's ordered rows: gzipped CSV (the pandas
    archive's text) in a local file of the executor, then stored at ``key``; yields its size."""
    with tempfile.TemporaryDirectory(prefix="clickflow-archive-") as scratch:
        path = Path(scratch) / "archive.csv.gz"
        with gzip.open(path, "wt", compresslevel=6, encoding="utf-8", newline="") as out:
            header = True
            for batch in batches:
                if batch.num_rows:
                    batch.to_pandas().to_csv(out, index=False, header=header)
                    header = False
            if header:  # no row at all: the header alone, as pandas writes an empty archive
                out.write(",".join([SOURCE, *COLUMNS]) + "\n")
        staging.worker_lake(spec).write_file(key, path)
        yield pa.record_batch([pa.array([path.stat().st_size], pa.int64())], names=["size"])


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
            for pair, sums in parse_aggregates(data)[0].items():
                if pair in pairs and sums.num_rows:
                    yield from minute_sums_table(pair, sums).to_batches()


def minute_sums_table(pair: tuple[str, str], sums: pa.Table) -> pa.Table:
    """One (event, dimension)'s sums as ``MINUTE_SUMS`` rows."""
    (event, dimension), n = pair, sums.num_rows
    return pa.table({
        "event": pa.array([event] * n, pa.string()), "dimension": pa.array([dimension] * n, pa.string()),
        "time": sums["time"].cast(MINUTE_SUMS.field("time").type),
        "key": sums["key"].cast(pa.string()), "count": sums["count"], "units": sums["units"],
    }, schema=MINUTE_SUMS)
