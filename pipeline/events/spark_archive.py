"""Archives on Spark (``PIPELINE_ENGINE=spark``): a block's raw files, plus the rows an earlier
archive of the block keeps, written as one gzipped CSV by Spark, not by the driver.

Spark reads the files, orders the rows (files by name, rows by line), writes the archive and,
once it is stored, reads it back; the driver receives (rows, digest) per file and compares them
with ``transform.rows_digest`` of each raw file as the platform's own parser reads it (one file
at a time), so Spark's CSV reading is checked, not trusted. Digests here are the same bytes as
there. No Dagster.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline.events.schema import COLUMNS

SOURCE = "source_file"
# RFC 4180 quoting (a quote inside a value is doubled), every value as text, whitespace kept.
_READ = {"header": "true", "escape": '"', "quote": '"', "mode": "FAILFAST", "inferSchema": "false",
         "unescapedQuoteHandling": "RAISE_ERROR"}
_WRITE = {"header": "true", "escape": '"', "quote": '"', "ignoreLeadingWhiteSpace": "false",
          "ignoreTrailingWhiteSpace": "false", "compression": "gzip"}


def _header(path: Path) -> bytes:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        return handle.readline().strip()


def _raw_rows(spark: SparkSession, files: Sequence[Path]) -> DataFrame:
    """(source_file, COLUMNS..., _row) of raw files named as they were landed; ``_row`` grows
    with the line within a file (a file is never split across partitions out of order)."""
    by_header: dict[bytes, list[str]] = {}
    for path in files:  # one read per column order: nearly always one read for the whole block
        by_header.setdefault(_header(path), []).append(str(path))
    parts = [
        spark.read.options(**_READ).csv(paths).select(
            F.regexp_extract(F.input_file_name(), r"([^/]+)$", 1).alias(SOURCE), *COLUMNS,
            F.monotonically_increasing_id().alias("_row"))
        for paths in by_header.values()
    ]
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _archived_rows(spark: SparkSession, archive: Path) -> DataFrame:
    return spark.read.options(**_READ).csv(str(archive)).select(
        SOURCE, *COLUMNS, F.monotonically_increasing_id().alias("_row"))


def digests(rows: DataFrame) -> dict[str, tuple[int, str]]:
    """source_file -> (rows, ``transform.rows_digest`` of its rows in ``_row`` order)."""
    values = [F.coalesce(F.col(c), F.lit("")) for c in COLUMNS]
    line = F.concat(F.concat_ws(",", *[F.concat(F.octet_length(v).cast("string"), F.lit(":"), v) for v in values]),
                    F.lit("\n"))
    ordered = F.sort_array(F.collect_list(F.struct(F.col("_row"), line.alias("line"))))
    per_file = rows.groupBy(SOURCE).agg(
        F.count(F.lit(1)).alias("n"),
        F.sha2(F.concat_ws("", F.transform(ordered, lambda item: item["line"])), 256).alias("sha"))
    return {r[SOURCE]: (int(r["n"]), r["sha"]) for r in per_file.collect()}


def write_archive(spark: SparkSession, files: Sequence[Path], previous: Path | None, kept: Sequence[str],
                  out_dir: Path) -> tuple[Path, dict[str, tuple[int, str]]]:
    """Write into ``out_dir`` the archive of the raw ``files`` (each named as landed) and of the
    ``kept`` files' rows in the ``previous`` archive, files in name order, rows in line order.

    Returns the gzipped CSV and the digests of the rows Spark read (a kept file missing from
    ``previous`` is simply absent: the caller refuses to archive without it).
    """
    parts = [_raw_rows(spark, files)] if files else []
    if kept and previous is not None:
        parts.append(_archived_rows(spark, previous).where(F.col(SOURCE).isin(list(kept))))
    if not parts:
        raise ValueError("nothing to archive: no raw file and no kept file")
    rows = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    rows = rows.cache()
    try:
        expected = digests(rows)
        (rows.orderBy(SOURCE, "_row").drop("_row").coalesce(1)
         .write.options(**_WRITE).mode("overwrite").csv(str(out_dir)))
    finally:
        rows.unpersist()
    written = sorted(out_dir.glob("part-*.csv.gz"))
    if len(written) != 1:
        raise RuntimeError(f"Spark wrote {len(written)} archive part(s) in {out_dir}; expected 1")
    return written[0], expected


def archive_digests(spark: SparkSession, archive: Path) -> dict[str, tuple[int, str]]:
    """The digests of what an archive holds, read back by Spark."""
    return digests(_archived_rows(spark, archive))
