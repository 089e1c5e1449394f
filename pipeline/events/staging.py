"""Staging: a landed file read, checked and split into its accepted rows (typed and cleaned, as
t1 reads them) and its rejected rows, both written beside each other in ``staged/``; the staged
format; and the read-ahead that claiming and t1 share.

``stage_file`` is the pure part of claiming, one file at a time, with no decision in it: it runs
on worker threads or processes (or Spark executors, on the content Spark read), while the
claiming thread decides, in order, what each file becomes (accepted, duplicate, quarantined) from
the reports.
"""

from __future__ import annotations

import io
import os
import threading
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from dataclasses import dataclass, field

import pandas as pd

from pipeline.events import layout, schema, transform
from pipeline.resources.lake import Lake, open_lake, sha256_hex

T, R = TypeVar("T"), TypeVar("R")

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
        yield from ahead(pool, work, items, 2 * workers)


def ahead(pool: Executor, work: Callable[[T], R], items: Iterable[T], depth: int) -> Iterator[R]:
    """``work(item)`` for each item on ``pool``, yielded in order, at most ``depth`` results
    waiting; an error is raised where its item's result is taken. Work not begun when the
    caller stops taking results is cancelled."""
    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


# LZ4 writes 2x and reads 3x faster than zstd for a 10,000-row file, at 1.7x the size (measured);
# files are read once or twice (t1, a late file's minute) and dropped with the t2 window.
STAGED_COMPRESSION = "lz4"


# The staged rows as Parquet, the format Spark reads natively (``transform.clean_table``'s columns;
# timestamps in microseconds, Spark's unit: the CSV's are whole seconds, so nothing is lost).
PARQUET = pa.schema([
    ("event_time", pa.timestamp("us", tz="UTC")), ("event_type", pa.string()), ("product_id", pa.int64()),
    ("category_id", pa.int64()), ("category_code", pa.string()), ("brand", pa.string()), ("price", pa.float64()),
    ("user_id", pa.int64()), ("user_session", pa.string()), ("minute", pa.timestamp("us", tz="UTC")),
    ("category_l1", pa.string()), ("category_l2", pa.string()), ("category_l3", pa.string()),
])


def as_parquet_rows(table: pa.Table) -> pa.Table:
    """Staged rows in ``PARQUET``'s columns and types."""
    return table.select(PARQUET.names).cast(PARQUET, safe=False)


def staged_bytes(cleaned: pa.Table, parquet: bool = False) -> bytes:
    """A file's cleaned rows as staged in the lake (``layout.staged_key``): Arrow IPC, or with
    ``parquet`` (the Spark engine) Parquet of ``PARQUET``, which Spark's executors read natively."""
    buffer = io.BytesIO()
    if parquet:
        pq.write_table(as_parquet_rows(cleaned), buffer)
    else:
        feather.write_feather(cleaned, buffer, compression=STAGED_COMPRESSION)
    return buffer.getvalue()


def staged_table(data: bytes, parquet: bool = False) -> pa.Table:
    """Staged rows as t1 computes from them; ``parquet`` for files staged as Parquet (before
    Arrow IPC, and by Spark)."""
    return (pq.read_table if parquet else feather.read_table)(io.BytesIO(data))


def read_staged(lake: Lake, key: str) -> pa.Table:
    cached = _HANDOFF.take(key)
    return cached if cached is not None else staged_table(lake.read_bytes(key), parquet=key.endswith(".parquet"))


def hand_off(key: str, cleaned: pa.Table) -> None:
    """Keep rows just staged under ``key`` for the t1 step of the same run (``read_staged``)."""
    _HANDOFF.put(key, cleaned)


def forget(key: str) -> None:
    _HANDOFF.take(key)


