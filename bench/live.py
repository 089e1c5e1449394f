"""Live latency: the real ``dagster-daemon`` on a temporary instance, one minute of files landed
every few seconds, and the time from landing until the minute is complete in t1.

"Complete" means t1's purchase count for the minute equals the purchases in its files, so a run
that saw only some of the minute's files does not count as visible. The first minute is a
warm-up (the daemon loads the code location) and is reported apart.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql

from bench.data import Dataset
from bench.pg import drop_database, fresh_database
from bench.platform_batch import environ, platform_env
from pipeline.events.jobs import INGEST_JOB
from pipeline.events.tables import t1_table
from pipeline.resources.lake import LocalLake

ROOT = Path(__file__).resolve().parents[1]
DAEMON = Path(sys.executable).with_name("dagster-daemon")
_PROBE = t1_table("purchase", "brand")


@dataclass
class LiveResult:
    interval_s: float
    sensor_interval_s: int
    warmup_s: float | None
    latencies: dict[str, float] = field(default_factory=dict)  # minute -> seconds, measured minutes only
    missing: list[str] = field(default_factory=list)  # not complete in t1 before the deadline
    ingest_runs: int = 0
    run_wait_s: float | None = None  # median created -> started: queue, process start, code loading
    run_wait_min_s: float | None = None  # the shortest: launch cost without a queue
    run_exec_s: float | None = None  # median started -> ended
    error: str | None = None

    def percentile(self, q: float) -> float | None:
        values = sorted(self.latencies.values())
        if not values:
            return None
        return float(pd.Series(values).quantile(q, interpolation="higher"))


class _Watcher(threading.Thread):
    """Polls t1 and records when each expected minute first holds all its purchases."""

    def __init__(self, pg_url: str, expected: dict[pd.Timestamp, int], poll: float = 0.25):
        super().__init__(name="t1-watcher", daemon=True)
        self.pg_url, self.expected, self.poll = pg_url, expected, poll
        self.seen: dict[pd.Timestamp, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        query = sql.SQL(
            "SELECT minute, sum(purchase_count) FROM {} WHERE minute >= %s GROUP BY minute"
        ).format(_PROBE.table)
        first = min(self.expected).to_pydatetime()
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            while not self.stop.wait(self.poll):
                try:
                    rows = conn.execute(query, (first,)).fetchall()
                except psycopg.errors.UndefinedTable:
                    continue  # the first run has not created t1 yet
                now = time.monotonic()
                for minute, purchases in rows:
                    minute = pd.Timestamp(minute).tz_convert("UTC")
                    if minute not in self.seen and purchases == self.expected.get(minute):
                        self.seen[minute] = now


def _purchases(files: list[Path]) -> int:
    return sum(path.read_bytes().count(b" UTC,purchase,") for path in files)


def _wait(predicate, timeout: float, poll: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False


def _stop(daemon: subprocess.Popen) -> None:
    """End the daemon and everything it started (code server, run workers): its own process group."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        if daemon.poll() is not None:
            break
        os.killpg(daemon.pid, sig)
        try:
            daemon.wait(grace)
        except subprocess.TimeoutExpired:
            continue
    try:
        os.killpg(daemon.pid, signal.SIGKILL)  # run workers left behind by the daemon
    except ProcessLookupError:
        pass


def _run_stats(instance, result: LiveResult) -> None:
    import dagster as dg

    records = instance.get_run_records(filters=dg.RunsFilter(job_name=INGEST_JOB))
    waits = [r.start_time - r.create_timestamp.timestamp() for r in records if r.start_time]
    execs = [r.end_time - r.start_time for r in records if r.start_time and r.end_time]
    result.ingest_runs = len(records)
    result.run_wait_s = statistics.median(waits) if waits else None
    result.run_wait_min_s = min(waits) if waits else None
    result.run_exec_s = statistics.median(execs) if execs else None


@dataclass
class RunningDaemon:
    instance: object  # the daemon's DagsterInstance
    lake: LocalLake
    watcher: _Watcher
    pg_url: str


