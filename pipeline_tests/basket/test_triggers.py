"""Sensors (run requests, run keys, cursor), the 23:35 UTC schedule, and the wiring of build_defs."""

import datetime as dt
import json

import dagster as dg
import pytest

from pipeline.basket import files
from pipeline.basket.config import BasketConfig
from pipeline.basket.definitions import build_defs
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource
from pipeline.settings import Settings, SettingsError


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    """As the code location wires it: the group's definitions plus the shared resources."""
    resources = {
        "lake": LakeResource(url=str(tmp_path_factory.mktemp("unused-lake"))),
        "warehouse": WarehouseResource(url="postgresql://unused@localhost/unused"),
    }
    return dg.Definitions.merge(build_defs(Settings.from_env({})), dg.Definitions(resources=resources))


@pytest.fixture(scope="module")
def instance():
    """One instance for the module (they take seconds to make), on which basket/reference was materialized."""
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(["basket", "reference"]))
        yield instance


def tick(sensor, instance, lake, cursor=None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"lake": LakeResource(url=str(lake.root))}
    )
    return sensor(context)


def land(lake, table, day, name, text="order_id\n1\n"):
    key = f"{files.stream_prefix(table, day)}{name}"
    lake.write_text(key, text)
    return key


def test_stream_sensor_waits_for_the_reference(defs, lake):
    land(lake, "orders", "2024-01-02", "a.csv")
    with dg.instance_for_test() as fresh:
        result = tick(defs.resolve_sensor_def("basket_stream_sensor"), fresh, lake)
    assert isinstance(result, dg.SkipReason) and "basket/reference" in result.skip_message


def test_stream_sensor_requests_one_run_per_changed_day(defs, instance, lake):
    sensor = defs.resolve_sensor_def("basket_stream_sensor")
    land(lake, "orders", "2024-01-02", "a.csv")
    land(lake, "order_products", "2024-01-02", "a.jsonl")
    land(lake, "orders", "2024-01-03", "b.csv.gz")
    objects = {obj.key: obj for obj in lake.list("basket/stream/")}

    first = tick(sensor, instance, lake)
    assert [(r.partition_key, r.tags["basket/day"]) for r in first.run_requests] == [
        ("2024-01-02", "2024-01-02"),
        ("2024-01-03", "2024-01-03"),
    ]
    day_2 = [o for k, o in objects.items() if "/2024-01-02/" in k]
    assert first.run_requests[0].run_key == f"2024-01-02:{files.fingerprint(day_2)}"
    cursor = json.loads(first.cursor)
    assert set(cursor) == {"2024-01-02", "2024-01-03"}

    again = tick(sensor, instance, lake, cursor=first.cursor)
    assert again.run_requests == [] and again.cursor == first.cursor

    land(lake, "order_products", "2024-01-03", "late.jsonl")
    third = tick(sensor, instance, lake, cursor=first.cursor)
    assert [r.partition_key for r in third.run_requests] == ["2024-01-03"]
    assert third.run_requests[0].run_key != first.run_requests[1].run_key
    assert json.loads(third.cursor)["2024-01-02"] == cursor["2024-01-02"]


def test_rewritten_file_gets_a_new_run_key(defs, instance, lake):
    sensor = defs.resolve_sensor_def("basket_stream_sensor")
    land(lake, "orders", "2024-01-02", "a.csv")
    first = tick(sensor, instance, lake)
    land(lake, "orders", "2024-01-02", "a.csv", text="order_id\n1\n2\n")  # same key, new content
    second = tick(sensor, instance, lake, cursor=first.cursor)
    assert len(second.run_requests) == 1
    assert second.run_requests[0].run_key != first.run_requests[0].run_key


