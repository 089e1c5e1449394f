"""Where the b2b pipeline keeps things in the lake, and the few formats it writes there.

Layout (the seed's, under ``b2b/``)::

    b2b/init/<table>.csv                                   header-less initial load
    b2b/raw/YYYY-MM-DD/{companycsv.csv,leadcsv.csv,weblogs.log}
    b2b/{insert,update}/YYYY-MM-DD/companies.csv           incremental company files
    b2b/final/table=<table>/YYYY-MM-DD/part-0.parquet      snapshot of a table as of a day
    b2b/final/report=<report>/YYYY-MM-DD/part-0.csv        a day's report, with header
    quarantine/b2b/<YYYY-MM-DD|init>/<file>                rejected lines, verbatim
    quarantine/b2b/<YYYY-MM-DD|init>/<file>.reasons.csv    line_number, reason
"""

from __future__ import annotations

import datetime as dt
import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.resources.lake import Lake, LakeObject

QUOTES_FILE = "companycsv.csv"
LEADS_FILE = "leadcsv.csv"
WEBLOG_FILE = "weblogs.log"
RAW_FILES = (QUOTES_FILE, LEADS_FILE, WEBLOG_FILE)
CHANGE_KINDS = ("insert", "update")


def init_key(table: str) -> str:
    return f"b2b/init/{table}.csv"


def raw_key(day: dt.date, name: str) -> str:
    return f"b2b/raw/{day.isoformat()}/{name}"


def change_key(kind: str, day: dt.date) -> str:
    if kind not in CHANGE_KINDS:
        raise ValueError(f"company change files are {CHANGE_KINDS}, not {kind!r}")
    return f"b2b/{kind}/{day.isoformat()}/companies.csv"


DAY_PREFIXES = ("b2b/raw/", "b2b/insert/", "b2b/update/")  # a day's input: <prefix>YYYY-MM-DD/<file>


def input_by_day(lake: Lake) -> dict[str, list[LakeObject]]:
    """Every day's input files (raw files and company change files), by ISO day."""
    days: dict[str, list[LakeObject]] = {}
    for prefix in DAY_PREFIXES:
        for obj in lake.list(prefix):
            day = obj.key[len(prefix):].split("/", 1)[0]
            days.setdefault(day, []).append(obj)
    return days


def day_input(lake: Lake, day: dt.date) -> list[LakeObject]:
    return [obj for prefix in DAY_PREFIXES for obj in lake.list(f"{prefix}{day.isoformat()}/")]


def snapshot_key(table: str, day: dt.date) -> str:
    return f"b2b/final/table={table}/{day.isoformat()}/part-0.parquet"


def report_key(report: str, day: dt.date) -> str:
    return f"b2b/final/report={report}/{day.isoformat()}/part-0.csv"


def quarantine_keys(batch: str, name: str) -> tuple[str, str]:
    """(rejected lines, reasons) keys for a file of a batch (a date or ``init``)."""
    base = f"quarantine/b2b/{batch}/{name}"
    return base, f"{base}.reasons.csv"


def read_required(lake: Lake, key: str, hint: str) -> str:
    if not lake.exists(key):
        raise FileNotFoundError(f"{lake.uri(key)} is missing: {hint}")
    return lake.read_text(key)


def write_quarantine(lake: Lake, batch: str, name: str, rejects: pd.DataFrame) -> str | None:
    """Quarantine a file's rejected lines with their reasons; clear an earlier run's if none.

    Returns the key of the rejected lines, or None when the file had none.
    """
    data_key, reasons_key = quarantine_keys(batch, name)
    if rejects.empty:
        lake.delete(data_key)
        lake.delete(reasons_key)
        return None
    ordered = rejects.sort_values("line_number")
    lake.write_text(data_key, "\n".join(ordered["line"].astype(str)) + "\n")
    lake.write_text(reasons_key, ordered[["line_number", "reason"]].to_csv(index=False))
    return data_key


def write_parquet(lake: Lake, key: str, frame: pd.DataFrame, schema: pa.Schema) -> None:
    table = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    lake.write_bytes(key, buffer.getvalue())


def read_parquet(lake: Lake, key: str) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(lake.read_bytes(key))).to_pandas()


def write_csv(lake: Lake, key: str, frame: pd.DataFrame) -> None:
    lake.write_text(key, frame.to_csv(index=False))
