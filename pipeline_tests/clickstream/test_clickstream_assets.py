"""The job end to end: lake files in three formats -> daily clicks -> the report in PostgreSQL
(embedded, real) and MongoDB (mongomock), against counts computed by hand."""

import datetime as dt
import io

import dagster as dg
import pandas as pd
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from pipeline.clickstream import mongo as mongo_io
from pipeline.clickstream import storage, tables
from pipeline.clickstream.definitions import build_defs
from pipeline.clickstream.mongo import MongoResource
from pipeline.clickstream.partitions import range_tags
from pipeline.settings import Settings

pytestmark = pytest.mark.integration  # the embedded PostgreSQL

SOURCE = "clickstream/source/"


def xlsx(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False, engine="openpyxl")
    return buffer.getvalue()


def write_sources(lake) -> None:
    """Seven rows over three files, one per format and layout."""
    lake.write_text(
        SOURCE + "a.csv",
        "user,time_stamp,adgroup_id,pid,nonclk,clk\n"
        "1,1704067200,Apparel,Tee,0,1\n"  # 01-01 00:00
        "2,1704070800,Apparel,Cap,1,0\n"  # 01-01 01:00, no click
        "3,1704153600,Sale,Mug,0,1\n",
    )  # 01-02
    seed_json = pd.DataFrame(
        {
            "user_id": [4, 5],
            "date": pd.to_datetime(["2024-01-02", "2024-01-04"]),
            "product_category": ["Apparel", "Apparel"],
            "product_name": ["Tee", "Tee"],
            "click_event": [1, 1],
        }
    )
    lake.write_text(SOURCE + "b.json", seed_json.reset_index().to_json())  # the seed's mock layout
    lake.write_bytes(
        SOURCE + "nested/c.xlsx",
        xlsx(
            pd.DataFrame(
                {
                    "date": ["2024-01-04", "2024-01-04"],
                    "product_category": ["Sale", "Sale"],
                    "product_name": ["Mug", "Mug"],
                    "click_event": [1, 0],
                }
            )
        ),
    )


# Hand-computed report, period 2, days 01-01..01-05: (grouping, key, day, daily, rolling).
CAT, JOINT = "product_category", "product_category+product_name"
TEE, CAP, MUG = '["Apparel", "Tee"]', '["Apparel", "Cap"]', '["Sale", "Mug"]'
EXPECTED = sorted(
    [
        (CAT, "Apparel", 1, 1, 1),
        (CAT, "Apparel", 2, 1, 2),
        (CAT, "Apparel", 3, 0, 1),
        (CAT, "Apparel", 4, 1, 1),
        (CAT, "Apparel", 5, 0, 1),
        (CAT, "Sale", 2, 1, 1),
        (CAT, "Sale", 3, 0, 1),
        (CAT, "Sale", 4, 1, 1),
        (CAT, "Sale", 5, 0, 1),
        (JOINT, TEE, 1, 1, 1),
        (JOINT, TEE, 2, 1, 2),
        (JOINT, TEE, 3, 0, 1),
        (JOINT, TEE, 4, 1, 1),
        (JOINT, TEE, 5, 0, 1),
        (JOINT, CAP, 1, 0, 0),
        (JOINT, CAP, 2, 0, 0),
        (JOINT, MUG, 2, 1, 1),
        (JOINT, MUG, 3, 0, 1),
        (JOINT, MUG, 4, 1, 1),
        (JOINT, MUG, 5, 0, 1),
    ]
)


def run(config, resources, tmp_path, start, end, raise_on_error=True):
    settings = Settings.from_env({"PIPELINE_PARTITIONS_START": "2024-01-01", "PIPELINE_HOME": str(tmp_path)})
    defs = build_defs(settings, config, mongo=resources["mongo"])
    defs = dg.Definitions.merge(
        defs, dg.Definitions(resources={"lake": resources["lake"], "warehouse": resources["warehouse"]})
    )
    job = defs.resolve_job_def("clickstream_job")
    return job.execute_in_process(
        tags=range_tags(start, end), instance=dg.DagsterInstance.ephemeral(), raise_on_error=raise_on_error
    )


