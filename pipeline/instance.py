"""The Dagster instance on the platform's PostgreSQL: prepared before any Dagster process starts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipeline.resources.warehouse import DAGSTER_DATABASE, check_reachable, dagster_storage_url, embedded_server_url
from pipeline.settings import Settings

TEMPLATE = Path(__file__).resolve().parents[1] / "dagster.yaml"


def prepare_instance(settings: Settings) -> Path:
    """Start the embedded server if needed, install dagster.yaml in DAGSTER_HOME, set the env.

    Run/event/schedule storage goes to a ``dagster`` database on the embedded server, or to
    ``PIPELINE_DAGSTER_PG_URL`` (default: ``PIPELINE_PG_URL``) when an external server is used;
    an external server is reached once first, so a wrong one is one clear ``WarehouseError``
    (not Dagster's retries and traceback).
    """
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    if settings.pg_url:
        url = os.environ.get("PIPELINE_DAGSTER_PG_URL") or settings.pg_url
        check_reachable(settings.pg_url, "PIPELINE_PG_URL")
        if url != settings.pg_url:
            check_reachable(url, "PIPELINE_DAGSTER_PG_URL")
    else:
        url = embedded_server_url(settings.pg_dir, DAGSTER_DATABASE)
    os.environ["CLICKFLOW_DAGSTER_PG_URL"] = dagster_storage_url(url)
    if not TEMPLATE.is_file():
        raise FileNotFoundError(f"{TEMPLATE} is missing: run clickflow from a checkout of the project")
    target = home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != TEMPLATE.read_bytes():
        shutil.copyfile(TEMPLATE, target)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("PIPELINE_HOME", str(settings.home))
    return home
