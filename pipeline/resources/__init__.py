"""Resources chosen by environment: the same code runs on a folder or S3, embedded or remote PostgreSQL."""

from __future__ import annotations

import os

import dagster as dg

from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource
from pipeline.settings import Settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    # Values that may hold secrets are passed as EnvVar: the UI shows the variable, not its value.
    pg_url = dg.EnvVar("PIPELINE_PG_URL") if settings.pg_url else None
    endpoint = dg.EnvVar("AWS_ENDPOINT_URL") if os.environ.get("AWS_ENDPOINT_URL") else None
    resources = {
        "warehouse": WarehouseResource(url=pg_url, home=str(settings.home)),
        "lake": LakeResource(url=settings.lake_url, endpoint_url=endpoint),
    }
    if settings.engine == "spark":
        # Only then: a pandas deployment never imports pyspark nor looks for Java.
        from pipeline.resources.spark import spark_resource

        resources["spark"] = spark_resource(settings)
    return resources
