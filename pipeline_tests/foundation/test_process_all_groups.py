"""`clickflow generate <group> && clickflow process` loads each group, through the real entry point:
its sensors request the runs, its automation conditions follow, runs carry the daemon's tags, the
run-status sensors announce the runs, and a second `clickflow process` finds nothing to do."""

from __future__ import annotations

import datetime as dt
import io

import dagster as dg
import pandas as pd
import pytest
from psycopg import sql

from pipeline.cli import main
from pipeline.clickstream import storage
from pipeline.clickstream.config import load_config
from pipeline.resources.lake import LocalLake
from pipeline.resources.warehouse import Warehouse

MAKE_ENV = {"PIPELINE_PARTITIONS_START": "2019-10-01", "PIPELINE_PARTITIONS_END": "2019-10-08"}  # the Makefile's


@pytest.fixture
def env(tmp_path, pg_url, new_database, monkeypatch):
    """The Makefile's settings on a fresh lake, warehouse and Dagster database; DAGSTER_HOME is
    restored after the test (the command sets it)."""
    values = {**MAKE_ENV, "PIPELINE_HOME": str(tmp_path / "home"), "PIPELINE_PG_URL": pg_url,
              "PIPELINE_DAGSTER_PG_URL": new_database(), "DAGSTER_HOME": str(tmp_path / "home" / "dagster")}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return LocalLake(tmp_path / "home" / "lake"), Warehouse(pg_url)


def runs_of(instance: dg.DagsterInstance, sensor: str) -> list[dg.DagsterRun]:
    return list(reversed(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": sensor}))))


def frame(warehouse: Warehouse, query: str) -> pd.DataFrame:
    return warehouse.read_frame(sql.SQL(query))


@pytest.mark.integration
@pytest.mark.slow
def test_generate_then_process_loads_each_group(env, webhook, capsys):
    lake, warehouse = env

    # insights: the dump loaded by its sensor, then the all-time tables by the automation condition
    assert main(["generate", "insights"]) == 0 and main(["process"]) == 0
    instance = dg.DagsterInstance.get()
    (dump,) = lake.list("insights/events/")
    (load,) = runs_of(instance, "insights_dumps")
    assert (load.job_name, load.status) == ("insights_month", dg.DagsterRunStatus.SUCCESS)
    assert load.tags["dagster/run_key"] == f"{dump.key}@{dump.etag}"
    month = dump.key.split("/")[2] + "-" + dump.key.split("/")[3] + "-01"
    assert load.tags["dagster/partition"] == month
    (refresh,) = runs_of(instance, "insights_automation")
    assert refresh.status == dg.DagsterRunStatus.SUCCESS and refresh.tags["dagster/from_automation_condition"] == "true"
    # one month loaded: the all-time top is that month's top
    month_top = frame(warehouse, "SELECT country, _count, rank FROM insights.top_countries ORDER BY rank, country")
    all_time = frame(warehouse, "SELECT country, _count, rank FROM insights.all_time_top_countries "
                                "ORDER BY rank, country")
    assert len(all_time) > 0
    pd.testing.assert_frame_equal(all_time, month_top)

    # clickstream: the marker's days plus the trailing period, within the Makefile's partitions
    assert main(["generate", "clickstream"]) == 0 and main(["process"]) == 0
    (marker,) = [obj for obj in lake.list(storage.METADATA_PREFIX) if obj.key != storage.STATS_KEY]
    days = sorted(pd.read_csv(io.StringIO(lake.read_text(marker.key)))["date"])
    last = min(dt.date.fromisoformat(days[-1]) + dt.timedelta(days=load_config().period - 1), dt.date(2019, 10, 7))
    (report,) = runs_of(instance, "clickstream_metadata_sensor")
    assert report.status == dg.DagsterRunStatus.SUCCESS
    assert (report.tags["dagster/asset_partition_range_start"], report.tags["dagster/asset_partition_range_end"]) == (
        days[0], last.isoformat())
    assert report.tags["dagster/run_key"] == f"{marker.key}@{marker.etag}"
    # the run-status sensor announced the run batch mode executed, once
    assert [(p["status"], p["run_id"]) for _, p in webhook.received] == [("SUCCESS", report.run_id)]

    # b2b: the init files loaded, then the day's files (no generation step: the files are the input)
    assert main(["generate", "b2b"]) == 0 and main(["process"]) == 0
    (init,) = runs_of(instance, "b2b_init_sensor")
    (day,) = runs_of(instance, "b2b_day_sensor")
    assert (init.job_name, init.status) == ("b2b_init", dg.DagsterRunStatus.SUCCESS)
    assert (day.job_name, day.tags["dagster/partition"], day.status) == (
        "b2b_load", "2024-01-01", dg.DagsterRunStatus.SUCCESS)
    quotes = lake.read_text("b2b/raw/2024-01-01/companycsv.csv").splitlines()
    sales = [line for line in lake.read_text("b2b/raw/2024-01-01/leadcsv.csv").splitlines()
             if line.split(",")[4] == "true"]
    orders = frame(warehouse, "SELECT count(*) AS n FROM b2b.orders WHERE batch_date = '2024-01-01'")
    assert orders["n"][0] == len(quotes) + len(sales) > 0

    # basket: the reference, then every streamed day
    assert main(["generate", "basket"]) == 0 and main(["process"]) == 0
    (reference,) = runs_of(instance, "basket_reference_sensor")
    streamed = runs_of(instance, "basket_stream_sensor")
    assert reference.status == dg.DagsterRunStatus.SUCCESS
    stream_days = sorted({obj.key.split("/")[3] for obj in lake.list("basket/stream/")})
    assert [r.tags["dagster/partition"] for r in streamed] == stream_days == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in streamed)

    # everything is done: a second invocation runs nothing and says so
    total = len(instance.get_runs())
    capsys.readouterr()
    assert main(["process"]) == 0
    assert len(instance.get_runs()) == total
    assert "0 run(s), 0 failed" in capsys.readouterr().out
    assert len(webhook.received) == 1
    instance.dispose()
