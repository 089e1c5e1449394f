"""``t1_minute``: recompute the minutes whose input file set changed and replace them in t1.

Idempotent: what to do is derived from the manifest and the aggregates' record of which files
each minute was computed from, so a repeated call recomputes only what is out of date, and a
killed one is repaired by the next.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.events import aggregation, clock
from pipeline.events.aggregates import State, Sums, key_type, read_aggregates, write_aggregates
from pipeline.events.engine import Engine, engine_for
from pipeline.events.layout import FileEntry, Manifest, hour_lock_name
from pipeline.events.tables import pairs, t1_table
from pipeline.resources.lake import Lake
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings

# Rows computed at a time: bounds a backfill's memory, not its result; small enough that several
# chunks keep both cores busy while the previous one is written.
CHUNK_ROWS = 250_000


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
    sums: Sums  # the aggregates file as it is
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
    with warehouse.advisory_lock(*(hour_lock_name(h) for h in hours)):
        work: dict[pd.Timestamp, _HourWork] = {}
        entries: dict[tuple[pd.Timestamp, str], FileEntry] = {}
        manifests: dict[pd.Timestamp, Manifest] = {}
        for hour in hours:
            manifest = manifests[hour] = Manifest.load(lake, hour)
            entries.update({(hour, e.name): e for e in manifest.accepted()})
            wanted = manifest.accepted_by_minute()
            sums, state = read_aggregates(lake, hour)
            stale = sorted(m for m, files in wanted.items() if state.get(m) != files)
            if stale:
                work[hour] = _HourWork(wanted, sums, state, stale)
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

        fresh: dict[tuple[str, str], list[pa.Table]] = {}
        totals: dict[str, list] = {}
        # The engine computes chunks ahead (on worker processes, or executors) while this thread
        # replaces the rows of the previous ones (PostgreSQL works on its own core meanwhile):
        # one transaction, in order.
        chunks = _chunks(work, entries, None if engine.name == "spark" else CHUNK_ROWS)
        keys = [[entries[h, n].staged(h) for h, n in chunk] for chunk in chunks]
        with warehouse.connect() as conn, conn.transaction():
            results = engine.minute_sums(lake, keys, settings.events, settings.dimensions, t1_cutoff)
            for chunk, (sums, row_totals) in zip(chunks, results):
                report.files += len(chunk)
                minutes = sorted({entries[h, n].minute for h, n in chunk})
                for (event, dimension), table in sums.items():
                    fresh.setdefault((event, dimension), []).append(table)
                    report.t1_rows += _replace_minutes(warehouse, conn, event, dimension, minutes, table, t1_cutoff)
                for event, (count, gmv) in row_totals.items():
                    acc = totals.setdefault(event, [0, 0.0])
                    acc[0] += count
                    acc[1] += gmv
        report.expected = {event: (int(count), gmv) for event, (count, gmv) in totals.items()}
        stale_ts = [pd.Timestamp(m) for item in work.values() for m in item.stale]
        report.in_window = [m for m in stale_ts if m > t1_cutoff]
        committed = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")

        for hour, item in work.items():
            write_aggregates(lake, hour, _hour_sums(item, fresh, hour, settings), _new_state(item))
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
            budget: int | None) -> list[list[tuple[pd.Timestamp, str]]]:
    """The stale minutes' files, in chunks of whole minutes of at most ``budget`` rows (one chunk
    without a budget: Spark computes a backfill range in one job)."""
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


def _hour_sums(item: _HourWork, fresh: dict[tuple[str, str], list[pa.Table]], hour: pd.Timestamp,
               settings: Settings) -> Sums:
    """The hour's aggregates file after this call: its kept minutes plus the recomputed ones."""
    stale = pa.array([pd.Timestamp(m).value for m in item.stale], pa.int64())
    start, end = hour.value, (hour + pd.Timedelta(hours=1)).value
    out = {}
    for pair in pairs(settings.events, settings.dimensions):
        parts = []
        old = item.sums.get(pair)
        if old is not None and old.num_rows:
            parts.append(old.filter(pc.invert(pc.is_in(old["time"].cast(pa.int64()), value_set=stale))))
        for sums in fresh.get(pair, []):
            ns = sums["time"].cast(pa.int64())
            parts.append(sums.filter(pc.and_(pc.greater_equal(ns, start), pc.less(ns, end))))
        parts = [p for p in parts if p.num_rows]
        table = pa.concat_tables(parts, promote_options="permissive") if parts else None
        if table is not None:
            out[pair] = table.sort_by([("time", "ascending", "at_end"), ("key", "ascending", "at_end")])
        else:
            out[pair] = aggregation.merge_sums([], key_type(pair[1]))
    return out


def _new_state(item: _HourWork) -> State:
    state = {m: files for m, files in item.state.items() if m not in item.stale}
    state.update({m: item.wanted[m] for m in item.stale})
    return state
