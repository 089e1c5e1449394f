"""The group as the lead wires it, the sample generator, and the whole chain: generated batch ->
marker -> sensor -> run -> report."""

import datetime as dt
import time

import dagster as dg
import pandas as pd
import pytest

from pipeline.clickstream import readers, tables, transform
from pipeline.clickstream.config import ConfigError
from pipeline.clickstream.definitions import build_defs
from pipeline.clickstream.generate import generate, sample_rows
from pipeline.clickstream.partitions import clamp, daily_partitions
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource
from pipeline.settings import Settings

SETTINGS_ENV = {"PIPELINE_PARTITIONS_START": "2024-01-01"}


def with_platform(defs: dg.Definitions, lake, pg_url="postgresql://unused/db") -> dg.Definitions:
    platform = {"lake": LakeResource(url=lake.url), "warehouse": WarehouseResource(url=pg_url)}
    return dg.Definitions.merge(defs, dg.Definitions(resources=platform))


def test_the_packaged_configuration_builds_loadable_definitions(lake, monkeypatch):
    monkeypatch.delenv("PIPELINE_CLICKSTREAM_INI", raising=False)
    defs = with_platform(build_defs(Settings.from_env(SETTINGS_ENV)), lake)
    dg.Definitions.validate_loadable(defs)

    report = defs.resolve_assets_def(dg.AssetKey(["clickstream", "report"]))
    mapping = report.get_partition_mapping(dg.AssetKey(["clickstream", "daily_clicks"]))
    assert (mapping.start_offset, mapping.end_offset) == (-6, 0)  # period 7: D-6 .. D
    assert report.partitions_def.get_first_partition_key() == "2024-01-01"
    assert report.metadata_by_key[report.key]["dagster/table_name"] == "clickstream.click_through_weekly"
    assert defs.resolve_job_def("clickstream_job").tags["clickstream"] == "report"
    assert (
        defs.resolve_sensor_def("clickstream_metadata_sensor").default_status
        == dg.DefaultSensorStatus.RUNNING
    )
    assert defs.resolve_schedule_def("clickstream_schedule").cron_schedule == "0 0 * * *"
    names = {sensor.name for sensor in defs.sensors}
    assert names == {
        "clickstream_metadata_sensor",
        "clickstream_success_notifier",
        "clickstream_failure_notifier",
    }


def test_the_look_back_follows_the_configured_period(lake, tmp_path, monkeypatch):
    path = tmp_path / "p.ini"
    path.write_text("[aggregation]\nperiod = 3\n")
    monkeypatch.setenv("PIPELINE_CLICKSTREAM_INI", str(path))
    report = with_platform(build_defs(Settings.from_env(SETTINGS_ENV)), lake).resolve_assets_def(
        dg.AssetKey(["clickstream", "report"])
    )
    assert report.get_partition_mapping(dg.AssetKey(["clickstream", "daily_clicks"])).start_offset == -2


def test_a_bad_ini_stops_the_code_location_naming_the_key(tmp_path, monkeypatch):
    path = tmp_path / "bad.ini"
    path.write_text("[aggregation]\nperiod = weekly\n")
    monkeypatch.setenv("PIPELINE_CLICKSTREAM_INI", str(path))
    with pytest.raises(ConfigError, match=r"bad.ini: \[aggregation\] period = 'weekly'"):
        build_defs(Settings.from_env(SETTINGS_ENV))


