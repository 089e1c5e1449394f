"""The work behind the event assets, free of Dagster so it can be called and tested directly.

Each function works on one hour or on a run's range of hours and is idempotent: it derives what
to do from the manifest and the aggregates' own record of which files they were computed from,
so a retried or repeated call recomputes only what is out of date, and a killed one is repaired
by the next.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
import tempfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import psycopg
from psycopg import sql

from pipeline.events import layout, schema, transform
from pipeline.events.engine import Engine, get_engine
from pipeline.events.layout import FileEntry, Manifest
from pipeline.events.tables import metric_names, pairs, rank_table, t1_table, t2_table
from pipeline.resources.lake import Lake, LakeObject, LocalLake, sha256_hex
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings

AGG_COLUMNS = ("minute", "event", "dimension", "key", "view_count", "gmv", "purchase_count", "avg_price")
_STATE_KEY = b"clickflow.minute_inputs"
T, R = TypeVar("T"), TypeVar("R")


def hour_lock_name(hour: pd.Timestamp) -> str:
    return f"events-hour-{layout.slug(hour)}"


# --------------------------------------------------------------------------- claim (raw_files)


@dataclass
class ClaimReport:
    claimed: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)  # name -> reason
    rows: int = 0
    rejected_rows: int = 0
    bytes: int = 0

    def merge(self, other: "ClaimReport") -> None:
        self.claimed += other.claimed
        self.duplicates += other.duplicates
        self.quarantined.update(other.quarantined)
        self.rows += other.rows
        self.rejected_rows += other.rejected_rows
        self.bytes += other.bytes


WORKERS = min(4, os.cpu_count() or 1)  # threads that read and decode files ahead of the main one


def in_order(items: Sequence[T], work: Callable[[T], R], workers: int = WORKERS) -> Iterator[R]:
    """``work(item)`` for each item, in order, computed a few items ahead on worker threads.

    For I/O and Arrow/numpy work that releases the GIL. At most ``2 * workers`` results wait
    in memory; an error is raised where its item's result is taken, as in a plain loop.
    """
    if workers <= 1 or len(items) <= 1:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="clickflow-io") as pool:
        pending: deque[Future] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class _Landed:
    """A candidate file read and, unless the manifest already knows its name, staged in memory:
    the pure part of claiming, computed ahead on worker threads (nothing is written here)."""

    data: bytes
    sha: str
    fname: schema.FileName
    staged: tuple[bytes, pa.Table, int] | transform.BadFile | None = None  # None: not computed


def _stage_in_memory(data: bytes, fname: schema.FileName) -> tuple[bytes, pa.Table, int] | transform.BadFile:
    try:
        cleaned, rejected, rows = transform.stage(data, fname.name, fname.minute)
    except transform.BadFile as error:
        return error
    return staged_bytes(cleaned), rejected, rows


def _stage(lake: Lake, hour: pd.Timestamp, landed: _Landed) -> FileEntry:
    """Keep one file's good rows staged and its bad rows aside; raises ``BadFile``."""
    fname, data = landed.fname, landed.data
    if landed.staged is None:
        landed.staged = _stage_in_memory(data, fname)
    if isinstance(landed.staged, transform.BadFile):
        raise landed.staged
    payload, rejected_table, rows = landed.staged
    entry = FileEntry(name=fname.name, minute=fname.minute.isoformat(), server=fname.server, size=len(data),
                      sha256=landed.sha, status="accepted", claimed_at=_now(), rows=rows,
                      rejected_rows=rejected_table.num_rows, staged_key=layout.staged_key(hour, fname.name))
    lake.write_bytes(entry.staged_key, payload)
    if entry.rejected_rows:
        rejected = rejected_table.to_pandas()
        reasons = rejected["reason"].value_counts().to_dict()
        layout.quarantine(lake, fname.name + ".rejected.csv", rejected.to_csv(index=False).encode(),
                          f"{len(rejected)} row(s) rejected", reasons=reasons)
        entry.reason = "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items()))
    return entry