def test_stream_sensor_quarantines_keys_it_cannot_place_and_waits_for_future_days(defs, instance, lake):
    sensor = defs.resolve_sensor_def("basket_stream_sensor")
    land(lake, "orders", "2024-01-02", "a.csv")
    lake.write_text("basket/stream/orders/yesterday/a.csv", "x")
    lake.write_text("basket/stream/customers/2024-01-02/a.csv", "x")
    lake.write_text("basket/stream/orders/2024-01-02/a.xlsx", "x")
    land(lake, "orders", "2999-01-01", "future.csv")
    land(lake, "orders", "2023-12-31", "before-start.csv")

    result = tick(sensor, instance, lake)

    assert [r.partition_key for r in result.run_requests] == ["2024-01-02"]
    assert sorted(o.key for o in lake.list("quarantine/") if not o.key.endswith(".reason.txt")) == [
        "quarantine/basket/stream/customers/2024-01-02/a.csv",
        "quarantine/basket/stream/orders/2024-01-02/a.xlsx",
        "quarantine/basket/stream/orders/yesterday/a.csv",
    ]
    assert "unknown table 'customers'" in lake.read_text(
        "quarantine/basket/stream/customers/2024-01-02/a.csv.reason.txt"
    )
    assert lake.exists("basket/stream/orders/2999-01-01/future.csv")  # left for its day
    assert lake.exists("basket/stream/orders/2023-12-31/before-start.csv")  # left, with a warning


def test_reference_sensor_waits_for_all_three_files_then_runs_once_per_version(defs, instance, lake):
    sensor = defs.resolve_sensor_def("basket_reference_sensor")
    lake.write_text(files.reference_key("products"), "p")
    waiting = tick(sensor, instance, lake)
    assert isinstance(waiting, dg.SkipReason) and "aisles.csv" in waiting.skip_message

    lake.write_text(files.reference_key("aisles"), "a")
    lake.write_text(files.reference_key("departments"), "d")
    first = tick(sensor, instance, lake)
    digest = files.fingerprint(lake.list("basket/reference/"))
    assert [r.run_key for r in first.run_requests] == [f"reference:{digest}"] and first.cursor == digest
    assert isinstance(tick(sensor, instance, lake, cursor=first.cursor), dg.SkipReason)

    lake.write_text(files.reference_key("products"), "p2")
    assert len(tick(sensor, instance, lake, cursor=first.cursor).run_requests) == 1


def test_daily_schedule_runs_the_chain_at_2335_utc_for_that_day(defs, instance):
    schedule = defs.resolve_schedule_def("basket_daily_schedule")
    assert schedule.cron_schedule == "35 23 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.job_name == "basket_daily_job"
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=dt.datetime(2024, 3, 5, 23, 35, tzinfo=dt.UTC),
        repository_def=defs.get_repository_def(),
    )
    [request] = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == "2024-03-05"
    assert request.run_key == "daily:2024-03-05"


def test_daily_job_holds_the_whole_chain(defs):
    job = defs.resolve_job_def("basket_daily_job")
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {
        "basket/reference",
        "basket/orders",
        "basket/order_products_prior",
        "basket/user_features_1",
        "basket/user_features_2",
        "basket/up_features",
        "basket/prd_features",
        "basket/features_csv",
    }
    partitions = defs.resolve_assets_def(dg.AssetKey(["basket", "orders"])).partitions_def
    assert partitions.start.date() == dt.date(2024, 1, 1)


def test_config_from_env():
    config = BasketConfig.from_env(
        {"PIPELINE_BASKET_START": "2023-06-01", "PIPELINE_BASKET_DAY_RATIO": "0.8,1.25"}
    )
    assert config == BasketConfig(start="2023-06-01", min_rows=1, day_ratio=(0.8, 1.25))
    assert BasketConfig.from_env({}) == BasketConfig(start="2024-01-01", min_rows=1, day_ratio=(0.5, 2.0))


@pytest.mark.parametrize(
    "env",
    [
        {"PIPELINE_BASKET_START": "01/02/2024"},
        {"PIPELINE_BASKET_DAY_RATIO": "2,0.5"},
        {"PIPELINE_BASKET_DAY_RATIO": "half"},
        {"PIPELINE_BASKET_MIN_ROWS": "-1"},
    ],
)
def test_bad_config_names_the_variable(env):
    with pytest.raises(SettingsError, match=next(iter(env))):
        BasketConfig.from_env(env)
