"""``t1_minute``: recompute the minutes whose input file set changed and replace them in t1.

Idempotent: what to do is derived from the manifest and the aggregates' record of which files
each minute was computed from, so a repeated call recomputes only what is out of date, and a
killed one is repaired by the next.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.events import layout, transform
from pipeline.events.aggregates import empty_long, read_aggregates, to_long, write_aggregates
from pipeline.events import clock
from pipeline.events.engine import Engine, engine_for
from pipeline.events.layout import Manifest, hour_lock_name
from pipeline.events.staging import in_order, read_staged
from pipeline.events.tables import t1_table
from pipeline.resources.lake import Lake
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings


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
        work, entries, manifests = {}, {}, {}
        for hour in hours:
            manifest = manifests[hour] = Manifest.load(lake, hour)
            entries.update({(hour, e.name): e for e in manifest.accepted()})
            wanted = manifest.accepted_by_minute()
            long, state = read_aggregates(lake, hour)
            stale = sorted(m for m, files in wanted.items() if state.get(m) != files)
            if stale:
                work[hour] = _HourWork(wanted, long, state, stale)
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
        committed = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")

        computed = to_long(aggregates)
        computed_hours = computed["minute"].dt.floor("h")
        for hour, item in work.items():
            kept = item.long[~item.long["minute"].isin([pd.Timestamp(m) for m in item.stale])]
            fresh = computed[computed_hours == hour]
            parts = [df for df in (kept, fresh) if len(df)] or [empty_long()]
            new_long = pd.concat(parts, ignore_index=True).sort_values(["event", "dimension", "minute", "key"])
            new_state = {m: files for m, files in item.state.items() if m not in item.stale}
            new_state.update({m: item.wanted[m] for m in item.stale})
            write_aggregates(lake, hour, new_long, new_state)
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


CHUNK_ROWS = 500_000  # rows per pandas computation: bounds a backfill's memory, not its result


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
        cleaned = pd.concat(in_order(keys, lambda key: read_staged(lake, key)), ignore_index=True)
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
