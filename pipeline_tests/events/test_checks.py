"""The event checks fail when the tables are wrong (the asset tests show them passing)."""

from __future__ import annotations

import pandas as pd
from psycopg import sql

from pipeline.events import checks
from pipeline.events.hours import HourReport
from pipeline.events.minutes import MinuteReport
from pipeline.events.tables import all_tables, t1_table, t2_table
from pipeline.settings import Settings

SETTINGS = Settings.from_env({"PIPELINE_PARTITIONS_START": "2019-10-01", "PIPELINE_EVENTS": "purchase",
                              "PIPELINE_DIMENSIONS": "brand"})
MINUTE = pd.Timestamp("2019-10-01 00:05", tz="UTC")


def _insert(warehouse, spec, time, brand, gmv, count):
    with warehouse.connect() as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s)").format(spec.table),
                     (time.to_pydatetime(), brand, gmv, count, gmv / count))


def _results(results):
    return {r.check_name: r.passed for r in results}


def test_t1_checks_fail_on_rows_that_do_not_reconcile_and_on_a_missing_unique_index(warehouse):
    warehouse.ensure(all_tables(SETTINGS.events, SETTINGS.dimensions))
    _insert(warehouse, t1_table("purchase", "brand"), MINUTE, "sony", 30.0, 2)
    report = MinuteReport(in_window=[MINUTE], expected={"purchase": (2, 30.0)})
    assert _results(checks.t1_checks(warehouse, SETTINGS, [report])) == {
        "t1_reconciles_with_raw": True, "t1_unique_keys": True, "t1_schema": True}

    short = MinuteReport(in_window=[MINUTE], expected={"purchase": (3, 30.0)})  # a row lost on the way
    assert not _results(checks.t1_checks(warehouse, SETTINGS, [short]))["t1_reconciles_with_raw"]

    with warehouse.connect() as conn:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier("events", "purchase_brand_minute_key")))
        conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN extra text").format(t2_table("purchase", "brand").table))
    results = {r.check_name: r for r in checks.t1_checks(warehouse, SETTINGS, [report])}
    assert not results["t1_unique_keys"].passed
    assert "events.purchase_brand_minute" in results["t1_unique_keys"].metadata["problems"].value
    assert not results["t1_schema"].passed
    assert results["t1_schema"].metadata["problems"].value == [
        "events.purchase_brand_hour: columns ['hour', 'brand', 'gmv', 'purchase_count', 'avg_price', 'extra'], "
        "expected ['hour', 'brand', 'gmv', 'purchase_count', 'avg_price']"]


def test_t2_checks_compare_with_the_minute_aggregates_and_with_t1(warehouse):
    warehouse.ensure(all_tables(SETTINGS.events, SETTINGS.dimensions))
    hour = MINUTE.floor("h")
    _insert(warehouse, t1_table("purchase", "brand"), MINUTE, "sony", 30.0, 2)
    _insert(warehouse, t2_table("purchase", "brand"), hour, "sony", 30.0, 2)
    good = HourReport(minute_totals={(hour, "purchase", "brand"): (2, 300_000)})
    assert _results(checks.t2_checks(warehouse, SETTINGS, [hour], [good])) == {
        "t2_matches_minutes": True, "t2_unique_keys": True}

    other = HourReport(minute_totals={(hour, "purchase", "brand"): (2, 310_000)})  # aggregates say 31.0
    assert not _results(checks.t2_checks(warehouse, SETTINGS, [hour], [other]))["t2_matches_minutes"]

    _insert(warehouse, t1_table("purchase", "brand"), MINUTE + pd.Timedelta(minutes=1), "lg", 5.0, 1)
    results = {r.check_name: r for r in checks.t2_checks(warehouse, SETTINGS, [hour], [good])}
    assert not results["t2_matches_minutes"].passed  # t1 now holds more than t2
    assert results["t2_matches_minutes"].metadata["mismatches"].value[0]["t1 rows"] == [3, 35.0]