def day(number: int) -> dt.date:
    return dt.date(2024, 1, number)


def postgres_rows(resources, config) -> list[tuple]:
    frame = tables.read_report(resources["warehouse"].get(), tables.report_table(config.postgres.table_name))
    return sorted(
        (r.grouping, r.key, r.date.day, r.daily_clicks, r.rolling_clicks)
        for r in frame.itertuples()
        if r.start_date == r.date - dt.timedelta(days=config.period)
    )


def mongo_rows(mongo_client, config) -> list[tuple]:
    frame = mongo_io.read_documents(mongo_client[config.mongo.database][config.mongo.collection])
    return sorted(
        (r.grouping, r.key, r.date.day, r.daily_clicks, r.rolling_clicks) for r in frame.itertuples()
    )


@pytest.mark.slow
def test_three_formats_to_both_sinks_and_a_rerun_does_not_double(
    tmp_path, lake, resources, make_config, mongo_client
):
    config = make_config(columns="product_category,product_category+product_name", period=2)
    write_sources(lake)
    for _ in range(2):  # the second run must replace, not add
        result = run(config, resources, tmp_path, day(1), day(5))
        assert postgres_rows(resources, config) == EXPECTED
        assert mongo_rows(mongo_client, config) == EXPECTED
    assert all(check.passed for check in result.get_asset_check_evaluations())
    assert len(result.get_asset_check_evaluations()) == 2

    stats = pd.read_csv(io.StringIO(lake.read_text(storage.STATS_KEY))).iloc[0]
    assert (stats.latest_date, stats.report_start, stats.report_end) == (
        "2024-01-04",
        "2024-01-01",
        "2024-01-05",
    )
    assert (
        stats.source_rows,
        stats.report_rows,
        stats.rows_written_postgres,
        stats.rows_written_mongodb,
    ) == (7, 20, 20, 20)
    assert not (tmp_path / "work").exists() or not any(
        (tmp_path / "work").iterdir()
    )  # working copies removed

    # A late file for 01-03: the sensor would ask for 01-03..01-04 (the day + period - 1).
    lake.write_text(
        SOURCE + "late.csv", "user,time_stamp,adgroup_id,pid,nonclk,clk\n6,1704240000,Apparel,Tee,0,1\n"
    )
    run(config, resources, tmp_path, day(3), day(4))
    changed = {
        (CAT, "Apparel", 3): (1, 2),
        (CAT, "Apparel", 4): (1, 2),
        (JOINT, TEE, 3): (1, 2),
        (JOINT, TEE, 4): (1, 2),
    }
    expected = sorted(
        (g, k, d, *changed.get((g, k, d), (daily, rolling))) for g, k, d, daily, rolling in EXPECTED
    )
    assert postgres_rows(resources, config) == expected
    assert mongo_rows(mongo_client, config) == expected
    # A backfill of older days never moves the recorded latest date back.
    assert pd.read_csv(io.StringIO(lake.read_text(storage.STATS_KEY))).latest_date[0] == "2024-01-04"


@pytest.mark.slow
def test_data_append_false_rebuilds_table_and_collection_from_every_known_day(
    tmp_path, lake, resources, make_config, mongo_client
):
    config = make_config(
        columns="product_category,product_category+product_name",
        period=2,
        pg_append=False,
        mongo_append=False,
    )
    write_sources(lake)
    run(config, resources, tmp_path, day(1), day(2))
    stale = pd.DataFrame(
        [("x", "stale", pd.Timestamp("2024-01-03"), 9, 9, pd.Timestamp("2024-01-01"))],
        columns=["grouping", "key", "date", "daily_clicks", "rolling_clicks", "start_date"],
    )
    spec = tables.report_table(config.postgres.table_name)
    tables.replace_days(resources["warehouse"].get(), spec, stale, ["x"], [day(3)])
    mongo_io.replace_days(mongo_client["shop"]["clicks"], stale, ["x"], [day(3)])

    run(config, resources, tmp_path, day(3), day(5))  # knows 01-01..01-05 now: all of it, stale rows gone
    assert postgres_rows(resources, config) == EXPECTED
    assert mongo_rows(mongo_client, config) == EXPECTED