def claim_hour(lake: Lake, hour: pd.Timestamp, page_size: int = 1000) -> ClaimReport:
    """Move the hour's landed files to ``raw/`` and record them; call under the hour's lock."""
    report = ClaimReport()
    manifest = Manifest.load(lake, hour)
    prefix = "landing/" + hour.strftime("%Y-%m-%d-%H-")

    # Adopt files a killed run moved to raw/ without recording them (move happens before save).
    candidates = [(obj, True) for obj in lake.list(f"raw/{layout.slug(hour)}/", page_size)
                  if obj.name not in manifest.files]
    candidates += [(obj, False) for obj in lake.list(prefix, page_size)]
    if candidates:
        # Before the first move: once a file has left landing/, only this marker asks for the
        # hour again if the run dies (t2_hour clears it once the hour is complete).
        lake.write_text(layout.pending_key(hour), _now())

    known_before = dict(manifest.files)

    def read(candidate: tuple[LakeObject, bool]) -> _Landed:
        data = lake.read_bytes(candidate[0].key)
        landed = _Landed(data, sha256_hex(data), schema.parse_file_name(candidate[0].name))
        if landed.fname.name not in known_before:  # the usual case: it will be staged
            landed.staged = _stage_in_memory(data, landed.fname)
        return landed

    # Reading and staging (parse, validate, clean, encode) run ahead on worker threads; every
    # write, move and manifest change happens here, in order, as if there were no threads.
    for (obj, already_raw), landed in zip(candidates, in_order(candidates, read)):
        data, sha, fname = landed.data, landed.sha, landed.fname
        known = manifest.files.get(fname.name)
        if known is not None and known.sha256 == sha:
            if not already_raw:
                lake.delete(obj.key)  # identical re-landing: its content is already held
            report.duplicates.append(fname.name)
            continue
        if known is not None and known.status == "accepted":
            reason = (f"a different file named {fname.name} was already accepted for this minute; "
                      "land corrected data under a new name (e.g. another server suffix)")
            layout.quarantine(lake, fname.name, data, reason, accepted_sha256=known.sha256, sha256=sha)
            lake.delete(obj.key)
            report.quarantined[fname.name] = reason
            continue
        try:
            entry = _stage(lake, hour, landed)
        except transform.BadFile as error:
            key = layout.quarantine(lake, fname.name, data, str(error), sha256=sha)
            lake.delete(obj.key)
            manifest.files[fname.name] = FileEntry(
                name=fname.name, minute=fname.minute.isoformat(), server=fname.server, size=len(data),
                sha256=sha, status="quarantined", reason=str(error), claimed_at=_now(), quarantine_key=key)
            report.quarantined[fname.name] = str(error)
            continue
        if not already_raw:
            lake.move(obj.key, layout.raw_key(hour, fname.name))
        manifest.files[fname.name] = entry
        report.claimed.append(fname.name)
        report.rows += entry.rows
        report.rejected_rows += entry.rejected_rows
        report.bytes += entry.size
    if report.claimed or report.quarantined:
        manifest.save(lake, hour)
    return report


# --------------------------------------------------------------------------- aggregates (t1)


def read_aggregates(lake: Lake, hour: pd.Timestamp) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The hour's minute aggregates (long form) and the file set each minute was computed from."""
    key = layout.aggregates_key(hour)
    if not lake.exists(key):
        return _empty_long(), {}
    table = pq.read_table(io.BytesIO(lake.read_bytes(key)))
    state = json.loads((table.schema.metadata or {}).get(_STATE_KEY, b"{}"))
    return table.to_pandas(), state


