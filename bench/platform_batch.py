"""The product itself: ``clickflow process`` (landing sensor + every run it requests, in process)
over a lake whose ``landing/`` holds every file of the data set."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import time
from pathlib import Path
from typing import Iterator

from pipeline.events.schema import parse_file_name


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
