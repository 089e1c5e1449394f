"""Idempotent writes: PostgreSQL (real, embedded) and MongoDB (mongomock; a real server when
MONGODB_URL is set). Re-running a day replaces its rows, never adds to them."""

import datetime as dt
import os
import uuid

import pandas as pd
import pytest

from pipeline.clickstream import mongo as mongo_io
from pipeline.clickstream import tables

DAY1, DAY2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
GROUPINGS = ["cat", "cat+name"]


def report(*rows) -> pd.DataFrame:
    """(grouping, key, day, daily, rolling) tuples; start_date = day - 7 as the seed."""
    return pd.DataFrame(
        [
            (g, k, pd.Timestamp(d), daily, rolling, pd.Timestamp(d) - pd.Timedelta(days=7))
            for g, k, d, daily, rolling in rows
        ],
        columns=["grouping", "key", "date", "daily_clicks", "rolling_clicks", "start_date"],
    )


FIRST = report(
    ("cat", "A", DAY1, 2, 2),
    ("cat", "B", DAY1, 1, 1),
    ("cat", "A", DAY2, 1, 3),
    ("cat+name", '["A", "p"]', DAY1, 2, 2),
)
# DAY2 recomputed after a correction: A changed, B appeared; DAY1 untouched.
SECOND_DAY2 = report(("cat", "A", DAY2, 4, 6), ("cat", "B", DAY2, 0, 1))


def as_tuples(frame: pd.DataFrame) -> list[tuple]:
    return sorted(
        (
            r.grouping,
            r.key,
            pd.Timestamp(r.date).date(),
            int(r.daily_clicks),
            int(r.rolling_clicks),
            pd.Timestamp(r.start_date).date(),
        )
        for r in frame.itertuples()
    )


@pytest.mark.integration
def test_postgres_rerun_replaces_day_slices_in_one_transaction(warehouse):
    spec = tables.report_table("click_through_weekly")
    assert tables.replace_days(warehouse, spec, FIRST, GROUPINGS, [DAY1, DAY2]) == 4
    assert tables.replace_days(warehouse, spec, FIRST, GROUPINGS, [DAY1, DAY2]) == 4
    assert as_tuples(tables.read_report(warehouse, spec)) == as_tuples(FIRST)  # not doubled

    tables.replace_days(warehouse, spec, SECOND_DAY2, GROUPINGS, [DAY2])
    expected = as_tuples(FIRST[FIRST["date"] == pd.Timestamp(DAY1)]) + as_tuples(SECOND_DAY2)
    assert as_tuples(tables.read_report(warehouse, spec)) == sorted(expected)

    # A grouping that is no longer configured keeps its rows: the slice is (configured grouping, day).
    tables.replace_days(warehouse, spec, report(), ["cat"], [DAY1])
    assert as_tuples(tables.read_report(warehouse, spec)) == sorted(
        as_tuples(FIRST[FIRST["grouping"] == "cat+name"]) + as_tuples(SECOND_DAY2)
    )


@pytest.mark.integration
def test_postgres_failed_copy_leaves_the_previous_rows(warehouse):
    spec = tables.report_table("click_through_weekly")
    tables.replace_days(warehouse, spec, FIRST, GROUPINGS, [DAY1, DAY2])
    duplicate = pd.concat([SECOND_DAY2, SECOND_DAY2])  # violates the unique key during COPY
    with pytest.raises(Exception, match="duplicate key"):
        tables.replace_days(warehouse, spec, duplicate, GROUPINGS, [DAY2])
    assert as_tuples(tables.read_report(warehouse, spec)) == as_tuples(FIRST)


@pytest.mark.integration
def test_postgres_rebuild_replaces_the_whole_table(warehouse):
    spec = tables.report_table("weekly")
    tables.replace_days(warehouse, spec, FIRST, GROUPINGS, [DAY1, DAY2])
    assert tables.rebuild(warehouse, spec, SECOND_DAY2) == 2
    assert as_tuples(tables.read_report(warehouse, spec)) == as_tuples(SECOND_DAY2)


def check_mongo_idempotence(collection):
    assert mongo_io.replace_days(collection, FIRST, GROUPINGS, [DAY1, DAY2]) == 4
    assert mongo_io.replace_days(collection, FIRST, GROUPINGS, [DAY1, DAY2]) == 4
    assert as_tuples(mongo_io.read_documents(collection)) == as_tuples(FIRST)

    mongo_io.replace_days(collection, SECOND_DAY2, GROUPINGS, [DAY2])
    expected = as_tuples(FIRST[FIRST["date"] == pd.Timestamp(DAY1)]) + as_tuples(SECOND_DAY2)
    assert as_tuples(mongo_io.read_documents(collection)) == sorted(expected)
    assert as_tuples(mongo_io.read_documents(collection, [DAY2])) == as_tuples(SECOND_DAY2)

    index = collection.index_information()["grouping_key_date"]
    assert index["unique"] and [name for name, _ in index["key"]] == ["grouping", "key", "date"]

    assert mongo_io.rebuild(collection, FIRST) == 4
    assert as_tuples(mongo_io.read_documents(collection)) == as_tuples(FIRST)
    assert collection.database.list_collection_names() == [collection.name]  # no side collection left
    assert mongo_io.rebuild(collection, report()) == 0
    assert collection.count_documents({}) == 0


def test_mongodb_rerun_replaces_documents(mongo_client):
    check_mongo_idempotence(mongo_client["shop"]["clicks"])


def test_documents_are_plain_bson_types():
    (document,) = mongo_io.to_documents(report(("cat", "A", DAY2, 4, 6)))
    assert document == {
        "grouping": "cat",
        "key": "A",
        "date": dt.datetime(2024, 1, 2),
        "daily_clicks": 4,
        "rolling_clicks": 6,
        "start_date": dt.datetime(2023, 12, 26),
    }
    assert type(document["daily_clicks"]) is int


@pytest.mark.skipif(not os.environ.get("MONGODB_URL"), reason="set MONGODB_URL to run against a real MongoDB server")  # noqa: E501
def test_mongodb_rerun_replaces_documents_on_a_real_server():
    from pipeline.clickstream.mongo import MongoResource

    database = f"clickstream_test_{uuid.uuid4().hex[:8]}"
    resource = MongoResource(url=os.environ["MONGODB_URL"])
    with resource.collection("unused:27017", database, "clicks") as collection:
        try:
            check_mongo_idempotence(collection)
        finally:
            collection.database.client.drop_database(database)