def write_aggregates(lake: Lake, hour: pd.Timestamp, frame: pd.DataFrame, state: dict[str, list[str]]) -> None:
    table = pa.Table.from_pandas(frame[list(AGG_COLUMNS)], preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _STATE_KEY: json.dumps(state).encode()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    lake.write_bytes(layout.aggregates_key(hour), buffer.getvalue())


def _empty_long() -> pd.DataFrame:
    return pd.DataFrame({
        "minute": pd.Series(dtype="datetime64[ns, UTC]"), "event": pd.Series(dtype=str),
        "dimension": pd.Series(dtype=str), "key": pd.Series(dtype=str),
        "view_count": pd.Series(dtype="float64"), "gmv": pd.Series(dtype="float64"),
        "purchase_count": pd.Series(dtype="float64"), "avg_price": pd.Series(dtype="float64"),
    })


def to_long(aggregates: dict[tuple[str, str], pd.DataFrame]) -> pd.DataFrame:
    parts = []
    for (event, dimension), frame in aggregates.items():
        if frame.empty:
            continue
        part = frame.rename(columns={dimension: "key"}).copy()
        part["key"] = part["key"].astype(str)
        part["event"], part["dimension"] = event, dimension
        parts.append(part.reindex(columns=AGG_COLUMNS))
    if not parts:
        return _empty_long()
    return pd.concat(parts, ignore_index=True)


def from_long(long: pd.DataFrame, event: str, dimension: str, time_col: str = "minute") -> pd.DataFrame:
    part = long[(long["event"] == event) & (long["dimension"] == dimension)]
    columns = [time_col, dimension, *metric_names(event, dimension)]
    frame = part.rename(columns={"key": dimension, "minute": time_col})
    frame = frame.reindex(columns=columns).copy()
    if dimension in ("product_id", "category_id"):
        frame[dimension] = frame[dimension].astype("int64")
    for column in ("view_count", "purchase_count"):
        if column in frame:
            frame[column] = frame[column].astype("int64")
    return frame.reset_index(drop=True)


def newest_t1_minute(warehouse: Warehouse, settings: Settings) -> pd.Timestamp | None:
    """The newest minute in t1: the clock all windows are measured from (event time, not wall time)."""
    specs = [t1_table(e, d) for e, d in pairs(settings.events, settings.dimensions)]
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT max(minute) FROM {}").format(spec.table) for spec in specs
    )
    try:
        frame = warehouse.read_frame(sql.SQL("SELECT max(m) FROM ({}) AS q(m)").format(query))
    except psycopg.errors.UndefinedTable:
        return None  # nothing materialized yet
    value = frame.iloc[0, 0] if len(frame) else None
    return None if value is None or pd.isna(value) else pd.Timestamp(value).tz_convert("UTC")


@dataclass
class MinuteReport:
    minutes: list[str] = field(default_factory=list)
    files: int = 0
    t1_rows: int = 0
    skipped_beyond_t2: list[str] = field(default_factory=list)
    # Totals straight from the accepted rows of the recomputed minutes inside the t1 window,
    # for the raw -> t1 reconciliation check: {"purchase": (count, gmv), "view": (count, 0.0)}.
    in_window: list[pd.Timestamp] = field(default_factory=list)
    expected: dict[str, tuple[int, float]] = field(default_factory=dict)


def engine_for(settings: Settings) -> Engine:
    """The configured engine outside Dagster (a local Spark session when PIPELINE_ENGINE=spark)."""
    return get_engine(settings.engine, master=settings.spark_master)


def hour_chunks(hours: list[pd.Timestamp], engine: Engine) -> list[list[pd.Timestamp]]:
    """A long backfill range in pieces: a day for pandas, a week for Spark (one job each).

    Bounds memory and the advisory locks held at once (one per hour) however long the range.
    """
    size = 168 if engine.name == "spark" else 24
    return [hours[i:i + size] for i in range(0, len(hours), size)]


@dataclass
class _HourWork:
    wanted: dict[str, list[str]]  # minute -> its input files, from the manifest
    long: pd.DataFrame  # the aggregates file as it is
    state: dict[str, list[str]]  # minute -> the files its aggregates were computed from
    stale: list[str]