class _Handoff:
    """Tables staged by this process, waiting for t1 of the same run to read them: raw_files and
    t1_minute run in one process, so t1 need not read back and decode what claiming just wrote.

    Bounded by bytes (oldest out first) and emptied as t1 takes each table, so memory stays
    bounded whatever the backfill; a key holds one content only (it carries the checksum), and a
    miss simply reads the lake.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._tables: dict[str, tuple[pa.Table, int]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, key: str, table: pa.Table) -> None:
        size = table.get_total_buffer_size()
        with self._lock:
            if size > self.max_bytes or key in self._tables:
                return
            while self._bytes + size > self.max_bytes:
                oldest = next(iter(self._tables))
                self._bytes -= self._tables.pop(oldest)[1]
            self._tables[key] = (table, size)
            self._bytes += size

    def take(self, key: str) -> pa.Table | None:
        with self._lock:
            found = self._tables.pop(key, None)
            if found is None:
                return None
            self._bytes -= found[1]
            return found[0]


_HANDOFF = _Handoff(max_bytes=512 * 1024 * 1024)


# --------------------------------------------------------------------------------- one file


@dataclass(frozen=True)
class StageTask:
    """A landed file to stage: where it is, and whether its name is recorded already (then only
    its checksum is wanted: it is a duplicate or a conflicting file, never staged again)."""

    key: str
    hour: pd.Timestamp
    checksum_only: bool = False

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@dataclass
class StagedFile:
    """What staging found of one landed file: all the claiming thread needs to decide its fate,
    and no row of it. ``staged_key`` and ``rejected_key`` are written, not yet durably."""

    key: str
    name: str
    sha256: str = ""
    size: int = 0
    gone: bool = False  # moved away between listing and reading (another claim took it)
    error: str = ""  # why the whole file is unusable (it goes to quarantine as it is)
    staged_key: str = ""  # its accepted rows
    rejected_key: str = ""  # its rejected rows, as CSV with their reason ("" when none)
    rows: int = 0  # data lines read
    rejected_rows: int = 0
    malformed_rows: int = 0  # of the rejected rows, lines with a wrong number of fields
    extra_columns: tuple[str, ...] = ()
    reasons: dict[str, int] = field(default_factory=dict)  # rejected rows per reason


def stage_file(lake: Lake, task: StageTask, data: bytes | None = None,
               parquet: bool = False) -> tuple[StagedFile, pa.Table | None]:
    """Read, check and stage one landed file; returns the report and, when staged, its cleaned
    rows (for ``hand_off``). Keys hold the file's checksum, so a key is only ever written with
    one content, whichever worker writes it and whatever the claim then decides.

    ``data`` is the file's content when the caller has read it already (Spark's ``binaryFile``
    source, which counts what it reads); ``parquet`` stages Parquet instead of Arrow IPC."""
    if data is None:
        try:
            data = lake.read_bytes(task.key)
        except FileNotFoundError:
            return StagedFile(task.key, task.name, gone=True), None
    report = StagedFile(task.key, task.name, sha256_hex(data), len(data))
    if task.checksum_only:
        return report, None
    try:
        staged = transform.stage(data, task.name, schema.parse_file_name(task.name).minute)
    except transform.BadFile as error:
        report.error = str(error)
        return report, None
    report.rows, report.malformed_rows = staged.rows, staged.malformed_rows
    report.rejected_rows, report.extra_columns = staged.rejected.num_rows, staged.extra_columns
    report.staged_key = layout.staged_key(task.hour, task.name, report.sha256, parquet)
    lake.write_bytes(report.staged_key, staged_bytes(staged.cleaned, parquet), durable=False)
    if report.rejected_rows:
        rejected = staged.rejected.to_pandas()
        report.reasons = {str(k): int(v) for k, v in rejected["reason"].value_counts().items()}
        report.rejected_key = layout.rejected_key(task.hour, task.name, report.sha256)
        lake.write_bytes(report.rejected_key, rejected.to_csv(index=False).encode(), durable=False)
    return report, staged.cleaned


def read_chunk(lake: Lake, keys: Sequence[str]) -> pa.Table:
    """The staged rows of some files, as one table (a chunk of whole minutes for t1)."""
    return pa.concat_tables([read_staged(lake, key) for key in keys], promote_options="permissive")


_LAKES: dict[tuple[str, str | None], Lake] = {}


def worker_lake(spec: tuple[str, str | None]) -> Lake:
    """The lake ``spec`` names (``Lake.reopen``), opened once per worker process."""
    return _LAKES.get(spec) or _LAKES.setdefault(spec, open_lake(*spec))


def stage_in_worker(spec: tuple[str, str | None], task: StageTask, parquet: bool = False) -> StagedFile:
    """``stage_file`` in a worker process (or a Spark task)."""
    return stage_file(worker_lake(spec), task, parquet=parquet)[0]
