"""What starts insights runs: the monthly schedule, the dump sensor and the all-time automation;
plus the definitions, the settings and the sample generator they rely on."""

import datetime as dt
import hashlib
import json
import os

import dagster as dg
import pytest

from pipeline.insights import generate, transform
from pipeline.insights.config import InsightsConfig
from pipeline.insights.definitions import build_defs
from pipeline.insights.partitions import Month
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource
from pipeline.settings import Settings, SettingsError

UTC = dt.timezone.utc
FEB, MAR = Month(2024, 2), Month(2024, 3)
COUNT_TABLES = ("events", "country", "userbase", "dateevent", "companies", "tags")
ALL_TIME = ("all_time_top_countries", "all_time_top_users", "all_time_busiest_day", "all_time_top_companies",
            "all_time_top_tags")


@pytest.fixture
def lake_resource(lake):
    return LakeResource(url=str(lake.root))


@pytest.fixture
def defs(tmp_path, lake_resource):
    # The warehouse is never reached here: the URL only satisfies the resource requirement.
    return dg.Definitions.merge(
        build_defs(Settings.from_env({"PIPELINE_HOME": str(tmp_path / "home")}), env={}),
        dg.Definitions(resources={"lake": lake_resource,
                                  "warehouse": WarehouseResource(url="postgresql://unused@localhost/x")}),
    )


def test_definitions_load_with_the_documented_names(defs):
    dg.Definitions.validate_loadable(defs)
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {f"insights/{t}" for t in COUNT_TABLES + ALL_TIME + (
        "top_countries", "top_users", "busiest_day", "top_companies", "top_tags")}
    job = defs.resolve_job_def("insights_month")
    assert job.partitions_def == dg.MonthlyPartitionsDefinition("2019-01-01")
    assert {s.name for s in defs.sensors} == {"insights_dumps", "insights_automation"}


@pytest.mark.parametrize("tick, partition", [
    (dt.datetime(2024, 3, 1, 10, 0, tzinfo=UTC), "2024-02-01"),
    (dt.datetime(2025, 1, 1, 10, 0, tzinfo=UTC), "2024-12-01"),
])
def test_schedule_loads_the_previous_month_at_ten_on_the_first(defs, tick, partition):
    schedule = defs.resolve_schedule_def("insights_monthly")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 10 1 * *", "UTC")
    [request] = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=tick)).run_requests
    assert (request.partition_key, request.run_key) == (partition, partition)
    assert request.job_name == "insights_month"


def _etag(lake, key: str) -> str:
    stat = os.stat(lake.root / key)
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def test_sensor_requests_new_and_replaced_dumps_once(defs, lake, lake_resource):
    sensor = defs.resolve_sensor_def("insights_dumps")
    lake.write_text(FEB.dump_key("csv"), "timestamp,email,country\n2024-02-01 10:00:00,a@globex.com,FR\n")
    lake.write_bytes(MAR.dump_key("parquet"), b"PAR1 not checked by the sensor")
    lake.write_text("insights/events/2024/02/notes.txt", "not a dump")
    running = Month(dt.date.today().year, dt.date.today().month)  # not a complete month yet
    lake.write_text(running.dump_key("csv"), "timestamp,email,country\n")
    lake.write_text("insights/events/2018/12/events.csv", "before PIPELINE_INSIGHTS_START\n")

    def tick(cursor):
        return sensor(dg.build_sensor_context(cursor=cursor, resources={"lake": lake_resource}))

    first = tick(None)

    feb_tag, mar_tag = _etag(lake, FEB.dump_key("csv")), _etag(lake, MAR.dump_key("parquet"))
    assert [(r.partition_key, r.run_key) for r in first.run_requests] == [
        ("2024-02-01", f"insights/events/2024/02/events.csv@{feb_tag}"),
        ("2024-03-01", f"insights/events/2024/03/events.parquet@{mar_tag}"),
    ]
    feb_sha, mar_sha = _sha(lake, FEB.dump_key("csv")), _sha(lake, MAR.dump_key("parquet"))
    assert json.loads(first.cursor) == {FEB.dump_key("csv"): [feb_tag, feb_sha],
                                        MAR.dump_key("parquet"): [mar_tag, mar_sha]}

    again = tick(first.cursor)
    assert again.run_requests == [] and again.cursor == first.cursor

    lake.write_text(FEB.dump_key("csv"), "timestamp,email,country\n2024-02-01 10:00:00,a@globex.com,France\n")
    replaced = tick(again.cursor)
    new_tag = _etag(lake, FEB.dump_key("csv"))
    assert new_tag != feb_tag
    assert [(r.partition_key, r.run_key) for r in replaced.run_requests] == [
        ("2024-02-01", f"insights/events/2024/02/events.csv@{new_tag}")]
    assert json.loads(replaced.cursor) == {FEB.dump_key("csv"): [new_tag, _sha(lake, FEB.dump_key("csv"))],
                                           MAR.dump_key("parquet"): [mar_tag, mar_sha]}


