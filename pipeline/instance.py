"""The Dagster instance on the platform's PostgreSQL, for `clickflow` and for Dagster's own commands.

`clickflow` installs ``pipeline/dagster.yaml`` in ``$PIPELINE_HOME/dagster`` and points
``DAGSTER_HOME`` there. The checkout's ``dagster.yaml`` links to the same file, so ``dagster dev``,
``dg dev`` or ``dagster asset materialize`` started in the checkout without ``DAGSTER_HOME`` (Dagster
then reads ``./dagster.yaml``) store runs and events in the same database: both find it through
:class:`ClickflowStorage`, from the ``PIPELINE_*`` settings.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dagster_postgres import DagsterPostgresStorage

from pipeline.resources.warehouse import DAGSTER_DATABASE, check_reachable, dagster_storage_url, embedded_server_url
from pipeline.settings import Settings

TEMPLATE = Path(__file__).resolve().with_name("dagster.yaml")


def dagster_database_url(settings: Settings) -> str:
    """Where Dagster keeps runs and events: ``PIPELINE_DAGSTER_PG_URL`` (default ``PIPELINE_PG_URL``)
    with an external server, else the ``dagster`` database of the embedded server (started if needed)."""
    if settings.pg_url:
        url = os.environ.get("PIPELINE_DAGSTER_PG_URL") or settings.pg_url
    else:
        url = embedded_server_url(settings.pg_dir, DAGSTER_DATABASE)
    return dagster_storage_url(url)


class ClickflowStorage(DagsterPostgresStorage):
    """dagster-postgres storage whose URL comes from the settings, not from dagster.yaml.

    Built by Dagster from ``storage: custom`` in dagster.yaml, in every process that opens the
    instance (webserver, daemon, run workers); each inherits the ``PIPELINE_*`` environment.
    """

    @classmethod
    def config_type(cls):
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        settings = Settings.from_env()
        # Child processes (webserver, daemon, runs) must find the same state whatever their folder.
        os.environ.setdefault("PIPELINE_HOME", str(settings.home))
        return cls(postgres_url=dagster_database_url(settings), inst_data=inst_data)


def prepare_instance(settings: Settings) -> Path:
    """Start the embedded server if needed, install dagster.yaml in DAGSTER_HOME, set the env.

    An external server is reached once first, so a wrong one is one clear ``WarehouseError``
    (not Dagster's retries and traceback).
    """
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    if settings.pg_url:
        check_reachable(settings.pg_url, "PIPELINE_PG_URL")
        dagster_url = os.environ.get("PIPELINE_DAGSTER_PG_URL")
        if dagster_url and dagster_url != settings.pg_url:
            check_reachable(dagster_url, "PIPELINE_DAGSTER_PG_URL")
    else:
        embedded_server_url(settings.pg_dir, DAGSTER_DATABASE)  # started once here, not in each storage
    target = home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != TEMPLATE.read_bytes():
        shutil.copyfile(TEMPLATE, target)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("PIPELINE_HOME", str(settings.home))
    return home