@contextlib.contextmanager
def daemon_running(data: Dataset, admin_url: str, work: Path, name: str, expected: dict,
                   sensor_interval: int, log: Path) -> Iterator[RunningDaemon]:
    """The real daemon on fresh databases (``name`` for the tables, ``name``_dagster for its
    instance) and a lake under ``work``, with a watcher of t1's complete minutes (``expected``:
    purchases per minute), once its sensor loop runs. Everything it started is stopped and the
    databases dropped at the end."""
    import dagster as dg

    from pipeline.instance import prepare_instance
    from pipeline.settings import Settings

    pg_url, dagster_url = fresh_database(admin_url, name), fresh_database(admin_url, f"{name}_dagster")
    env = platform_env(
        work, pg_url, data.files, "pandas", dagster_url, PIPELINE_SENSOR_INTERVAL_SECONDS=str(sensor_interval)
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    daemon = None
    watcher = _Watcher(pg_url, expected)
    daemon_log = open(log, "wb")
    try:
        with environ(env):
            prepare_instance(Settings.from_env())
            daemon = subprocess.Popen(
                [str(DAEMON), "run", "-w", str(ROOT / "workspace.yaml")],
                cwd=ROOT,
                env=dict(os.environ),
                stdout=daemon_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            instance = dg.DagsterInstance.get()
            if not _wait(
                lambda: "SENSOR" in instance.get_daemon_heartbeats() or daemon.poll() is not None, 180
            ):
                raise RuntimeError("the daemon's sensor loop did not start within 180 s")
            if daemon.poll() is not None:
                raise RuntimeError(f"dagster-daemon exited with {daemon.returncode}; see {log}")
            watcher.start()
            try:
                yield RunningDaemon(instance, LocalLake(env["PIPELINE_LAKE_URL"]), watcher, pg_url)
            finally:
                instance.dispose()
    finally:
        watcher.stop.set()
        if watcher.is_alive():
            watcher.join(10)
        if daemon is not None:
            _stop(daemon)
        daemon_log.close()
        for url in (pg_url, dagster_url):
            drop_database(admin_url, url)


def run_live(
    data: Dataset,
    admin_url: str,
    work: Path,
    *,
    interval: float = 5.0,
    sensor_interval: int = 5,
    log: Path | None = None,
) -> LiveResult:
    """Land minute 0 (warm-up), then minutes 1.. every ``interval`` seconds, with the daemon running."""
    import dagster as dg

    result = LiveResult(interval_s=interval, sensor_interval_s=sensor_interval, warmup_s=None)
    minutes = [data.minute_files(m) for m in range(data.minutes)]
    stamps = [pd.Timestamp(data.config.start) + pd.Timedelta(minutes=m) for m in range(data.minutes)]
    expected = {stamp: _purchases(files) for stamp, files in zip(stamps, minutes)}
    log = log or work / "daemon.log"
    with daemon_running(data, admin_url, work, "live", expected, sensor_interval, log) as running:
        instance, lake, watcher = running.instance, running.lake, running.watcher

        def land(m: int) -> float:
            for path in minutes[m]:
                lake.write_bytes(f"landing/{path.name}", path.read_bytes())
            return time.monotonic()

        landed_warmup = land(0)
        if _wait(lambda: stamps[0] in watcher.seen, 300):
            result.warmup_s = watcher.seen[stamps[0]] - landed_warmup
        landed = {}
        begin = time.monotonic()
        for m in range(1, data.minutes):
            time.sleep(max(0.0, begin + (m - 1) * interval - time.monotonic()))
            landed[stamps[m]] = land(m)
        _wait(lambda: all(s in watcher.seen for s in landed), max(120.0, 20 * interval))
        for stamp, at in landed.items():
            if stamp in watcher.seen:
                result.latencies[stamp.isoformat()] = watcher.seen[stamp] - at
            else:
                result.missing.append(stamp.isoformat())
        active = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
        _wait(lambda: not instance.get_runs(filters=dg.RunsFilter(statuses=active), limit=1), 60, poll=1)
        _run_stats(instance, result)
    return result
