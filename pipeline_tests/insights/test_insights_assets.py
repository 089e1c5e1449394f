"""The insights assets against a real PostgreSQL and a folder lake."""

import datetime as dt
import hashlib
import io

import dagster as dg
import pandas as pd
import pytest
from psycopg import sql

from pipeline.insights.definitions import build_defs
from pipeline.insights.generate import dump_bytes, generate, sample_events
from pipeline.insights.partitions import Month
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource
from pipeline.settings import Settings
from pipeline_tests.insights.samples import SMALL_CSV

pytestmark = pytest.mark.integration

FEB = Month(2024, 2)
MAR = Month(2024, 3)
# The February dump of test_insights_transform, counted by hand there: 8 good rows, 3 bad.
FEB_CSV = SMALL_CSV
MAR_CSV = """timestamp,email,country,tags
2024-03-05 10:00:00,ann@gmail.com,NA,vip
2024-03-05 11:00:00,ann@gmail.com,NA,vip|mobile
2024-03-06 12:00:00,kim@initech.io,Germany,mobile
2024-03-06 13:00:00,kim@initech.io,Germany,
2024-03-06 14:00:00,kim@initech.io,Germany,mobile
"""
TOP_N = 3


@pytest.fixture
def insights(tmp_path):
    defs = build_defs(Settings.from_env({"PIPELINE_HOME": str(tmp_path / "home")}),
                      env={"PIPELINE_INSIGHTS_TOP_N": str(TOP_N)})
    ingest, month_top, all_time = defs.assets
    return {"ingest": ingest, "month_top": month_top, "all_time": all_time, "checks": list(defs.asset_checks)}


@pytest.fixture
def resources(warehouse, lake):
    return {"warehouse": WarehouseResource(url=warehouse.url), "lake": LakeResource(url=str(lake.root))}


def load_month(insights, resources, month: Month, raise_on_error=True) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [insights["ingest"], insights["month_top"], *insights["checks"]],
        selection=dg.AssetSelection.assets(insights["ingest"], insights["month_top"]),
        partition_key=month.partition_key, resources=resources, raise_on_error=raise_on_error,
    )


def refresh_all_time(insights, resources) -> dg.ExecuteInProcessResult:
    return dg.materialize([insights["all_time"]], resources=resources)


def rows(warehouse, query: str, params=()) -> list[list]:
    return warehouse.read_frame(sql.SQL(query), params).values.tolist()


def materialization(result, *key) -> dict:
    [event] = [m for m in result.get_asset_materialization_events() if m.asset_key == dg.AssetKey(list(key))]
    return event.materialization.metadata


