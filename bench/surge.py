"""Surge: the real ``dagster-daemon``, live minutes arriving every few seconds, and a backlog of
several hours landed at once in the middle of them.

What a user feels when history arrives in bulk: the live minutes' landing-to-t1 latency (p50,
p95, max) while the backlog is processed, how long until the backlog is in t1, landing-sensor
ticks that failed, ingest runs per live minute, runs that found nothing left to claim (their
files were taken by another run: duplicates), and whether t1 and t2 equal the independent batch
oracle (DuckDB over every landed file) afterwards.

The timeline: one live minute lands and is waited for (warm-up: the daemon loads the code
location); then the backlog (the ``backlog_hours`` before the live minutes, 4 server files per
minute) is hard-linked into ``landing/`` at once, and one live minute lands every ``interval``
seconds until the backlog is in t1 and at least ``live_minutes`` live minutes have landed.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.data import Dataset, dataset
from bench.live import _purchases, _wait, daemon_running
from pipeline.events.jobs import BACKLOG_TAG, INGEST_JOB

TARGET_P95_S, TARGET_MAX_S = 15.0, 30.0
SENSOR = "landing_sensor"


@dataclass
class SurgeResult:
    events_per_minute: int
    backlog_files: int
    backlog_minutes: int
    interval_s: float
    sensor_interval_s: int
    warmup_s: float | None = None
    latencies: dict[str, float] = field(default_factory=dict)  # live minute -> seconds
    missing: list[str] = field(default_factory=list)  # live minutes not complete in t1 in time
    backlog_s: float | None = None  # backlog landed -> every backlog minute complete in t1
    backlog_missing: int = 0  # backlog minutes not complete in t1 in time
    ticks: int = 0  # landing-sensor ticks from the backlog landing on
    failed_ticks: int = 0
    tick_errors: list[str] = field(default_factory=list)  # distinct first lines
    live_runs: int = 0  # ingest runs tagged backlog=false at work from the backlog landing on
    backlog_runs: int = 0
    other_runs: int = 0  # rankings, dashboard, archives, retention
    empty_runs: list[str] = field(default_factory=list)  # ingest runs that claimed nothing: "run_id partition"
    run_wait_s: float | None = None  # median created -> started of the live ingest runs (queue, launch, code load)
    first_step_s: float | None = None  # median started -> first step started of the live ingest runs
    same_as_oracle: bool | None = None
    oracle_note: str = ""
    load_before: str = ""
    load_after: str = ""
    error: str | None = None

    def percentile(self, q: float) -> float | None:
        values = sorted(self.latencies.values())
        return float(pd.Series(values).quantile(q, interpolation="higher")) if values else None

    @property
    def runs_per_live_minute(self) -> float | None:
        return self.live_runs / len(self.latencies) if self.latencies else None


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _link_all(paths: list[Path], landing: Path) -> float:
    """Land files at once (hard links, a copy where linking fails); returns when it finished."""
    landing.mkdir(parents=True, exist_ok=True)
    for path in paths:
        try:
            os.link(path, landing / path.name)
        except OSError:
            landing.joinpath(path.name).write_bytes(path.read_bytes())
    return time.monotonic()


def _tick_stats(instance, since: float, result: SurgeResult) -> None:
    states = [s for s in instance.all_instigator_state() if s.instigator_name == SENSOR]
    for state in states:
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=since)
        result.ticks += len(ticks)
        failed = [t for t in ticks if t.status.value == "FAILURE"]
        result.failed_ticks += len(failed)
        for tick in failed:
            message = (tick.error.message if tick.error else "no error recorded").strip().splitlines()[0]
            if message not in result.tick_errors:
                result.tick_errors.append(message[:300])


def _run_stats(instance, since: float, result: SurgeResult) -> None:
    import dagster as dg

    # Every run that worked after the backlog landed, also one started before it (a live run takes
    # the files of its hour landed while it works, so one run may serve many live minutes).
    records = [r for r in instance.get_run_records() if (r.end_time or time.time()) >= since]
    ingest = [r for r in records if r.dagster_run.job_name == INGEST_JOB]
    live = [r for r in ingest if r.dagster_run.tags.get(BACKLOG_TAG) == "false"]
    result.live_runs, result.backlog_runs = len(live), len(ingest) - len(live)
    result.other_runs = len(records) - len(ingest)
    waits = [r.start_time - r.create_timestamp.timestamp() for r in live if r.start_time]
    result.run_wait_s = statistics.median(waits) if waits else None
    to_step = []
    for r in live:
        steps = instance.get_records_for_run(r.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_START,
                                             limit=1).records
        if steps and r.start_time:
            to_step.append(steps[0].event_log_entry.timestamp - r.start_time)
    result.first_step_s = statistics.median(to_step) if to_step else None
    claimed: dict[str, int] = {}
    events, cursor = [], None
    while True:
        page = instance.fetch_materializations(dg.AssetKey(["events", "raw_files"]), limit=1000, cursor=cursor)
        events += page.records
        if not page.has_more:
            break
        cursor = page.cursor
    for record in events:
        meta = record.asset_materialization.metadata
        found = sum(int(meta[k].value) for k in ("files_claimed", "duplicate_files", "quarantined_files")
                    if k in meta)
        claimed[record.run_id] = max(claimed.get(record.run_id, 0), found)
    for r in ingest:
        if claimed.get(r.dagster_run.run_id) == 0:
            tags = r.dagster_run.tags
            where = tags.get("dagster/partition") or (
                f"{tags.get('dagster/asset_partition_range_start')}..{tags.get('dagster/asset_partition_range_end')}")
            result.empty_runs.append(f"{r.dagster_run.run_id[:8]} {where}")


def _compare_with_oracle(files: list[Path], pg_url: str, result: SurgeResult) -> None:
    """t1 and t2 against DuckDB over every landed file (pipeline_tests' independent oracle)."""
    from psycopg import sql

    from pipeline.events.tables import pairs, t1_table, t2_table
    from pipeline.resources.warehouse import Warehouse
    from pipeline_tests.events.event_oracle import assert_same, batch_oracle, to_hours

    events, dimensions = ("purchase", "view"), ("product_id", "brand", "category_l3")
    oracle = batch_oracle(files, events, dimensions)
    warehouse = Warehouse(pg_url)
    try:
        for event, dimension in pairs(events, dimensions):
            expected = oracle[(event, dimension)]
            for spec, frame, keys in ((t1_table(event, dimension), expected, ["minute", dimension]),
                                      (t2_table(event, dimension), to_hours(expected, event, dimension),
                                       ["hour", dimension])):
                actual = warehouse.read_frame(sql.SQL("SELECT * FROM {}").format(spec.table))
                assert_same(actual, frame, keys, spec.qualified)
    except AssertionError as error:
        result.same_as_oracle = False
        result.oracle_note = " ".join(str(error).split())[:400]
        return
    result.same_as_oracle = True
    result.oracle_note = f"t1 and t2, {len(pairs(events, dimensions))} tables each"


def surge_dataset(root: Path, events_per_minute: int, backlog_hours: int, live_minutes: int) -> Dataset:
    """Backlog minutes first, then one warm-up minute and the live minutes."""
    minutes = backlog_hours * 60 + 1 + live_minutes
    return dataset(root, events_per_minute * minutes, minutes)


def run_surge(
    data: Dataset,
    admin_url: str,
    work: Path,
    *,
    backlog_hours: int = 6,
    live_minutes: int = 12,
    interval: float = 10.0,
    sensor_interval: int = 5,
    log: Path | None = None,
) -> SurgeResult:
    import dagster as dg

    backlog_n = backlog_hours * 60
    live_max = data.minutes - backlog_n - 1
    stamps = [pd.Timestamp(data.config.start) + pd.Timedelta(minutes=m) for m in range(data.minutes)]
    minutes = [data.minute_files(m) for m in range(data.minutes)]
    result = SurgeResult(data.config.events_per_minute, sum(len(f) for f in minutes[:backlog_n]), backlog_n,
                         interval, sensor_interval, load_before=_load())
    expected = {stamp: _purchases(files) for stamp, files in zip(stamps, minutes)}
    landed_files: list[Path] = []
    try:
        log = log or work / "daemon.log"
        with daemon_running(data, admin_url, work, "surge", expected, sensor_interval, log) as running:
            instance, lake, watcher = running.instance, running.lake, running.watcher

            def land(m: int) -> float:
                for path in minutes[m]:
                    lake.write_bytes(f"landing/{path.name}", path.read_bytes())
                landed_files.extend(minutes[m])
                return time.monotonic()

            warm = land(backlog_n)
            if _wait(lambda: stamps[backlog_n] in watcher.seen, 300):
                result.warmup_s = watcher.seen[stamps[backlog_n]] - warm
            since = time.time()
            print(f"[bench]   surge: landing {result.backlog_files} backlog files at once", flush=True)
            backlog_at = _link_all([p for m in range(backlog_n) for p in minutes[m]], Path(lake.root) / "landing")
            landed_files.extend(p for m in range(backlog_n) for p in minutes[m])
            backlog_stamps = stamps[:backlog_n]
            landed: dict[pd.Timestamp, float] = {}
            begin = time.monotonic()
            for i in range(live_max):
                backlog_done = all(s in watcher.seen for s in backlog_stamps)
                if i >= live_minutes and backlog_done:
                    break
                time.sleep(max(0.0, begin + i * interval - time.monotonic()))
                m = backlog_n + 1 + i
                landed[stamps[m]] = land(m)
            _wait(lambda: all(s in watcher.seen for s in [*landed, *backlog_stamps]), max(180.0, 20 * interval))
            for stamp, at in landed.items():
                if stamp in watcher.seen:
                    result.latencies[stamp.isoformat()] = watcher.seen[stamp] - at
                else:
                    result.missing.append(stamp.isoformat())
            seen_backlog = [watcher.seen[s] for s in backlog_stamps if s in watcher.seen]
            result.backlog_missing = backlog_n - len(seen_backlog)
            if not result.backlog_missing:
                result.backlog_s = max(seen_backlog) - backlog_at
            active = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
            _wait(lambda: not instance.get_runs(filters=dg.RunsFilter(statuses=active), limit=1), 120, poll=1)
            result.load_after = _load()
            _tick_stats(instance, since, result)
            _run_stats(instance, since, result)
            _compare_with_oracle(landed_files, running.pg_url, result)
    except Exception as error:  # reported with whatever was measured before it
        result.error = f"{type(error).__name__}: {error}"
    return result


def summary(result: SurgeResult) -> dict:
    """The figures results.json keeps, derived ones included."""
    import dataclasses

    return {**dataclasses.asdict(result), "p50_s": result.percentile(0.5), "p95_s": result.percentile(0.95),
            "max_s": result.percentile(1.0), "runs_per_live_minute": result.runs_per_live_minute}


def targets(surge: dict) -> list[dict]:
    """The issue's acceptance rows, in report.targets' shape."""
    if surge.get("error"):
        return [{"target": "surge scenario", "measured": surge["error"], "met": False, "by": ""}]
    p95, worst = surge.get("p95_s"), surge.get("max_s")
    complete = not surge["missing"] and not surge["backlog_missing"]
    return [
        {"target": f"surge: live p95 <= {TARGET_P95_S:g} s", "measured": _s(p95),
         "met": None if p95 is None else p95 <= TARGET_P95_S and complete,
         "by": f"{p95 - TARGET_P95_S:.1f} s over" if p95 and p95 > TARGET_P95_S else ""},
        {"target": f"surge: live max <= {TARGET_MAX_S:g} s", "measured": _s(worst),
         "met": None if worst is None else worst <= TARGET_MAX_S and complete,
         "by": f"{worst - TARGET_MAX_S:.1f} s over" if worst and worst > TARGET_MAX_S else ""},
        {"target": "surge: no failed landing-sensor tick", "measured": f"{surge['failed_ticks']} of {surge['ticks']}",
         "met": surge["failed_ticks"] == 0, "by": ""},
        {"target": "surge: no duplicate run (every ingest run claimed files)",
         "measured": f"{len(surge['empty_runs'])} empty", "met": not surge["empty_runs"], "by": ""},
        {"target": "surge: t1 and t2 equal the batch oracle", "measured": surge["oracle_note"] or "n/a",
         "met": surge["same_as_oracle"], "by": ""},
    ]


def _s(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "n/a"


def markdown(surge: dict) -> list[str]:
    lines = [
        f"Daemon as in the live part, `PIPELINE_SENSOR_INTERVAL_SECONDS={surge['sensor_interval_s']}`. After a "
        f"warm-up minute, a backlog of {surge['backlog_minutes'] // 60} hours ({surge['backlog_files']:,} files, "
        f"{surge['events_per_minute']:,} events per minute) lands at once, while one live minute lands every "
        f"{surge['interval_s']:g} s until the backlog is in t1. Load average before and after: "
        f"{surge['load_before']} / {surge['load_after']}.",
    ]
    if surge.get("error"):
        return lines + ["", f"**Error:** {surge['error']}"]
    lines += [
        "",
        "| live minutes | p50 (s) | p95 (s) | max (s) | not visible in time | backlog in t1 after (s) "
        "| failed sensor ticks | live runs per live minute | empty runs | same as the oracle |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {len(surge['latencies'])} | {_n(surge['p50_s'])} | {_n(surge['p95_s'])} | {_n(surge['max_s'])} "
        f"| {len(surge['missing'])} | {_n(surge['backlog_s'])} | {surge['failed_ticks']} of {surge['ticks']} "
        f"| {_n(surge['runs_per_live_minute'], '{:.2f}')} | {len(surge['empty_runs'])} "
        f"| {({True: 'yes', False: '**no**', None: 'n/a'})[surge['same_as_oracle']]} |",
        "",
        f"Ingest runs: {surge['live_runs']} live, {surge['backlog_runs']} backlog; {surge['other_runs']} other runs "
        f"(rankings, dashboard, housekeeping). Live runs took a median of {_n(surge['run_wait_s'])} s from "
        f"creation to start (queue, launch, loading the code location) and {_n(surge.get('first_step_s'), '{:.2f}')} s "
        "from start to their first step.",
    ]
    if surge["tick_errors"]:
        lines += ["", "Failed ticks: " + "; ".join(f"`{e}`" for e in surge["tick_errors"])]
    if surge["empty_runs"]:
        lines += ["", "Runs that claimed nothing: " + ", ".join(surge["empty_runs"][:20])]
    if surge["same_as_oracle"] is False:
        lines += ["", f"Difference from the oracle: {surge['oracle_note']}"]
    return lines


def _n(value, fmt: str = "{:,.1f}") -> str:
    return fmt.format(value) if value is not None else "n/a"