def recompute_minutes(lake: Lake, warehouse: Warehouse, settings: Settings, hours: list[pd.Timestamp],
                      engine: Engine | None = None) -> MinuteReport:
    """Recompute the minutes whose input file set changed, in all the given hours at once.

    A backfill range is one engine call (one Spark query), not one per hour: the stale minutes of
    every hour are gathered under the hours' locks (taken together, in sorted order), computed
    together, then written. Order matters for crash safety: the t1 rows of all hours are
    replaced first (one transaction), then each hour's aggregates file with its input record. A
    crash in between leaves those records stale, so the next call recomputes the same minutes
    again instead of trusting half-done work.
    """
    engine = engine or engine_for(settings)
    report = MinuteReport()
    with warehouse.advisory_lock(*(hour_lock_name(h) for h in hours)):
        work, entries = {}, {}
        for hour in hours:
            manifest = Manifest.load(lake, hour)
            entries.update({(hour, e.name): e for e in manifest.accepted()})
            wanted = manifest.accepted_by_minute()
            long, state = read_aggregates(lake, hour)
            stale = sorted(m for m, files in wanted.items() if state.get(m) != files)
            if stale:
                work[hour] = _HourWork(wanted, long, state, stale)
        if not work:
            return report

        newest = newest_t1_minute(warehouse, settings)
        newest = max(filter(None, [newest, *(pd.Timestamp(w.stale[-1]) for w in work.values())]))
        t1_cutoff = newest - pd.Timedelta(hours=settings.t1_retention_hours)
        t2_cutoff = newest.floor("h") - pd.Timedelta(days=settings.t2_retention_days)
        for item in work.values():
            beyond = [m for m in item.stale if pd.Timestamp(m).floor("h") <= t2_cutoff]
            report.skipped_beyond_t2 += beyond
            item.stale = [m for m in item.stale if m not in beyond]
        work = {hour: item for hour, item in work.items() if item.stale}
        if not work:
            return report

        # pandas: a bounded number of rows in memory at a time (minutes are independent);
        # Spark: the whole range in one job.
        budget = None if engine.name == "spark" else CHUNK_ROWS
        aggregates, report.expected, report.files = _compute_in_chunks(
            lake, work, entries, engine, settings, budget, t1_cutoff)
        stale_ts = [pd.Timestamp(m) for item in work.values() for m in item.stale]
        report.in_window = [m for m in stale_ts if m > t1_cutoff]
        stale_py = [ts.to_pydatetime() for ts in stale_ts]
        with warehouse.connect() as conn, conn.transaction():
            for (event, dimension), frame in aggregates.items():
                rows = frame[frame["minute"] > t1_cutoff]
                spec = t1_table(event, dimension)
                report.t1_rows += warehouse.replace_slice(spec, "minute", stale_py, rows, conn)

        computed = to_long(aggregates)
        computed_hours = computed["minute"].dt.floor("h")
        for hour, item in work.items():
            kept = item.long[~item.long["minute"].isin([pd.Timestamp(m) for m in item.stale])]
            fresh = computed[computed_hours == hour]
            parts = [df for df in (kept, fresh) if len(df)] or [_empty_long()]
            new_long = pd.concat(parts, ignore_index=True).sort_values(["event", "dimension", "minute", "key"])
            new_state = {m: files for m, files in item.state.items() if m not in item.stale}
            new_state.update({m: item.wanted[m] for m in item.stale})
            write_aggregates(lake, hour, new_long, new_state)
            report.minutes += item.stale
    return report


CHUNK_ROWS = 500_000  # rows per pandas computation: bounds a backfill's memory, not its result


def staged_bytes(cleaned: pa.Table) -> bytes:
    """A file's cleaned rows as staged in the lake (``layout.staged_key``)."""
    buffer = io.BytesIO()
    feather.write_feather(cleaned, buffer, compression="zstd")
    return buffer.getvalue()


def staged_frame(data: bytes, parquet: bool = False) -> pd.DataFrame:
    """Staged rows as t1 computes from them; ``parquet`` for files staged before Arrow IPC."""
    table = (pq.read_table if parquet else feather.read_table)(io.BytesIO(data))
    return table.to_pandas(types_mapper={pa.string(): transform.TEXT, pa.large_string(): transform.TEXT}.get)


def _read_staged(lake: Lake, key: str) -> pd.DataFrame:
    return staged_frame(lake.read_bytes(key), parquet=key.endswith(".parquet"))


def _compute_in_chunks(lake: Lake, work: dict, entries: dict, engine: Engine, settings: Settings,
                       budget: int | None, t1_cutoff: pd.Timestamp):
    """Minute aggregates of every stale minute, computed a chunk of whole minutes at a time.

    Returns the aggregates per (event, dimension), the reconciliation totals of the minutes
    inside the t1 window, and how many files were read.
    """
    chunks, current, size = [], [], 0
    for hour, item in work.items():
        for minute in item.stale:
            names = [entry.rsplit(":", 1)[0] for entry in item.wanted[minute]]
            rows = sum(entries[hour, n].rows for n in names)
            if current and budget is not None and size + rows > budget:
                chunks.append(current)
                current, size = [], 0
            current += [(hour, n) for n in names]
            size += rows
    if current:
        chunks.append(current)

    parts: dict[tuple[str, str], list[pd.DataFrame]] = {}
    totals: dict[str, list[float]] = {}
    files = 0
    for chunk in chunks:
        keys = [entries[h, n].staged(h) for h, n in chunk]
        cleaned = pd.concat(in_order(keys, lambda key: _read_staged(lake, key)), ignore_index=True)
        files += len(chunk)
        kept = transform.kept_by_dedupe(cleaned) if "view" in settings.events else None
        for key, frame in engine.minute_aggregates(cleaned, settings.events, settings.dimensions, kept).items():
            parts.setdefault(key, []).append(frame)
        for event, (count, gmv) in expected_totals(cleaned, settings.events, t1_cutoff, kept).items():
            acc = totals.setdefault(event, [0, 0.0])
            acc[0] += count
            acc[1] += gmv
        del cleaned
    aggregates = {key: pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
                  for key, frames in parts.items()}
    return aggregates, {event: (int(c), g) for event, (c, g) in totals.items()}, files


