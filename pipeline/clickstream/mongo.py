"""The report in MongoDB: the resource, and idempotent writes of its documents.

One document per (grouping, key, date), enforced by a unique index. A run upserts the documents
of its days and deletes the ones of those (grouping, day) slices whose key is gone, in one bulk
request: re-running a day replaces its documents, never adds to them. A full rebuild writes a
side collection and renames it over the old one, so readers never see a half-written report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator, Sequence

from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd
from pydantic import Field

if TYPE_CHECKING:  # imported where used: a run of another group does not pay for it
    import pymongo

KEY_FIELDS = ("grouping", "key", "date")


class MongoResource(dg.ConfigurableResource):
    """MongoDB for the clickstream report. ``url`` (from ``MONGODB_URL``) wins over the ini's
    ``[mongodb] host``; credentials belong in that variable, never in code or the ini."""

    url: str = Field(default="", description="mongodb:// URL; empty: the ini's [mongodb] host")
    timeout_ms: int = Field(default=10_000, description="server selection timeout")

    def connect(self, default_host: str) -> pymongo.MongoClient:
        """A new client; tests override this to hand out a mongomock client."""
        import pymongo

        return pymongo.MongoClient(self.url or default_host, serverSelectionTimeoutMS=self.timeout_ms)

    @contextlib.contextmanager
    def collection(
        self, default_host: str, database: str, name: str
    ) -> Iterator[pymongo.collection.Collection]:
        client = self.connect(default_host)
        try:
            yield client[database][name]
        finally:
            client.close()


def _midnight(value) -> dt.datetime:
    # BSON has no date type: a day is stored as its UTC midnight.
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=None)


def to_documents(report: pd.DataFrame) -> list[dict]:
    return [
        {
            "grouping": str(row.grouping),
            "key": str(row.key),
            "date": _midnight(row.date),
            "daily_clicks": int(row.daily_clicks),
            "rolling_clicks": int(row.rolling_clicks),
            "start_date": _midnight(row.start_date),
        }
        for row in report.itertuples(index=False)
    ]


def ensure_index(collection) -> None:
    import pymongo

    collection.create_index(
        [(name, pymongo.ASCENDING) for name in KEY_FIELDS], unique=True, name="grouping_key_date"
    )


def replace_days(collection, report: pd.DataFrame, groupings: Sequence[str], days: Sequence[dt.date]) -> int:
    """Make the (grouping, day) slices of ``days`` hold exactly ``report``'s documents."""
    from pymongo import DeleteMany, ReplaceOne

    ensure_index(collection)
    documents = to_documents(report)
    keys: dict[tuple[str, dt.datetime], list[str]] = {(g, _midnight(d)): [] for g in groupings for d in days}
    for document in documents:
        keys.setdefault((document["grouping"], document["date"]), []).append(document["key"])
    requests: list = [
        DeleteMany({"grouping": grouping, "date": day, "key": {"$nin": present}})
        for (grouping, day), present in keys.items()
    ]
    requests += [
        ReplaceOne({name: document[name] for name in KEY_FIELDS}, document, upsert=True)
        for document in documents
    ]
    if requests:
        collection.bulk_write(requests, ordered=True)
    return len(documents)


def rebuild(collection, report: pd.DataFrame) -> int:
    """Replace the whole collection with ``report`` (``mongodb_data_append = false``)."""
    documents = to_documents(report)
    if not documents:
        collection.drop()
        ensure_index(collection)
        return 0
    side = collection.database[f"{collection.name}.rebuild-{uuid.uuid4().hex[:12]}"]
    try:
        ensure_index(side)
        side.insert_many(documents, ordered=False)
        side.rename(collection.name, dropTarget=True)
    except BaseException:
        side.drop()
        raise
    return len(documents)


def read_documents(collection, days: Sequence[dt.date] | None = None) -> pd.DataFrame:
    query = {} if days is None else {"date": {"$in": [_midnight(day) for day in days]}}
    documents = list(collection.find(query, {"_id": False}).sort([(name, 1) for name in KEY_FIELDS]))
    return pd.DataFrame(
        documents, columns=["grouping", "key", "date", "daily_clicks", "rolling_clicks", "start_date"]
    )
