"""``t1_minute``: recompute the minutes whose input file set changed and replace them in t1.

Idempotent: what to do is derived from the manifest and the aggregates' record of which files
each minute was computed from, so a repeated call recomputes only what is out of date, and a
killed one is repaired by the next.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events import aggregation, clock
from pipeline.events.aggregates import State, Sums, key_type, read_aggregates, read_state, write_aggregates
from pipeline.events.engine import Engine, engine_for
from pipeline.events.layout import FileEntry, Manifest, hour_lock_name
from pipeline.events.tables import pairs, t1_table
from pipeline.resources.lake import Lake
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings

# Rows computed at a time: bounds a backfill's memory, not its result; small enough that several
# chunks keep both cores busy while the previous one is written. A Spark job is larger (each job
# costs scheduling on the cluster; its rows never reach the driver, only their sums).
CHUNK_ROWS = 250_000
SPARK_CHUNK_ROWS = 1_000_000
_NS_PER_HOUR = 3_600_000_000_000


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


@dataclass
class _HourWork:
    wanted: State  # minute -> its input files, from the manifest
    state: State  # minute -> the files its aggregates were computed from
    stale: list[str]


def recompute_minutes(lake: Lake, warehouse: Warehouse, settings: Settings, hours: list[pd.Timestamp],
                      engine: Engine | None = None) -> MinuteReport:
    """Recompute the minutes whose input file set changed, in all the given hours at once.

    The stale minutes of every hour are gathered under the hours' locks (taken together, in
    sorted order) and computed a chunk of whole minutes at a time (one Spark job per chunk), each
    chunk's t1 rows replaced as soon as it is computed, all in one transaction. Order matters for
    crash safety: that transaction commits first, then each hour's aggregates file is written with
    its input record. A crash in between leaves those records stale, so the next call recomputes
    the same minutes again instead of trusting half-done work.
    """
    engine = engine or engine_for(settings)
    report = MinuteReport()
    with contextlib.ExitStack() as stack:
        stack.enter_context(warehouse.advisory_lock(*(hour_lock_name(h) for h in hours)))
        work: dict[pd.Timestamp, _HourWork] = {}
        entries: dict[tuple[pd.Timestamp, str], FileEntry] = {}
        manifests: dict[pd.Timestamp, Manifest] = {}
        for hour in hours:
            manifest = manifests[hour] = Manifest.load(lake, hour)
            entries.update({(hour, e.name): e for e in manifest.accepted()})
            wanted = manifest.accepted_by_minute()
            state = read_state(lake, hour)
            stale = sorted(m for m, files in wanted.items() if state.get(m) != files)
            if stale:
                work[hour] = _HourWork(wanted, state, stale)
        if not work:
            return report

        newest = clock.newest_t1_minute(warehouse, settings)
        newest = max(filter(None, [newest, *(pd.Timestamp(w.stale[-1]) for w in work.values())]))
        t1_cutoff, t2_cutoff = clock.t1_cutoff(newest, settings), clock.t2_cutoff(newest, settings)
        for item in work.values():
            beyond = [m for m in item.stale if pd.Timestamp(m).floor("h") <= t2_cutoff]
            report.skipped_beyond_t2 += beyond
            item.stale = [m for m in item.stale if m not in beyond]
        work = {hour: item for hour, item in work.items() if item.stale}
        if not work:
            return report

        fresh = _Spill(stack.enter_context(spill_folder()))
        totals: dict[str, list] = {}
        # The engine computes chunks ahead (on worker processes, or executors) while this thread
        # replaces the rows of the previous ones (PostgreSQL works on its own core meanwhile):
        # one transaction, in order.
        chunks = _chunks(work, entries, SPARK_CHUNK_ROWS if engine.name == "spark" else CHUNK_ROWS)
        keys = [[entries[h, n].staged(h) for h, n in chunk] for chunk in chunks]
        with warehouse.connect() as conn, conn.transaction():
            results = engine.minute_sums(lake, keys, settings.events, settings.dimensions, t1_cutoff)
            for chunk, (sums, row_totals) in zip(chunks, results):
                report.files += len(chunk)
                minutes = sorted({entries[h, n].minute for h, n in chunk})
                for (event, dimension), table in sums.items():
                    report.t1_rows += _replace_minutes(warehouse, conn, event, dimension, minutes, table, t1_cutoff)
                fresh.add(sums)
                for event, (count, gmv) in row_totals.items():
                    acc = totals.setdefault(event, [0, 0.0])
                    acc[0] += count
                    acc[1] += gmv
        report.expected = {event: (int(count), gmv) for event, (count, gmv) in totals.items()}
        stale_ts = [pd.Timestamp(m) for item in work.values() for m in item.stale]
        report.in_window = [m for m in stale_ts if m > t1_cutoff]
        committed = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")

        for hour, item in work.items():
            write_aggregates(lake, hour, _hour_pieces(lake, item, fresh, hour, settings), _new_state(item))
            report.minutes += item.stale
            _mark_in_t1(lake, hour, manifests[hour], item, t1_cutoff, committed)
    return report


def _mark_in_t1(lake: Lake, hour: pd.Timestamp, manifest: Manifest, item: _HourWork, t1_cutoff: pd.Timestamp,
                committed: str) -> None:
    """Record when each file first reached t1 (the dashboard's landing-to-t1 latency). Bookkeeping
    after the aggregates: a crash before it leaves the time unset, never the tables wrong."""
    def names(files: list[str]) -> set[str]:
        return {entry.rsplit(":", 1)[0] for entry in files}

    added = set()
    for minute in item.stale:
        if pd.Timestamp(minute) > t1_cutoff:
            added |= names(item.wanted[minute]) - names(item.state.get(minute, []))
    fresh = [manifest.files[name] for name in added if not manifest.files[name].in_t1_at]
    for entry in fresh:
        entry.in_t1_at = committed
    if fresh:
        manifest.save(lake, hour)


def _chunks(work: dict[pd.Timestamp, _HourWork], entries: dict,
            budget: int) -> list[list[tuple[pd.Timestamp, str]]]:
    """The stale minutes' files, in chunks of whole minutes of at most ``budget`` rows (a minute
    larger than the budget is a chunk of its own)."""
    chunks, current, size = [], [], 0
    for hour, item in work.items():
        for minute in item.stale:
            names = [entry.rsplit(":", 1)[0] for entry in item.wanted[minute]]
            rows = sum(entries[hour, n].rows for n in names)
            if current and size + rows > budget:
                chunks.append(current)
                current, size = [], 0
            current += [(hour, n) for n in names]
            size += rows
    if current:
        chunks.append(current)
    return chunks


def _replace_minutes(warehouse: Warehouse, conn, event: str, dimension: str, minutes: list[str],
                     sums: pa.Table, t1_cutoff: pd.Timestamp) -> int:
    """Delete the minutes from a t1 table and COPY their rows inside the t1 window (binary)."""
    spec = t1_table(event, dimension)
    warehouse.delete_where(conn, spec, {"minute": [pd.Timestamp(m).to_pydatetime() for m in minutes]})
    rows = sums.filter(pc.greater(sums["time"], pa.scalar(t1_cutoff.value, sums["time"].type)))
    values = aggregation.metrics(rows["count"].to_numpy(), rows["units"].to_numpy(), event, dimension)
    columns = {"minute": rows["time"], dimension: rows["key"], **values}
    return warehouse.copy_columns(conn, spec, columns, rows.num_rows)


SPILL_PREFIX = "clickflow-t1-"
_SPILL_SETTLED_SECONDS = 3600


def spill_folder(root: str | None = None) -> tempfile.TemporaryDirectory:
    """This call's spill folder (``<tmp>/clickflow-t1-<pid>-...``, removed when the call ends).

    A killed call cannot remove its folder: the ones whose process is gone and that have not
    changed for an hour (another container sharing the folder may have other pids) go first."""
    base = Path(root or tempfile.gettempdir())
    for stale in base.glob(f"{SPILL_PREFIX}*"):
        pid = stale.name[len(SPILL_PREFIX):].split("-", 1)[0]
        try:
            settled = dt.datetime.now().timestamp() - stale.stat().st_mtime > _SPILL_SETTLED_SECONDS
        except FileNotFoundError:
            continue
        if pid.isdigit() and settled and not _running(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{SPILL_PREFIX}{os.getpid()}-", dir=base)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class _Spill:
    """The recomputed minutes' sums of one call, on local disk until its transaction commits
    (each hour's aggregates file is written from them afterwards): this process holds one chunk
    of sums at a time, however long the range and however dense its hours."""

    def __init__(self, folder: str):
        self._folder = Path(folder)
        self._parts: dict[tuple[int, tuple[str, str]], list[str]] = {}
        self._files = 0

    def add(self, sums: Sums) -> None:
        for pair, table in sums.items():
            if not table.num_rows:
                continue
            table = table.sort_by([("time", "ascending", "at_end"), ("key", "ascending", "at_end")])
            hours = _ns(table) // _NS_PER_HOUR * _NS_PER_HOUR
            for hour in np.unique(hours):
                at = np.flatnonzero(hours == hour)  # a run: the rows are sorted by time
                path, self._files = str(self._folder / f"{self._files}.arrow"), self._files + 1
                with pa.ipc.new_file(path, table.schema) as writer:
                    writer.write_table(table.slice(at[0], len(at)))
                self._parts.setdefault((int(hour), pair), []).append(path)

    def read(self, hour: pd.Timestamp, pair: tuple[str, str]) -> Iterator[pa.Table]:
        """The hour's sums of ``pair``, a chunk at a time, in (time, key) order."""
        for path in self._parts.get((hour.value, pair), []):
            with pa.ipc.open_file(path) as reader:
                yield reader.read_all()


def _hour_pieces(lake: Lake, item: _HourWork, fresh: _Spill, hour: pd.Timestamp,
                 settings: Settings) -> Iterator[tuple[tuple[str, str], pa.Table]]:
    """The hour's aggregates file after this call, as ``write_aggregates`` pieces: its kept
    minutes (read now, under the hour's lock, only if it keeps any: a file without a record of
    its minutes may) with the recomputed ones."""
    kept = any(m not in item.stale for m in item.state) or not item.state
    old = read_aggregates(lake, hour)[0] if kept else {}
    stale = pa.array([pd.Timestamp(m).value for m in item.stale], pa.int64())
    for pair in sorted(pairs(settings.events, settings.dimensions)):
        table = old.get(pair)
        if table is not None and table.num_rows:
            table = table.filter(pc.invert(pc.is_in(table["time"].cast(pa.int64()), value_set=stale)))
            table = table.sort_by([("time", "ascending", "at_end"), ("key", "ascending", "at_end")])
        else:
            table = aggregation.merge_sums([], key_type(pair[1]))
        for piece in _in_time_order(table, fresh.read(hour, pair)):
            yield pair, piece


def _in_time_order(old: pa.Table, parts: Iterable[pa.Table]) -> Iterator[pa.Table]:
    """Slices of ``old`` and of ``parts`` (each sorted by (time, key), ``parts`` in time order,
    no minute in two of them) in (time, key) order: a merge without holding the parts at once."""
    old_ns, i = _ns(old), 0
    for part in parts:
        ns, j = _ns(part), 0
        while j < len(ns):
            k = int(np.searchsorted(old_ns, ns[j]))  # old rows before the part's next row
            if k > i:
                yield old.slice(i, k - i)
                i = k
            m = len(ns) if i == len(old_ns) else int(np.searchsorted(ns, old_ns[i]))
            yield part.slice(j, m - j)
            j = m
    if i < len(old_ns):
        yield old.slice(i)


def _ns(table: pa.Table) -> np.ndarray:
    return table["time"].cast(pa.int64()).to_numpy()


def _new_state(item: _HourWork) -> State:
    state = {m: files for m, files in item.state.items() if m not in item.stale}
    state.update({m: item.wanted[m] for m in item.stale})
    return state
