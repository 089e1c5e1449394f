"""The b2b definitions: they load, start where PIPELINE_B2B_START says, and the schedule runs
the day that just ended at 01:00 UTC."""

import datetime as dt

import dagster as dg
import pytest

from pipeline.b2b.definitions import build_defs
from pipeline.b2b.partitions import start_date
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource
from pipeline.settings import Settings, SettingsError


@pytest.fixture(scope="module")
def repository():
    defs = build_defs(Settings.from_env({}), env={"PIPELINE_B2B_START": "2024-03-01"})
    resources = {
        "warehouse": WarehouseResource(url="postgresql://unused"),
        "lake": LakeResource(url="/unused"),
    }
    defs = dg.Definitions.merge(defs, dg.Definitions(resources=resources))
    dg.Definitions.validate_loadable(defs)
    return defs.get_repository_def()


def test_schedule_runs_the_previous_day_at_one_utc(repository):
    schedule = repository.get_schedule_def("b2b_daily_schedule")
    assert schedule.cron_schedule == "0 1 * * *"
    tick = dt.datetime(2024, 3, 5, 1, 0, tzinfo=dt.UTC)
    context = dg.build_schedule_context(scheduled_execution_time=tick, repository_def=repository)
    requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2024-03-04"]


def test_daily_job_covers_every_partitioned_asset_but_not_the_init_load(repository):
    job = repository.get_job("b2b_daily")
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert "b2b/init" not in keys
    assert {
        "b2b/raw_files",
        "b2b/orders",
        "b2b/companies",
        "b2b/weblog_hits",
        "b2b/final_tables",
        "b2b/monthly_sales",
        "b2b/product_conversion",
    } <= keys
    assert job.partitions_def.get_first_partition_key() == "2024-03-01"


def test_orders_wait_for_the_previous_day(repository):
    graph = repository.asset_graph
    orders = dg.AssetKey(["b2b", "orders"])
    assert orders in graph.get(orders).parent_keys


def test_start_date_default_and_validation():
    assert start_date({}) == dt.date(2024, 1, 1)
    assert start_date({"PIPELINE_B2B_START": " 2023-06-01 "}) == dt.date(2023, 6, 1)
    with pytest.raises(SettingsError, match="PIPELINE_B2B_START='2024-13-01' is not valid"):
        start_date({"PIPELINE_B2B_START": "2024-13-01"})
    with pytest.raises(SettingsError, match="starts on 2018-01-01"):
        start_date({"PIPELINE_B2B_START": "2017-05-01"})