def test_month_tables_match_hand_counts(insights, resources, warehouse, lake):
    lake.write_text(FEB.dump_key("csv"), FEB_CSV)
    result = load_month(insights, resources, FEB)

    assert rows(warehouse, "SELECT country, _count FROM insights.country ORDER BY _count DESC, country") == [
        ["France", 3], ["Germany", 2], ["FR", 1], ["NA", 1]]
    top_countries = "SELECT country, _count, rank, _year, _month FROM insights.top_countries ORDER BY rank"
    assert rows(warehouse, top_countries) == [
        ["France", 3, 1, 2024, 2], ["Germany", 2, 2, 2024, 2], ["FR", 1, 3, 2024, 2]]
    assert rows(warehouse, "SELECT email, _count, rank FROM insights.top_users ORDER BY rank") == [
        ["bob@globex.com", 3, 1], ["ann@gmail.com", 1, 2], ["carol@", 1, 3]]
    assert rows(warehouse, "SELECT _date, _count, rank FROM insights.busiest_day ORDER BY rank") == [
        [dt.date(2024, 2, 2), 4, 1], [dt.date(2024, 2, 1), 2, 2], [dt.date(2024, 2, 3), 2, 3]]
    assert rows(warehouse, "SELECT company, _count, rank FROM insights.top_companies ORDER BY rank") == [
        ["globex", 3, 1], ["Unknown company", 2, 2], ["acme", 2, 3]]
    assert rows(warehouse, "SELECT tag, _count, rank FROM insights.top_tags ORDER BY rank") == [
        ["promo", 4, 1], ["mobile", 2, 2], ["vip", 2, 3]]

    # The raw rows as read, typed, with the other columns in extra and the month's stamp.
    assert rows(warehouse, "SELECT count(*), min(timestamp), count(email), count(country), count(tags) "
                           "FROM insights.events WHERE _year = 2024 AND _month = 2") == [
        [8, dt.datetime(2024, 2, 1, 9, tzinfo=dt.timezone.utc), 7, 7, 6]]
    assert rows(warehouse, "SELECT extra ->> 'plan', count(*) FROM insights.events GROUP BY 1 ORDER BY 1") \
        == [["free", 6], ["pro", 2]]
    assert rows(warehouse, "SELECT count(DISTINCT ingested_at) FROM insights.events") == [[1]]
    checksum = hashlib.sha256(FEB_CSV.encode()).hexdigest()
    assert rows(warehouse, "SELECT _year, _month, rows, rejected_rows, source_key, checksum "
                           "FROM insights.record_ingestion") == [
        [2024, 2, 8, 3, FEB.dump_key("csv"), checksum]]

    meta = materialization(result, "insights", "events")
    assert meta["dagster/row_count"].value == 8 and meta["rejected_rows"].value == 3
    assert materialization(result, "insights", "top_companies")["first"].value == "globex"
    assert {c.check_name: c.passed for c in result.get_asset_check_evaluations()} == {
        "month_reconciles": True, "few_rejected_rows": False}  # 3 of 11 rows is more than 5%: a warning


def test_bad_rows_are_quarantined_with_their_reason(insights, resources, lake):
    lake.write_text(FEB.dump_key("csv"), FEB_CSV)
    load_month(insights, resources, FEB)

    prefix = FEB.quarantine_prefix(hashlib.sha256(FEB_CSV.encode()).hexdigest())
    assert sorted(o.key for o in lake.list("quarantine/")) == [
        prefix + "reason.txt", prefix + "rejected_rows.csv"]
    rejected = pd.read_csv(io.StringIO(lake.read_text(prefix + "rejected_rows.csv")),
                           dtype=str, keep_default_na=False)
    assert rejected[["timestamp", "_row", "_reason"]].values.tolist() == [
        ["not a date", "9", "unparseable timestamp"],
        ["2024-03-01 00:00:00", "10", "timestamp outside 2024-02"],
        ["", "11", "missing timestamp"],
    ]
    reason = lake.read_text(prefix + "reason.txt")
    assert "1 row(s): unparseable timestamp" in reason and FEB.dump_key("csv") in reason


def test_file_without_needed_columns_is_quarantined_whole(insights, resources, warehouse, lake):
    lake.write_text(FEB.dump_key("csv"), FEB_CSV)
    load_month(insights, resources, FEB)
    broken = "timestamp,mail,tags\n2024-02-01 09:00:00,a@globex.com,x\n"
    lake.write_text(FEB.dump_key("csv"), broken)

    result = load_month(insights, resources, FEB, raise_on_error=False)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "missing required column(s) ['email', 'country']" in failure.event_specific_data.error.message
    prefix = FEB.quarantine_prefix(hashlib.sha256(broken.encode()).hexdigest())
    assert lake.read_text(prefix + "events.csv") == broken
    assert "['email', 'country']" in lake.read_text(prefix + "reason.txt")
    # The good February load is still there, untouched.
    assert rows(warehouse, "SELECT count(*) FROM insights.events") == [[8]]
    assert rows(warehouse, "SELECT count(*) FROM insights.record_ingestion") == [[1]]


