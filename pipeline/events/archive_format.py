"""An archive's text, shared by the archive written in this process (``archive``) and the one
Spark's executors write (``spark_tasks``): a gzipped CSV of ``source_file``, then
``schema.COLUMNS``, every value as text. No Dagster."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events.schema import COLUMNS

SOURCE = "source_file"


def text_columns(rows: pa.Table) -> pa.Table:
    """A parsed file's ``COLUMNS`` (``transform.read_file``) as the archive holds them: text,
    missing = empty."""
    return pa.table({c: pc.fill_null(rows.column(c).cast(pa.string()), "") for c in COLUMNS})


def read_archive(data: bytes) -> pd.DataFrame:
    """An archive's rows, every value as text (missing = empty)."""
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False, compression="gzip")