def test_generate_writes_one_batch_in_three_formats_and_its_marker(lake):
    started = time.monotonic()
    keys = generate(lake, seed=3, start=dt.date(2024, 1, 1), days=5, rows=90, today=dt.date(2024, 1, 31))
    assert time.monotonic() - started < 5
    assert keys == [
        "clickstream/source/batch-0003.csv",
        "clickstream/source/batch-0003.json",
        "clickstream/source/batch-0003.xlsx",
        "clickstream/metadata/batch-0003.csv",
    ]
    frames = [
        transform.normalize(
            readers.read_table(lake.read_bytes(key), key),
            date_column="date",
            target_column="click_event",
            group_columns=["product_category", "product_name"],
        )
        for key in keys[:3]
    ]
    assert [len(f.rows) for f in frames] == [30, 30, 30] and all(f.rejected.empty for f in frames)
    rows = pd.concat([f.rows for f in frames])
    raw = sample_rows(seed=3, start=dt.date(2024, 1, 1), days=5, rows=90)  # the generator's own rows
    assert rows["click_event"].sum() == raw["clk"].sum()
    days = sorted(rows["date"].dt.date.unique())
    assert dt.date(2024, 1, 1) <= days[0] and days[-1] <= dt.date(2024, 1, 5)
    assert pd.read_csv(lake.uri(keys[3]))["date"].tolist() == [day.isoformat() for day in days]
    assert (
        generate(lake, seed=3, start=dt.date(2024, 1, 1), days=5, rows=90, today=dt.date(2024, 1, 31)) == keys
    )


def test_generate_never_writes_days_after_today(lake):
    generate(lake, seed=1, days=7, rows=30, source_prefix="clickstream/source/", today=dt.date(2024, 3, 2))
    marker = pd.read_csv(lake.uri("clickstream/metadata/batch-0001.csv"))
    assert marker["date"].tolist() == ["2024-03-01", "2024-03-02"]


@pytest.mark.slow
@pytest.mark.integration
def test_a_generated_batch_flows_from_the_marker_sensor_to_the_report(
    tmp_path, lake, pg_url, make_config, mongo_resource, mongo_client
):
    generate(lake, seed=5, start=dt.date(2024, 1, 1), days=3, rows=120, today=dt.date(2024, 1, 31))
    config = make_config(columns="product_category", period=2)
    defs = with_platform(
        build_defs(Settings.from_env(SETTINGS_ENV), config, mongo=mongo_resource), lake, pg_url
    )
    sensor = defs.resolve_sensor_def("clickstream_metadata_sensor")
    instance = dg.DagsterInstance.ephemeral()  # a tick without a cursor reads the sensor's earlier runs
    context = dg.build_sensor_context(resources={"lake": LakeResource(url=lake.url)}, instance=instance)
    (request,) = sensor(context).run_requests
    result = defs.resolve_job_def("clickstream_job").execute_in_process(tags=request.tags, instance=instance)
    assert result.success

    # Independent expectation: clicks per category and day straight from the generator's rows.
    raw = sample_rows(seed=5, start=dt.date(2024, 1, 1), days=3, rows=120)
    raw["day"] = pd.to_datetime(raw["time_stamp"], unit="s").dt.date
    expected = raw.groupby(["adgroup_id", "day"])["clk"].sum()
    table = tables.read_report(
        WarehouseResource(url=pg_url).get(), tables.report_table("click_through_weekly")
    )
    on_days_with_rows = table.set_index(["key", "date"])["daily_clicks"].loc[expected.index]
    assert on_days_with_rows.tolist() == expected.tolist()
    assert table["daily_clicks"].sum() == raw["clk"].sum()
    assert len(mongo_client["shop"]["clicks"].find_one({}, {"_id": 0})) == 6


def test_partitions_start_and_end_follow_the_platform_settings():
    open_ended = daily_partitions(Settings.from_env({"PIPELINE_PARTITIONS_START": "2024-01-01"}))
    assert open_ended.get_last_partition_key() == dt.datetime.now(dt.UTC).date().isoformat()
    closed = daily_partitions(Settings.from_env({**SETTINGS_ENV, "PIPELINE_PARTITIONS_END": "2024-02-01"}))
    assert (closed.get_first_partition_key(), closed.get_last_partition_key()) == ("2024-01-01", "2024-01-31")
    assert clamp(closed, dt.date(2023, 12, 1), dt.date(2024, 3, 1)) == (
        dt.date(2024, 1, 1),
        dt.date(2024, 1, 31),
    )
    assert clamp(closed, dt.date(2023, 12, 1), dt.date(2023, 12, 9)) is None