def expected_totals(cleaned: pd.DataFrame, events, after: pd.Timestamp | None = None,
                    kept: np.ndarray | None = None) -> dict[str, tuple[int, float]]:
    """Event totals of the rows of minutes after ``after``, computed from rows, not from
    aggregates: the reference of the raw -> t1 reconciliation. ``kept``: the dedupe's mask."""
    totals = {}
    in_window = np.ones(len(cleaned), bool) if after is None else (cleaned["minute"] > after).to_numpy()
    if "purchase" in events:
        purchases = in_window & (cleaned["event_type"] == "purchase").to_numpy(bool)
        totals["purchase"] = (int(purchases.sum()), float(cleaned["price"].to_numpy()[purchases].sum()))
    if "view" in events:
        kept = transform.kept_by_dedupe(cleaned) if kept is None else kept
        totals["view"] = (int((in_window & (cleaned["event_type"] == "view").to_numpy(bool) & kept).sum()), 0.0)
    return totals


def clear_pending_if_current(lake: Lake, warehouse: Warehouse, settings: Settings, hour: pd.Timestamp) -> bool:
    """Drop the hour's pending marker once every accepted file is in its aggregates (call under
    the hour's lock): a claim by another run since this run's t1 keeps the marker."""
    wanted = Manifest.load(lake, hour).accepted_by_minute()
    _, state = read_aggregates(lake, hour)
    newest = newest_t1_minute(warehouse, settings)
    t2_cutoff = None if newest is None else newest.floor("h") - pd.Timedelta(days=settings.t2_retention_days)
    behind = [m for m, files in wanted.items()
              if state.get(m) != files and (t2_cutoff is None or pd.Timestamp(m).floor("h") > t2_cutoff)]
    if behind:
        return False
    lake.delete(layout.pending_key(hour))
    return True


# --------------------------------------------------------------------------- t2


def rebuild_hours(lake: Lake, warehouse: Warehouse, settings: Settings, hours: list[pd.Timestamp],
                  engine: Engine | None = None) -> int:
    """Replace the hours' t2 rows with the merge of their minute aggregates; returns rows written.

    One merge per table for all the hours (one Spark query per table for a backfill range) and one
    transaction, under the hours' locks. Hours older than the t2 window get no rows.
    """
    engine = engine or engine_for(settings)
    written = 0
    with warehouse.advisory_lock(*(hour_lock_name(h) for h in hours)):
        newest = newest_t1_minute(warehouse, settings)
        cutoff = None if newest is None else newest.floor("h") - pd.Timedelta(days=settings.t2_retention_days)
        longs = [read_aggregates(lake, hour)[0] for hour in hours if cutoff is None or hour > cutoff]
        long = pd.concat([df for df in longs if len(df)] or [_empty_long()], ignore_index=True)
        hours_py = [hour.to_pydatetime() for hour in hours]
        with warehouse.connect() as conn, conn.transaction():
            for event, dimension in pairs(settings.events, settings.dimensions):
                minutes = from_long(long, event, dimension)
                hourly = engine.merge(transform.to_hour(minutes), event, dimension, "hour")
                written += warehouse.replace_slice(t2_table(event, dimension), "hour", hours_py, hourly, conn)
    return written


# --------------------------------------------------------------------------- rankings


def rebuild_rankings(warehouse: Warehouse, settings: Settings) -> tuple[int, pd.Timestamp | None]:
    """Rank every key of the 60 minutes ending at the newest t1 minute; replace the rank tables.

    Read, rank and replace happen under one lock and one transaction, so overlapping runs can
    only ever leave the rankings of the newest committed t1 state. The merge runs in PostgreSQL,
    where the t1 rows are (whatever the engine): an hour of t1 is up to millions of rows, which
    would cost more to move than to merge.
    """
    written = 0
    with warehouse.advisory_lock("events-rankings"), warehouse.connect() as conn, conn.transaction():
        newest = newest_t1_minute(warehouse, settings)
        for event, dimension in pairs(settings.events, settings.dimensions):
            target = rank_table(event, dimension)
            conn.execute(sql.SQL("DELETE FROM {}").format(target.table))
            if newest is None:
                continue
            start = newest - pd.Timedelta(minutes=59)
            window = {"start": start.to_pydatetime(), "end": (newest + pd.Timedelta(minutes=1)).to_pydatetime()}
            written += conn.execute(rank_statement(event, dimension), window).rowcount
    return written, newest