def test_reingesting_a_month_replaces_it(insights, resources, warehouse, lake):
    lake.write_text(FEB.dump_key("csv"), FEB_CSV)
    load_month(insights, resources, FEB)
    load_month(insights, resources, FEB)

    tables = ["events", "country", "userbase", "dateevent", "companies", "tags",
              "top_countries", "top_users", "busiest_day", "top_companies", "top_tags"]
    counts = {t: warehouse.scalar(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("insights", t)))
              for t in tables}
    assert counts == {"events": 8, "country": 4, "userbase": 5, "dateevent": 3, "companies": 4, "tags": 3,
                      "top_countries": 3, "top_users": 3, "busiest_day": 3, "top_companies": 3, "top_tags": 3}
    assert rows(warehouse, "SELECT sum(_count) FROM insights.dateevent") == [[8]]
    assert rows(warehouse, "SELECT rows FROM insights.record_ingestion ORDER BY ingested_at") == [[8], [8]]

    # A corrected dump replaces the month: only its rows remain.
    lake.write_text(FEB.dump_key("csv"), "timestamp,email,country\n2024-02-10 10:00,kim@initech.io,Japan\n")
    load_month(insights, resources, FEB)
    assert rows(warehouse, "SELECT country, _count FROM insights.top_countries") == [["Japan", 1]]
    assert rows(warehouse, "SELECT count(*), count(tags), count(extra) FROM insights.events") == [[1, 0, 0]]
    assert rows(warehouse, "SELECT rows FROM insights.record_ingestion ORDER BY ingested_at") == [
        [8], [8], [1]]


def test_missing_or_ambiguous_dump_fails_with_a_clear_error(insights, resources, lake):
    def failure_message() -> str:
        result = load_month(insights, resources, FEB, raise_on_error=False)
        return next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE") \
            .event_specific_data.error.message

    assert "no dump for 2024-02: expected insights/events/2024/02/events.csv or " in failure_message()
    lake.write_text(FEB.dump_key("csv"), FEB_CSV)
    same_rows = pd.read_csv(io.StringIO(FEB_CSV), dtype=str)
    lake.write_bytes(FEB.dump_key("parquet"), dump_bytes(same_rows, "parquet"))
    assert "two dumps for 2024-02" in failure_message()


# Direct SQL over the months: SUM of the monthly counts, best first, ties by value in code-point
# order. Static text, no values formatted in.
ALL_TIME_SQL = {
    "all_time_top_countries": "SELECT country, SUM(_count) FROM insights.country GROUP BY country "
                              'ORDER BY 2 DESC, country COLLATE "C" LIMIT 3',
    "all_time_top_users": "SELECT email, SUM(_count) FROM insights.userbase GROUP BY email "
                          'ORDER BY 2 DESC, email COLLATE "C" LIMIT 3',
    "all_time_busiest_day": "SELECT _date, SUM(_count) FROM insights.dateevent GROUP BY _date "
                            "ORDER BY 2 DESC, _date LIMIT 3",
    "all_time_top_companies": "SELECT company, SUM(_count) FROM insights.companies GROUP BY company "
                              'ORDER BY 2 DESC, company COLLATE "C" LIMIT 3',
    "all_time_top_tags": "SELECT tag, SUM(_count) FROM insights.tags GROUP BY tag "
                         'ORDER BY 2 DESC, tag COLLATE "C" LIMIT 3',
}


