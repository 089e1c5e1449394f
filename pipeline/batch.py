"""Batch mode: tick the sensors and execute every run they request on the same Dagster instance,
until nothing is pending. What the daemon does continuously, done once (cron, CI, replays)."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Callable

import dagster as dg

from pipeline.events.jobs import ARCHIVE_JOB, INGEST_JOB, RANGE_END_TAG, RANGE_START_TAG, REFRESH_JOB, RETENTION_JOB
from pipeline.events.sensors import LandingCursor

RUN_KEY_TAG = "dagster/run_key"


@dataclass
class ProcessSummary:
    runs: list[tuple[str, str, bool]] = field(default_factory=list)  # (job, partition or range, success)
    skipped_run_keys: int = 0

    @property
    def failed(self) -> list[tuple[str, str, bool]]:
        return [r for r in self.runs if not r[2]]


def _already_succeeded(instance: dg.DagsterInstance, run_key: str) -> bool:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}, statuses=[dg.DagsterRunStatus.SUCCESS]),
                             limit=1)
    return bool(runs)


def execute_request(defs: dg.Definitions, instance: dg.DagsterInstance, job_name: str,
                    request: dg.RunRequest | None, extra_tags: dict[str, str],
                    log_level: str = "INFO") -> tuple[str, bool]:
    job = defs.resolve_job_def(job_name)
    tags = dict(extra_tags)
    partition_key = None
    if request is not None:
        tags.update({k: str(v) for k, v in request.tags.items()})
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        partition_key = request.partition_key
    label = partition_key or (f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}" if RANGE_START_TAG in tags else "-")
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    result = job.execute_in_process(run_config=run_config, instance=instance, partition_key=partition_key, tags=tags,
                                    raise_on_error=False)
    return label, result.success


def execute_once(defs: dg.Definitions, instance: dg.DagsterInstance, job_name: str,
                 request: dg.RunRequest | None, log_level: str) -> tuple[str, bool] | None:
    """``execute_request`` unless a run with the request's run key already succeeded (then None)."""
    if request is not None and request.run_key and _already_succeeded(instance, request.run_key):
        return None
    return execute_request(defs, instance, job_name, request, {"clickflow/mode": "process"}, log_level)


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, sensor_name: str, cursor: str | None):
    sensor = defs.resolve_sensor_def(sensor_name)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources)
    result = sensor(context)
    return list(result.run_requests or []), result.cursor


def run_sensor(defs: dg.Definitions, instance: dg.DagsterInstance, sensor_name: str,
               log_level: str = "WARNING") -> list[tuple[str, str, bool]]:
    """One tick of any sensor, and every run it requests, executed in process."""
    sensor = defs.resolve_sensor_def(sensor_name)
    requests, _ = tick(defs, instance, sensor_name, None)
    done = []
    for request in requests:
        job_name = request.job_name or sensor.job_name
        outcome = execute_once(defs, instance, job_name, request, log_level)
        if outcome is not None:
            done.append((job_name, *outcome))
    return done


def process(defs: dg.Definitions, instance: dg.DagsterInstance, *, retention: bool = True,
            on_run: Callable[[str, str, bool], None] | None = None, max_rounds: int = 10_000,
            log_level: str = "INFO") -> ProcessSummary:
    """Landing sensor and its runs until a tick asks for nothing new, then rankings and dashboard
    (what the automation sensor does), settled archives and retention."""
    summary = ProcessSummary()
    _hold_connections(instance)

    def run(job_name: str, request: dg.RunRequest | None) -> bool:
        outcome = execute_once(defs, instance, job_name, request, log_level)
        if outcome is None:
            summary.skipped_run_keys += 1
            return False
        label, ok = outcome
        summary.runs.append((job_name, label, ok))
        if on_run:
            on_run(job_name, label, ok)
        return ok

    ingested = False
    cursor: str | None = None
    attempted: set[str] = set()  # a failing run is tried once per invocation, not forever
    for _ in range(max_rounds):
        requests, cursor = tick(defs, instance, "landing_sensor", cursor)
        fresh = [r for r in requests if r.run_key not in attempted]
        for request in fresh:
            attempted.add(request.run_key)
            ingested |= run(INGEST_JOB, request)
        if not fresh and not _cursor_pending(cursor):
            break
    if ingested:
        run(REFRESH_JOB, None)  # rankings, then the dashboard: what the automation sensor does
    archive_requests, _ = tick(defs, instance, "archive_sensor", None)
    for request in archive_requests:
        run(ARCHIVE_JOB, request)
    if retention and (ingested or archive_requests):
        run(RETENTION_JOB, None)
    return summary


_POOLED: "weakref.WeakSet[dg.DagsterInstance]" = weakref.WeakSet()


def _hold_connections(instance: dg.DagsterInstance) -> None:
    """One process, one run at a time: let the instance's PostgreSQL storages keep a connection
    instead of opening one per event written (hundreds per run, ~3 ms each). Once per instance;
    no statement timeout (0), as for any run; a no-op on other storages."""
    if instance not in _POOLED:
        instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=2)
        _POOLED.add(instance)


def _cursor_pending(cursor: str | None) -> bool:
    """True while the landing listing has more pages to read."""
    return LandingCursor.load(cursor).pending