class UnreachableMongo(MongoResource):
    def connect(self, default_host):
        raise ServerSelectionTimeoutError("mongo.invalid:27017: no server")


@pytest.mark.slow
def test_a_failed_upload_keeps_the_local_working_copies(tmp_path, lake, resources, make_config):
    config = make_config(columns="product_category", period=2)
    write_sources(lake)
    result = run(
        config, {**resources, "mongo": UnreachableMongo()}, tmp_path, day(1), day(5), raise_on_error=False
    )
    assert not result.success
    kept = list((tmp_path / "work").iterdir())
    assert [folder.name.rsplit("-", 1)[1] for folder in kept] == ["report"]  # the daily step had succeeded
    uploaded = pd.read_csv(kept[0] / "report.csv")
    assert len(uploaded) == 9 and uploaded["daily_clicks"].sum() == 5  # the rows that were to be written
    assert sorted(path.name for path in (kept[0] / "daily").iterdir()) == [
        f"2024-01-0{d}.parquet" for d in range(1, 6)
    ]
    assert not lake.exists(storage.STATS_KEY)  # no statistics for an upload that did not happen


@pytest.mark.slow
def test_bad_files_and_rows_are_quarantined_with_reasons_and_the_rest_is_counted(
    tmp_path, lake, resources, make_config
):
    config = make_config(columns="product_category", period=1, mongo=False)
    write_sources(lake)
    lake.write_text(SOURCE + "broken.json", "{not json")
    lake.write_text(SOURCE + "partial.csv", "date,click_event\n2024-01-01,1\n")  # no product_category
    lake.write_text(
        SOURCE + "rows.csv", "date,click_event,product_category\n2024-01-01,1,Sale\nsoon,1,Sale\n"
    )
    result = run(config, resources, tmp_path, day(1), day(5))

    assert not lake.exists(SOURCE + "broken.json") and not lake.exists(SOURCE + "partial.csv")
    quarantined = [obj.key for obj in lake.list("quarantine/clickstream/")]
    reasons = {key: lake.read_text(key) for key in quarantined if key.endswith(".reason.txt")}
    assert any("broken.json: not valid JSON" in text for text in reasons.values())
    assert any("partial.csv: missing column(s) product_category" in text for text in reasons.values())
    (rows_key,) = [key for key in quarantined if key.startswith("quarantine/clickstream/rows/rows.csv.")]
    rejected = pd.read_csv(io.StringIO(lake.read_text(rows_key)))
    assert rejected[["date", "reason"]].values.tolist() == [["soon", "date: not a date or epoch time"]]

    daily = result.asset_materializations_for_node("clickstream__daily_clicks")[0].metadata
    assert (daily["files_read"].value, daily["rows_read"].value, daily["rows_rejected"].value) == (4, 9, 1)
    # Sale on 01-01 comes only from rows.csv
    assert (CAT, "Sale", 1, 1, 1) in postgres_rows(resources, config)


@pytest.mark.slow
def test_a_column_no_file_has_stops_the_run_naming_the_ini_key_and_moves_nothing(
    tmp_path, lake, resources, make_config
):
    config = make_config(columns="product_categry", period=2)
    write_sources(lake)
    result = run(config, resources, tmp_path, day(1), day(2), raise_on_error=False)
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert "column 'product_categry' named in [columns] column_names" in message
    assert "test.ini" in message
    assert sorted(obj.key for obj in lake.list(SOURCE)) == [
        SOURCE + "a.csv",
        SOURCE + "b.json",
        SOURCE + "nested/c.xlsx",
    ]
    assert not list(lake.list("quarantine/"))