def rank_statement(event: str, dimension: str) -> sql.Composed:
    """Fill a rank table from the t1 minutes since ``%(start)s``, as ``transform.merge_partials``
    merges partials and ranked by the metric (gmv for purchases, view_count for views), highest
    first, ties by key in byte order (``COLLATE "C"``, as pandas sorts text).

    Money is summed exactly as in the pandas engine: each partial back to 1/10,000 units
    (``round`` is ``rint`` on double precision, as ``np.rint``), summed as integers, then divided
    once; so gmv and avg_price are the very floats the engines compute for the same rows.
    """
    source, target = t1_table(event, dimension), rank_table(event, dimension)
    key = source.column(dimension)
    metrics = metric_names(event, dimension)
    count = source.column("purchase_count" if event == "purchase" else "view_count")
    scale = sql.Literal(transform.PRICE_SCALE)
    if "gmv" in metrics:
        units = sql.SQL("round({} * {})").format(source.column("gmv"), scale)
    elif "avg_price" in metrics:
        units = sql.SQL("round({} * {}::float8 * {})").format(source.column("avg_price"), count, scale)
    else:
        units = sql.SQL("0")
    outer = {"gmv": sql.SQL("_money"), "purchase_count": sql.SQL("_n"), "view_count": sql.SQL("_n"),
             "avg_price": sql.SQL("_money / _n")}
    by = sql.SQL("_money") if event == "purchase" else sql.SQL("_n")
    text_key = next(c.type for c in source.columns if c.name == dimension) == "text"
    key_order = sql.SQL('{} COLLATE "C"').format(key) if text_key else key
    return sql.SQL(
        "INSERT INTO {target} ({key}, {metrics}, {rank}, {window_start}, {window_end}) "
        "SELECT {key}, {values}, row_number() OVER (ORDER BY {by} DESC, {key_order}), %(start)s, %(end)s "
        "FROM (SELECT {key}, sum({count})::bigint AS _n, sum({units}::bigint)::float8 / {scale} AS _money "
        "FROM {source} WHERE {minute} >= %(start)s GROUP BY {key}) AS w"
    ).format(
        target=target.table, source=source.table, key=key, count=count, units=units, scale=scale, by=by,
        key_order=key_order, minute=source.column("minute"), rank=target.column("rank"),
        window_start=target.column("window_start"), window_end=target.column("window_end"),
        metrics=sql.SQL(", ").join(map(target.column, metrics)),
        values=sql.SQL(", ").join(outer[m] for m in metrics),
    )


# --------------------------------------------------------------------------- archive


@dataclass
class ArchiveReport:
    key: str = ""
    files: int = 0
    rows: int = 0
    bytes: int = 0
    raw_deleted: int = 0
    settled: bool = True
    written_by: str = ""  # "pandas" (this process) or "spark"
    note: str = ""  # why an archive meant for Spark was written here instead


def block_hours(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    return list(pd.date_range(start, end, freq="h", inclusive="left"))


def archive_key(start: pd.Timestamp, end: pd.Timestamp) -> str:
    span = "%Y-%m-%d" if end - start >= pd.Timedelta(days=1) else "%Y-%m-%d-%H"
    return f"archive/{start.strftime(span)}.csv.gz"


def _raw_text_frame(data: bytes, name: str) -> pd.DataFrame:
    """A file's rows exactly as text (no NA parsing), in the standard column order."""
    compression = "gzip" if name.endswith(".gz") else None
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False,
                        compression=compression)
    return frame.reindex(columns=list(schema.COLUMNS))


def _file_digests(frame: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """source_file -> (rows, sha256 of its rows as CSV): what an archive must give back."""
    digests = {}
    for name, part in frame.groupby("source_file", sort=True):
        text = part[list(schema.COLUMNS)].to_csv(index=False, header=False)
        digests[name] = (len(part), sha256_hex(text.encode()))
    return digests


def _read_archive(lake: Lake, key: str) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(lake.read_bytes(key)), dtype=str, keep_default_na=False, na_filter=False,
                       compression="gzip")