def test_all_time_equals_sql_over_the_months(insights, resources, warehouse, lake):
    lake.write_text(FEB.dump_key("csv"), FEB_CSV)
    lake.write_text(MAR.dump_key("csv"), MAR_CSV)
    load_month(insights, resources, FEB)
    load_month(insights, resources, MAR)
    result = refresh_all_time(insights, resources)

    for table, query in ALL_TIME_SQL.items():
        stored = warehouse.read_frame(sql.SQL("SELECT * FROM {} ORDER BY rank").format(
            sql.Identifier("insights", table))).values.tolist()
        direct = rows(warehouse, query)
        expected = [[value, count, rank] for rank, (value, count) in enumerate(direct, start=1)]
        assert stored == expected, table
    # The same answers, worked out by hand from the two files (ties go to the smaller value).
    assert rows(warehouse, "SELECT country, _count FROM insights.all_time_top_countries ORDER BY rank") == [
        ["Germany", 5], ["France", 3], ["NA", 3]]
    assert rows(warehouse, "SELECT email, _count FROM insights.all_time_top_users ORDER BY rank") == [
        ["ann@gmail.com", 3], ["bob@globex.com", 3], ["kim@initech.io", 3]]
    assert rows(warehouse, "SELECT _date, _count FROM insights.all_time_busiest_day ORDER BY rank") == [
        [dt.date(2024, 2, 2), 4], [dt.date(2024, 3, 6), 3], [dt.date(2024, 2, 1), 2]]
    assert rows(warehouse, "SELECT company, _count FROM insights.all_time_top_companies ORDER BY rank") == [
        ["(personal email)", 3], ["globex", 3], ["initech", 3]]
    assert rows(warehouse, "SELECT tag, _count FROM insights.all_time_top_tags ORDER BY rank") == [
        ["mobile", 5], ["promo", 4], ["vip", 4]]
    # Raw rows give the same country answer as the monthly counts.
    assert rows(warehouse, "SELECT btrim(country), count(*) FROM insights.events WHERE country IS NOT NULL "
                           'GROUP BY 1 ORDER BY 2 DESC, btrim(country) COLLATE "C" LIMIT 3') == [
        ["Germany", 5], ["France", 3], ["NA", 3]]
    assert materialization(result, "insights", "all_time_top_countries")["months"].value == 2

    # A month that changes changes the all-time answer.
    lake.write_text(MAR.dump_key("csv"), "timestamp,email,country\n2024-03-10 10:00,kim@initech.io,Japan\n")
    load_month(insights, resources, MAR)
    refresh_all_time(insights, resources)
    assert rows(warehouse, "SELECT country, _count FROM insights.all_time_top_countries ORDER BY rank") == [
        ["France", 3], ["Germany", 2], ["FR", 1]]


def test_csv_and_parquet_give_the_same_tables(insights, resources, warehouse, lake):
    frame = sample_events(FEB, rows=600, seed=3)
    tables = ["events", "country", "userbase", "dateevent", "companies", "tags",
              "top_countries", "top_users", "busiest_day", "top_companies", "top_tags"]

    def snapshot():
        out = {}
        for table in tables:
            query = sql.SQL("SELECT * FROM {}").format(sql.Identifier("insights", table))
            frame = warehouse.read_frame(query)
            frame = frame.drop(columns=["ingested_at"], errors="ignore").astype(str)
            out[table] = sorted(frame.values.tolist())
        return out

    lake.write_bytes(FEB.dump_key("csv"), dump_bytes(frame, "csv"))
    load_month(insights, resources, FEB)
    from_csv = snapshot()
    lake.delete(FEB.dump_key("csv"))
    lake.write_bytes(FEB.dump_key("parquet"), dump_bytes(frame, "parquet"))
    load_month(insights, resources, FEB)
    from_parquet = snapshot()

    assert len(from_csv["events"]) > 550
    assert from_parquet == from_csv


def test_s3_lake_sensor_and_load(insights, warehouse, s3_lake, s3_endpoint, tmp_path):
    """The same code on S3 (moto over HTTP): the sensor keys runs on the S3 ETag, the load works."""
    [key] = generate(s3_lake, month="2024-02", rows=800, seed=5, fmt="parquet")
    s3 = LakeResource(url=s3_lake.url, endpoint_url=s3_endpoint)
    defs = build_defs(Settings.from_env({"PIPELINE_HOME": str(tmp_path / "home")}), env={})
    sensor = next(s for s in defs.sensors if s.name == "insights_dumps")

    tick = sensor(dg.build_sensor_context(cursor=None, resources={"lake": s3}))

    etag = hashlib.md5(s3_lake.read_bytes(key)).hexdigest()  # a single PUT's ETag is its MD5
    assert [(r.partition_key, r.run_key) for r in tick.run_requests] == [("2024-02-01", f"{key}@{etag}")]
    s3_lake.write_bytes(key, s3_lake.read_bytes(key))  # the same bytes uploaded again: nothing to load
    assert sensor(dg.build_sensor_context(cursor=tick.cursor, resources={"lake": s3})).run_requests == []
    load_month(insights, {"warehouse": WarehouseResource(url=warehouse.url), "lake": s3}, FEB)
    loaded, rejected = rows(warehouse, "SELECT rows, rejected_rows FROM insights.record_ingestion")[0]
    assert loaded + rejected == 800 and 0 < rejected < 16
