"""Where the clickstream pipeline keeps things in the lake, and the local working folder.

Lake layout (prefixes the pipeline owns; the source prefix comes from the ini):
  clickstream/metadata/                 markers that start a run (sensor), and ...
  clickstream/metadata/latest_date_data.csv   ... the statistics object this pipeline writes
  clickstream/daily/<YYYY-MM-DD>.parquet      daily clicks per grouping and key (one per partition)
  quarantine/clickstream/files/<etag>/<name>  source files that cannot be used, with <name>.reason.txt
  quarantine/clickstream/rows/<name>.<etag>.csv   rows that cannot be used, with a reason column
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.clickstream.transform import empty_daily
from pipeline.resources.lake import Lake

METADATA_PREFIX = "clickstream/metadata/"
STATS_KEY = METADATA_PREFIX + "latest_date_data.csv"
DAILY_PREFIX = "clickstream/daily/"
QUARANTINE_PREFIX = "quarantine/clickstream/"
_GROUPINGS_META = b"clickstream.groupings"
_DAILY_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.parquet$")
STATS_COLUMNS = (
    "latest_date",
    "report_start",
    "report_end",
    "source_rows",
    "report_rows",
    "rows_written_postgres",
    "rows_written_mongodb",
    "run_id",
    "written_at",
)


class GroupingsChanged(RuntimeError):
    """Daily clicks computed for other groupings than the configuration asks for."""


def daily_key(day: dt.date) -> str:
    return f"{DAILY_PREFIX}{day.isoformat()}.parquet"


def write_daily(lake: Lake, day: dt.date, frame: pd.DataFrame, groupings: Sequence[str]) -> None:
    """One atomic object per day; the groupings go in the Parquet metadata, so an empty day still
    says which groupings it was computed for."""
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), _GROUPINGS_META: json.dumps(list(groupings)).encode()}
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    lake.write_bytes(daily_key(day), buffer.getvalue())


def read_daily(
    lake: Lake, days: Sequence[dt.date], groupings: Sequence[str], folder: Path | None = None
) -> tuple[pd.DataFrame, list[dt.date]]:
    """Daily clicks of ``days`` (through local working copies when ``folder`` is given); also the
    days that have no object (never materialized: they count as zero)."""
    frames, absent = [], []
    for day in days:
        key = daily_key(day)
        if not lake.exists(key):
            absent.append(day)
            continue
        data = lake.read_bytes(key)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{day.isoformat()}.parquet").write_bytes(data)
        table = pq.read_table(io.BytesIO(data))
        stored = json.loads((table.schema.metadata or {}).get(_GROUPINGS_META, b"[]"))
        if list(stored) != list(groupings):
            raise GroupingsChanged(
                f"the daily clicks of {day} were computed for groupings {stored}, the configuration asks "
                f"for {list(groupings)}: rematerialize clickstream_daily_clicks for the affected days "
                "(a backfill)"
            )
        frames.append(table.to_pandas())
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return empty_daily(), absent
    daily = pd.concat(frames, ignore_index=True)
    daily["date"] = pd.to_datetime(daily["date"]).astype("datetime64[ns]")
    return daily, absent


def known_days(lake: Lake) -> list[dt.date]:
    """Every day that has a daily-clicks object: what a full rebuild of the report covers."""
    days = []
    for obj in lake.list(DAILY_PREFIX):
        match = _DAILY_NAME.match(obj.key[len(DAILY_PREFIX) :])
        if match:
            days.append(dt.date.fromisoformat(match.group(1)))
    return sorted(days)


def quarantine_file(lake: Lake, key: str, etag: str, source_prefix: str, reason: str) -> str:
    """Move an unusable source file out of the source prefix, next to a reason file."""
    target = f"{QUARANTINE_PREFIX}files/{_segment(etag)}/{key[len(source_prefix) :]}"
    lake.write_text(target + ".reason.txt", f"{key}: {reason}\n")
    lake.move(key, target)
    return target


def quarantine_rows(lake: Lake, key: str, etag: str, source_prefix: str, rejected: pd.DataFrame) -> str:
    """Keep the rejected rows of a file (with their reason); the same file and version always
    lands on the same object, so re-runs do not pile up copies."""
    target = f"{QUARANTINE_PREFIX}rows/{key[len(source_prefix) :]}.{_segment(etag)}.csv"
    lake.write_text(target, rejected.to_csv(index=False))
    return target


def _segment(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._=+-]", "-", text).lstrip(".-") or "none"
    return cleaned[:100]


def read_latest_date(lake: Lake) -> dt.date | None:
    if not lake.exists(STATS_KEY):
        return None
    stats = pd.read_csv(io.StringIO(lake.read_text(STATS_KEY)))
    if "latest_date" not in stats.columns or stats["latest_date"].dropna().empty:
        return None
    return dt.date.fromisoformat(str(stats["latest_date"].dropna().iloc[0])[:10])


def write_stats(lake: Lake, stats: dict) -> None:
    """The seed's ``metadata/latest_date_data.csv``: one row of statistics of the last upload."""
    frame = pd.DataFrame([{column: stats.get(column) for column in STATS_COLUMNS}])
    lake.write_text(STATS_KEY, frame.to_csv(index=False))


@contextlib.contextmanager
def working_folder(root: Path | None, run_id: str, step: str, log) -> Iterator[Path]:
    """A local folder for one step's working copies: removed when the block succeeds, kept (and
    its path logged) when it fails, so a failed upload can be inspected or replayed."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", run_id + step):
        raise ValueError(f"unsafe working folder name {run_id!r}/{step!r}")
    base = Path(root) if root is not None else Path(tempfile.gettempdir()) / "clickstream-work"
    folder = base / f"{run_id}-{step}"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    except BaseException:
        log.error(f"kept the working copies of {step} in {folder}")
        raise
    shutil.rmtree(folder, ignore_errors=True)
    log.info(f"removed the working copies of {step} ({folder})")