def archive_block(lake: Lake, warehouse: Warehouse, start: pd.Timestamp, end: pd.Timestamp,
                  engine: Engine | None = None) -> ArchiveReport:
    """Write the block's archive from its raw files (plus what an earlier archive already holds),
    read it back, verify rows and checksums per file, and only then delete the raw files.

    The pandas engine does it in this process. With Spark (``spark_archive``) the cluster reads,
    orders, writes and reads back, and only per-file digests come here, where they are checked
    against the rows as this platform's own parser reads them; a Spark archive that does not
    verify (Spark's CSV reader disagrees on some oddly quoted value) is written here instead.
    """
    hours = block_hours(start, end)
    report = ArchiveReport(key=archive_key(start, end))
    with warehouse.advisory_lock(*(hour_lock_name(h) for h in hours)):
        accepted: dict[str, FileEntry] = {}
        raw_present: dict[str, str] = {}
        for hour in hours:
            for entry in Manifest.load(lake, hour).accepted():
                accepted[entry.name] = entry
            for obj in lake.list(f"raw/{layout.slug(hour)}/"):
                raw_present[obj.name] = obj.key
        raw = {name: raw_present[name] for name in sorted(accepted) if name in raw_present}
        if not raw:
            return report  # nothing new since the last archive of this block
        kept = [name for name in sorted(accepted) if name not in raw_present]
        rows_of = {name: entry.rows for name, entry in accepted.items()}
        staging = report.key.replace("archive/", "archive-staging/", 1)
        payload = expected = None
        if engine is not None and engine.name == "spark":
            try:
                payload, expected = _archive_on_spark(lake, report.key, staging, raw, kept, rows_of, engine)
                report.written_by = "spark"
            except _NotOnSpark as reason:
                report.note = str(reason)
        if payload is None:
            payload, expected = _archive_here(lake, report.key, staging, raw, kept, rows_of)
            report.written_by = "pandas"
        lake.move(staging, report.key)
        for name, key in raw_present.items():
            if name in expected:  # only files the verified archive holds
                lake.delete(key)
                report.raw_deleted += 1
        report.files, report.rows = len(expected), sum(rows for rows, _ in expected.values())
        report.bytes = len(payload)
    return report


Digests = dict[str, tuple[int, str]]


class _NotOnSpark(Exception):
    """Why a block meant for Spark is archived in this process instead."""


def _verify(lake: Lake, key: str, staging: str, payload: bytes, expected: Digests, kept: list[str],
            rows_of: dict[str, int], read_back: Callable[[str], Digests]) -> None:
    """Refuse an archive that would lose a file or rows; store it at ``staging`` and check what
    reads back from there, file by file. Raises ``RuntimeError`` (staging removed)."""
    missing = [name for name in kept if name not in expected]
    if missing:
        raise RuntimeError(
            f"accepted file {missing[0]} is neither in raw/ nor in {key}: refusing to write an "
            "archive that would lose it; restore the file into raw/ and re-run"
        )
    for name, (rows, _) in expected.items():
        if rows != rows_of[name]:
            raise RuntimeError(f"{name}: {rows} rows prepared for the archive, the manifest says "
                               f"{rows_of[name]}; nothing was deleted")
    lake.write_bytes(staging, payload)
    try:
        readback = read_back(staging)
    except Exception as error:  # an archive that cannot be read back failed verification too
        lake.delete(staging)
        raise RuntimeError(f"archive {key} failed verification: it cannot be read back "
                           f"({type(error).__name__}); the raw files are kept") from error
    if readback != expected:
        bad = sorted(n for n in expected if readback.get(n) != expected[n])
        lake.delete(staging)
        raise RuntimeError(f"archive {key} failed verification for {len(bad)} file(s) "
                           f"(e.g. {bad[:3]}); the raw files are kept")


def _archive_here(lake: Lake, key: str, staging: str, raw: dict[str, str], kept: list[str],
                  rows_of: dict[str, int]) -> tuple[bytes, Digests]:
    """The archive built and verified in this process; returns it and its per-file digests."""
    previous = _read_archive(lake, key) if kept and lake.exists(key) else None
    parts = []
    for name in sorted([*raw, *kept]):
        if name in raw:
            part = _raw_text_frame(lake.read_bytes(raw[name]), name)
            part.insert(0, "source_file", name)
            parts.append(part)
        elif previous is not None:
            parts.append(previous[previous["source_file"] == name])
    frame = pd.concat(parts, ignore_index=True)
    payload = gzip.compress(frame.to_csv(index=False).encode(), compresslevel=6)
    expected = _file_digests(frame)
    _verify(lake, key, staging, payload, expected, kept, rows_of,
            lambda staged: _file_digests(_read_archive(lake, staged)))
    return payload, expected


