"""Fixtures of the clickstream tests: a mongomock client injected through the Mongo resource,
configurations, and the resources of a materialization. Fixtures only (no helper module to
import), so the folder works whether or not pipeline_tests is a package."""

from __future__ import annotations

from collections.abc import Callable

import mongomock
import pytest
from mongomock.collection import BulkOperationBuilder

from pipeline.clickstream.config import ClickstreamConfig, parse_config
from pipeline.clickstream.mongo import MongoResource
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource


@pytest.fixture
def mongo_client(monkeypatch) -> mongomock.MongoClient:
    """A mongomock client. mongomock 4.3 predates pymongo 4.11, whose ReplaceOne hands the bulk
    builder a ``sort`` argument: accept it when it is unset (the pipeline never sorts)."""
    original = BulkOperationBuilder.add_replace

    def add_replace(self, selector, doc, upsert, collation=None, hint=None, sort=None):
        assert sort is None
        return original(self, selector, doc, upsert, collation=collation, hint=hint)

    monkeypatch.setattr(BulkOperationBuilder, "add_replace", add_replace)
    return mongomock.MongoClient()


@pytest.fixture
def mongo_resource(mongo_client) -> MongoResource:
    """The real resource class with its connection replaced by the mongomock client. A subclass,
    because Dagster re-creates resources from their config (private attributes would be lost)."""

    class InjectedMongo(MongoResource):
        def connect(self, default_host: str):
            return mongo_client

    return InjectedMongo()


@pytest.fixture
def make_config(tmp_path) -> Callable[..., ClickstreamConfig]:
    """Build a configuration the way a user would: ini text, parsed by the real parser."""

    def make(
        *,
        columns: str = "product_category,product_name",
        period: int = 7,
        postgres: bool = True,
        mongo: bool = True,
        pg_append: bool = True,
        mongo_append: bool = True,
    ) -> ClickstreamConfig:
        sections = {
            "path": {"source_path": "clickstream/source/", "destination_path": str(tmp_path / "work")},
            "postgres_database": {"insert_into_postgre": postgres, "postgres_data_append": pg_append},
            "mongodb": {
                "insert_into_mongo": mongo,
                "mongodb_data_append": mongo_append,
                "database": "shop",
                "collection": "clicks",
            },
            "aggregation": {"period": period},
            "columns": {"column_names": columns},
        }
        text = "".join(
            f"[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())
            for name, values in sections.items()
        )
        return parse_config(text, {}, origin="test.ini")

    return make


@pytest.fixture
def resources(lake, pg_url, mongo_resource) -> dict:
    return {
        "lake": LakeResource(url=str(lake.root)),
        "warehouse": WarehouseResource(url=pg_url),
        "mongo": mongo_resource,
    }
