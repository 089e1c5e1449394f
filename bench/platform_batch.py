"""The product itself over a lake whose ``landing/`` holds every file of the data set:
``clickflow process`` as a user runs it (a command, start-up included: the headline figure), with
its steps' durations read back from the Dagster instance's event log, and the same work in process
(``run_batch``, for the profile and the tests)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from bench.memory import PeakMemory
from pipeline.events.jobs import RANGE_START_TAG
from pipeline.events.schema import parse_file_name

ROOT = Path(__file__).resolve().parents[1]
# What the report calls each step: the part of the asset key after the group.
STEP_NAMES = {
    "raw_files": "claim", "t1_minute": "t1", "t2_hour": "t2", "rankings": "rankings",
    "dashboard": "dashboard", "events_freshness_checks": "freshness",
    "t1_retention": "retention", "t2_retention": "retention",
}


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (resources read ``PIPELINE_PG_URL`` at run time)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def land(files: list[Path], lake_root: Path) -> None:
    """Put the files in ``landing/`` at once (hard links when possible: the copy is not measured)."""
    landing = lake_root / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    for path in files:
        try:
            os.link(path, landing / path.name)
        except OSError:
            shutil.copyfile(path, landing / path.name)


def platform_env(
    work: Path,
    pg_url: str,
    files: list[Path],
    engine: str = "pandas",
    dagster_pg_url: str | None = None,
    **extra: str,
) -> dict[str, str]:
    """Settings of a platform on ``work`` whose hourly partitions cover the files' days."""
    days = sorted({parse_file_name(p.name).minute.date() for p in files})
    env = {
        "PIPELINE_HOME": str(work / "home"),
        "PIPELINE_PG_URL": pg_url,
        "PIPELINE_LAKE_URL": str(work / "lake"),
        "PIPELINE_PARTITIONS_START": days[0].isoformat(),
        "PIPELINE_PARTITIONS_END": (days[-1] + dt.timedelta(days=1)).isoformat(),
        "PIPELINE_ENGINE": engine,
        "PIPELINE_EVENTS": "purchase,view",  # the tables the baselines write, whatever the caller's setting
        "PIPELINE_DIMENSIONS": "product_id,brand,category_l3",
        **extra,
    }
    if dagster_pg_url:
        env["PIPELINE_DAGSTER_PG_URL"] = dagster_pg_url
    return env


def run_batch(
    files: list[Path], work: Path, pg_url: str, *, engine: str = "pandas", dagster_pg_url: str | None = None
) -> dict:
    """Land ``files`` and time ``process``; with ``dagster_pg_url`` the Dagster instance is the
    PostgreSQL one ``clickflow process`` uses, else an ephemeral one (tests)."""
    import dagster as dg

    from pipeline.batch import process
    from pipeline.definitions import build_definitions
    from pipeline.instance import prepare_instance
    from pipeline.settings import Settings

    land(files, work / "lake")
    with environ(platform_env(work, pg_url, files, engine, dagster_pg_url)):
        settings = Settings.from_env()
        if dagster_pg_url:
            prepare_instance(settings)
            instance = dg.DagsterInstance.get()
        else:
            instance = dg.DagsterInstance.ephemeral()
        defs = build_definitions(settings)
        runs: list[
            list
        ] = []  # [job, partition, seconds since the previous run ended (sensor ticks included)]
        started = last = time.perf_counter()

        def on_run(job: str, label: str, ok: bool) -> None:
            nonlocal last
            now = time.perf_counter()
            runs.append([job, label, now - last])
            last = now

        summary = process(defs, instance, log_level="WARNING", on_run=on_run)
        wall = time.perf_counter() - started
        instance.dispose()
    return {"wall_s": wall, "runs": runs, "failed_runs": [list(r) for r in summary.failed]}


def clickflow() -> list[str]:
    """``clickflow process`` of the environment running the benchmark (``.venv/bin/clickflow``)."""
    return [str(Path(sys.executable).with_name("clickflow")), "process"]


def run_command(
    files: list[Path], work: Path, pg_url: str, dagster_pg_url: str, *, engine: str = "pandas",
    spark_master: str | None = None,
) -> dict:
    """Land ``files`` and run ``clickflow process`` as a separate command with the platform's
    settings (Dagster instance on ``dagster_pg_url``, as ``clickflow`` prepares it; a Spark
    cluster's ``spark_master``): its wall time from start to exit, the peak memory of its process
    tree and of the command's own process, and its runs and steps as the instance recorded them."""
    land(files, work / "lake")
    extra = {"PIPELINE_SPARK_MASTER": spark_master, "SPARK_LOCAL_IP": "127.0.0.1"} if spark_master else {}
    settings = platform_env(work, pg_url, files, engine, dagster_pg_url, **extra)
    env = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"} | settings
    sys.stdout.flush()
    started_at, started = time.time(), time.perf_counter()
    command = subprocess.Popen(clickflow(), cwd=ROOT, env=env)  # its output goes to this child's log
    with PeakMemory(command.pid) as peak:
        code = command.wait()
    wall = time.perf_counter() - started
    with environ(settings):
        recorded = recorded_runs(started_at)
    return {"wall_s": wall, "exit_code": code, "peak_bytes": peak.bytes, "root_peak_bytes": peak.root_bytes,
            **recorded}


def recorded_runs(started_at: float) -> dict:
    """Runs and step durations of the instance that ``PIPELINE_*`` name, relative to
    ``started_at`` (a ``time.time()``): where the command's wall time went."""
    import dagster as dg

    from pipeline.instance import prepare_instance
    from pipeline.settings import Settings

    prepare_instance(Settings.from_env())
    instance = dg.DagsterInstance.get()
    kinds = dg.DagsterEventType
    step_types = {kinds.STEP_START, kinds.STEP_SUCCESS, kinds.STEP_FAILURE}
    runs, steps, failed = [], {}, []
    try:
        for record in instance.get_run_records(ascending=True):
            run = record.dagster_run
            partition = run.tags.get("dagster/partition") or run.tags.get(RANGE_START_TAG, "-")
            if run.status != dg.DagsterRunStatus.SUCCESS:
                failed.append([run.job_name, partition])
            if record.start_time is None or record.end_time is None:
                continue  # never started or never ended: no time to split
            begun: dict[str, float] = {}
            step_total = 0.0
            for event in instance.get_records_for_run(run.run_id, of_type=step_types).records:
                entry = event.event_log_entry
                if entry.dagster_event.event_type == kinds.STEP_START:
                    begun[entry.step_key] = entry.timestamp
                elif entry.step_key in begun:
                    seconds = entry.timestamp - begun.pop(entry.step_key)
                    name = step_name(entry.step_key)
                    steps[name] = steps.get(name, 0.0) + seconds
                    step_total += seconds
            runs.append({
                "job": run.job_name,
                "partition": partition,
                "status": run.status.value,
                "start_s": record.start_time - started_at,
                "end_s": record.end_time - started_at,
                "steps_s": step_total,
            })
    finally:
        instance.dispose()
    return {
        "runs": runs,
        "steps": steps,
        "failed_runs": failed,
    }


def step_name(step_key: str) -> str:
    """``events__t1_minute`` -> ``t1``; a step the report does not group keeps its key."""
    tail = step_key.split("__", 1)[-1]
    return STEP_NAMES.get(tail, step_key)