def _archive_on_spark(lake: Lake, key: str, staging: str, raw: dict[str, str], kept: list[str],
                      rows_of: dict[str, int], engine: Engine) -> tuple[bytes, Digests]:
    """The archive written by Spark and verified against this platform's parser (raw files) and
    the earlier verified archive (kept files). Raises ``_NotOnSpark`` to have it written here."""
    from pipeline.events import spark_archive

    spark = engine.session()
    master = spark.conf.get("spark.master", "")
    if not master.startswith("local"):
        # Executors read and write files here: only a local master shares this machine's disk.
        raise _NotOnSpark(f"archived in this process: the Spark master {master!r} is not local, and "
                          "executors cannot read the lake's files through this process's filesystem")
    with tempfile.TemporaryDirectory(prefix="clickflow-archive-") as scratch:
        files = [_local_path(lake, raw_key, Path(scratch) / "raw" / name) for name, raw_key in raw.items()]
        previous = _local_path(lake, key, Path(scratch) / "previous.csv.gz") if kept and lake.exists(key) else None
        try:
            part, from_spark = spark_archive.write_archive(spark, files, previous, kept, Path(scratch) / "out")
        except Exception as error:  # e.g. a value Spark's CSV reader refuses to parse
            raise _NotOnSpark(f"archived in this process: Spark could not read the block "
                              f"({type(error).__name__})") from error
        payload = part.read_bytes()
        # The reference for raw files is the platform's own parser (Arrow), not Spark's reading.
        expected = {name: from_spark[name] for name in kept if name in from_spark}
        for name, path in zip(raw, files):
            table = transform.read_table(path.read_bytes(), name)
            expected[name] = (table.num_rows, transform.rows_digest(table))

    def read_back(staged: str) -> Digests:
        with tempfile.TemporaryDirectory(prefix="clickflow-archive-") as scratch:
            return spark_archive.archive_digests(spark, _local_path(lake, staged, Path(scratch) / "archive.csv.gz"))

    try:
        _verify(lake, key, staging, payload, expected, kept, rows_of, read_back)
    except RuntimeError as error:
        raise _NotOnSpark(f"archived in this process: the archive Spark wrote did not verify ({error})") from error
    return payload, expected


def _local_path(lake: Lake, key: str, scratch: Path) -> Path:
    """Where Spark can read ``key``: the file itself in a local lake, else a copy at ``scratch``."""
    if isinstance(lake, LocalLake):
        return lake.path(key)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    scratch.write_bytes(lake.read_bytes(key))
    return scratch


# --------------------------------------------------------------------------- retention


def _delete_before(warehouse: Warehouse, specs, column: str, cutoff: pd.Timestamp) -> int:
    deleted = 0
    with warehouse.connect() as conn, conn.transaction():
        for spec in specs:
            cur = conn.execute(sql.SQL("DELETE FROM {} WHERE {} <= %s").format(spec.table, spec.column(column)),
                               (cutoff.to_pydatetime(),))
            deleted += cur.rowcount
    return deleted


def apply_t1_retention(warehouse: Warehouse, settings: Settings) -> tuple[int, pd.Timestamp | None]:
    newest = newest_t1_minute(warehouse, settings)
    if newest is None:
        return 0, None
    cutoff = newest - pd.Timedelta(hours=settings.t1_retention_hours)
    specs = [t1_table(e, d) for e, d in pairs(settings.events, settings.dimensions)]
    return _delete_before(warehouse, specs, "minute", cutoff), cutoff


def apply_t2_retention(lake: Lake, warehouse: Warehouse, settings: Settings) -> tuple[int, pd.Timestamp | None]:
    """Drop t2 hours and staged rows older than the t2 window (aggregates and archives stay)."""
    newest = newest_t1_minute(warehouse, settings)
    if newest is None:
        return 0, None
    cutoff = newest.floor("h") - pd.Timedelta(days=settings.t2_retention_days)
    specs = [t2_table(e, d) for e, d in pairs(settings.events, settings.dimensions)]
    deleted = _delete_before(warehouse, specs, "hour", cutoff)
    for obj in lake.list("staged/"):
        hour = layout.hour_of_slug(obj.key.split("/")[1])
        if hour <= cutoff:
            lake.delete(obj.key)
    return deleted, cutoff