def _sha(lake, key: str) -> str:
    return "sha256:" + hashlib.sha256((lake.root / key).read_bytes()).hexdigest()


def test_sensor_does_not_load_a_dump_again_when_the_same_bytes_are_uploaded_again(defs, lake, lake_resource):
    """Issue 15: on a folder lake a re-upload of a byte-identical dump changed its size+mtime
    fingerprint, so the month was loaded again."""
    sensor = defs.resolve_sensor_def("insights_dumps")
    dump = "timestamp,email,country\n2024-02-01 10:00:00,a@globex.com,FR\n"
    lake.write_text(FEB.dump_key("csv"), dump)

    def tick(cursor):
        return sensor(dg.build_sensor_context(cursor=cursor, resources={"lake": lake_resource}))

    first = tick(None)
    assert [r.partition_key for r in first.run_requests] == ["2024-02-01"]
    before = _etag(lake, FEB.dump_key("csv"))
    os.utime(lake.root / FEB.dump_key("csv"), ns=(1, 1))  # a later upload: another mtime, same bytes
    lake.write_text(FEB.dump_key("csv"), dump)
    assert _etag(lake, FEB.dump_key("csv")) != before
    same = tick(first.cursor)
    assert same.run_requests == []
    # the cursor follows the new listing, so the next tick does not read the file again
    assert json.loads(same.cursor)[FEB.dump_key("csv")] == [_etag(lake, FEB.dump_key("csv")), _sha(lake, FEB.dump_key("csv"))]
    lake.write_text(FEB.dump_key("csv"), dump.replace("FR", "DE"))  # other bytes, same size
    assert [r.partition_key for r in tick(same.cursor).run_requests] == ["2024-02-01"]
    # A cursor written before fingerprints (key -> ETag) still works: a changed listing loads once.
    old = json.dumps({FEB.dump_key("csv"): before})
    assert [r.partition_key for r in tick(old).run_requests] == ["2024-02-01"]


def test_all_time_refreshes_when_any_month_changes(defs):
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor=None):
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        requested = {r.key.path[-1] for r in result.results if r.true_subset.size}
        return result, requested

    def load(month: Month):
        for table in COUNT_TABLES:
            event = dg.AssetMaterialization(["insights", table], partition=month.partition_key)
            instance.report_runless_asset_event(event)

    result, requested = tick()
    assert requested == set()  # nothing loaded yet, and missing months since 2019 do not block
    load(FEB)
    result, requested = tick(result.cursor)
    assert requested == set(ALL_TIME)
    result, requested = tick(result.cursor)
    assert requested == set()
    load(Month(2019, 5))  # a late, old month
    result, requested = tick(result.cursor)
    assert requested == set(ALL_TIME)


def test_config_from_env_validates():
    assert InsightsConfig.from_env({}) == InsightsConfig(start="2019-01-01", top_n=10)
    env = {"PIPELINE_INSIGHTS_START": "2021-06-15", "PIPELINE_INSIGHTS_TOP_N": "25"}
    assert InsightsConfig.from_env(env) == InsightsConfig(start="2021-06-01", top_n=25)
    with pytest.raises(SettingsError, match="PIPELINE_INSIGHTS_START='June'"):
        InsightsConfig.from_env({"PIPELINE_INSIGHTS_START": "June"})
    with pytest.raises(SettingsError, match="PIPELINE_INSIGHTS_TOP_N='0'"):
        InsightsConfig.from_env({"PIPELINE_INSIGHTS_TOP_N": "0"})


def test_generate_writes_one_realistic_month(lake):
    keys = generate.generate(lake, month="2024-02", rows=2000, seed=7)
    assert keys == ["insights/events/2024/02/events.csv"]
    frame = transform.read_dump(lake.read_bytes(keys[0]), "csv")
    prepared = transform.prepare_events(frame, 2024, 2)
    companies = set(transform.companies(prepared.events["email"]))
    assert {"acme", "umbrella", "soylent", "wayne-enterprises", transform.PERSONAL_EMAIL,
            transform.UNKNOWN_COMPANY} <= companies
    assert 0 < len(prepared.rejected) < 0.02 * len(frame)
    assert set(prepared.rejected["_reason"]) >= {"unparseable timestamp", "timestamp outside 2024-02"}
    assert prepared.events["tags"].notna().mean() > 0.5
    assert prepared.extra_columns == ("event", "session_id", "amount")
    # Same seed, same bytes; another format replaces the month's dump instead of adding a second one.
    first = lake.read_bytes(keys[0])
    assert generate.generate(lake, month="2024-02", rows=2000, seed=7) == keys
    assert lake.read_bytes(keys[0]) == first
    parquet = generate.generate(lake, month="2024-02", rows=2000, seed=7, fmt="parquet")
    assert parquet == [FEB.dump_key("parquet")]
    assert [o.key for o in lake.list("insights/")] == [FEB.dump_key("parquet")]
    assert generate.generate(lake, today=dt.date(2025, 1, 15)) == ["insights/events/2024/12/events.csv"]
