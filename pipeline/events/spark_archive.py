"""Archives on Spark (``PIPELINE_ENGINE=spark``): a block's raw files, plus the rows an earlier
archive of the block keeps, written as one gzipped CSV by the executors, not by the driver.

A folder lake (a folder every executor mounts): Spark's CSV source reads the files and its CSV
writer writes the archive beside its staging key, which the driver then renames into place. An
S3 lake: executor tasks read the objects through the lake client (``spark_tasks.archive_rows``)
and one task streams the ordered rows into the staging object (``spark_tasks.upload_archive``).
Either way the rows are ordered (files by name, rows by line) and the archive is read back by
the executors; the driver receives (rows, digest) per file and compares them with
``transform.rows_digest`` of each raw file as the platform's own parser reads it (computed on
the executors too), so Spark's CSV reading is checked, not trusted. No Dagster.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline.events import spark_tasks
from pipeline.events.schema import COLUMNS
from pipeline.events.archive_format import SOURCE

# RFC 4180 quoting (a quote inside a value is doubled), every value as text, whitespace kept.
_READ = {"header": "true", "escape": '"', "quote": '"', "mode": "FAILFAST", "inferSchema": "false",
         "unescapedQuoteHandling": "RAISE_ERROR"}
_WRITE = {"header": "true", "escape": '"', "quote": '"', "ignoreLeadingWhiteSpace": "false",
          "ignoreTrailingWhiteSpace": "false", "compression": "gzip"}


def folder_rows(spark: SparkSession, by_header: Sequence[Sequence[Path]], archive: Path | None,
                kept: Sequence[str]) -> DataFrame:
    """(source_file, COLUMNS..., _row) of raw files named as they were landed and of the ``kept``
    files' rows in ``archive``, read by Spark's CSV source: one read per column order
    (``by_header``: the paths of each header line; nearly always one group). ``_row`` grows with
    the line within a file (a file is never split out of order)."""
    parts = [
        spark.read.options(**_READ).csv([spark_tasks.hadoop_path(str(path)) for path in paths]).select(
            F.regexp_extract(F.input_file_name(), r"([^/]+)$", 1).alias(SOURCE), *COLUMNS,
            F.monotonically_increasing_id().alias("_row"))
        for paths in by_header
    ]
    if archive is not None and kept:
        parts.append(archived_rows(spark, archive).where(F.col(SOURCE).isin(list(kept))))
    if not parts:
        raise ValueError("nothing to archive: no raw file and no kept file")
    return functools.reduce(DataFrame.unionByName, parts)


def archived_rows(spark: SparkSession, archive: Path) -> DataFrame:
    """The rows of an archive in a folder lake, read by Spark's CSV source."""
    return spark.read.options(**_READ).csv(spark_tasks.hadoop_path(str(archive))).select(
        SOURCE, *COLUMNS, F.monotonically_increasing_id().alias("_row"))


def lake_rows(sources: DataFrame, spec: tuple[str, str | None], read,
              kept: Sequence[str] | None = None) -> DataFrame:
    """The same rows, read by executor tasks through the lake client (an S3 lake): ``sources``
    holds (``name``, ``key``) rows, a raw file each, or an empty name and an archive's key, of
    which the rows of ``kept`` files are read (``None``: all of them)."""
    task = functools.partial(spark_tasks.archive_rows, spec, read, None if kept is None else frozenset(kept))
    return sources.mapInArrow(task, spark_tasks.ARCHIVE_ROWS_DDL)


def digests(rows: DataFrame, only: Sequence[str] | None = None) -> dict[str, tuple[int, str]]:
    """source_file -> (rows, ``transform.rows_digest`` of its rows in ``_row`` order), of the
    files ``only`` names (all for ``None``)."""
    if only is not None:
        rows = rows.where(F.col(SOURCE).isin(list(only)))
    values = [F.coalesce(F.col(c), F.lit("")) for c in COLUMNS]
    line = F.concat(F.concat_ws(",", *[F.concat(F.octet_length(v).cast("string"), F.lit(":"), v) for v in values]),
                    F.lit("\n"))
    ordered = F.sort_array(F.collect_list(F.struct(F.col("_row"), line.alias("line"))))
    per_file = rows.groupBy(SOURCE).agg(
        F.count(F.lit(1)).alias("n"),
        F.sha2(F.concat_ws("", F.transform(ordered, lambda item: item["line"])), 256).alias("sha"))
    return {r[SOURCE]: (int(r["n"]), r["sha"]) for r in per_file.collect()}


def _in_order(rows: DataFrame) -> DataFrame:
    """One partition of the rows, files by name, rows by line: sorted in a few ranges, which
    ``coalesce`` concatenates in order. A few ranges, not ``orderBy``'s 200: the range bounds
    come from a sample of keys sent to the driver, about 300 per range."""
    ranges = 2 * rows.sparkSession.sparkContext.defaultParallelism
    return (rows.repartitionByRange(ranges, SOURCE, "_row").sortWithinPartitions(SOURCE, "_row")
            .drop("_row").coalesce(1))


def write_folder(rows: DataFrame, out_dir: Path) -> Path:
    """The archive written by Spark's CSV writer into ``out_dir`` (in a folder lake); its file."""
    _in_order(rows).write.options(**_WRITE).mode("overwrite").csv(str(out_dir))
    written = sorted(out_dir.glob("part-*.csv.gz"))
    if len(written) != 1:
        raise RuntimeError(f"Spark wrote {len(written)} archive part(s) in {out_dir}; expected 1")
    return written[0]


def write_lake(rows: DataFrame, spec: tuple[str, str | None], key: str) -> int:
    """The archive streamed by one executor task into the lake object ``key``; its size."""
    task = functools.partial(spark_tasks.upload_archive, spec, key)
    (size,), = _in_order(rows).mapInArrow(task, "size bigint").collect()
    return int(size)
