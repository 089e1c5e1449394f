"""The event assets materialized for real (embedded PostgreSQL, folder lake), checked against
the independent DuckDB oracle and against the invariants of DESIGN sections 3 and 4."""

from __future__ import annotations

import gzip
import io
import json

import dagster as dg
import pandas as pd
import pytest
from pipeline_tests.events.event_oracle import assert_same, batch_oracle, to_hours
from pipeline_tests.events.platform_fixture import make_platform, sample_files, write_sources
from psycopg import sql

from pipeline.events.clock import newest_t1_minute
from pipeline.events.assets import build_event_assets
from pipeline.events.tables import pairs, t1_table
from pipeline.resources import build_resources

HOUR = "2019-10-01-00:00"
HEADER = b"event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"


def _materialize(platform, partition_key=HOUR, selection=("raw_files", "t1_minute", "t2_hour")):
    assets = [a for a in build_event_assets(platform.settings) if a.key.path[-1] in selection]
    return dg.materialize(assets, partition_key=partition_key, resources=build_resources(platform.settings),
                          instance=platform.instance)


def _metadata(result, asset):
    return {k: v.value for k, v in result.asset_materializations_for_node(f"events__{asset}")[0].metadata.items()}


def _check_oracle(platform, paths, t1=True):
    oracle = batch_oracle(paths, platform.settings.events, platform.settings.dimensions)
    for event, dimension in pairs(platform.settings.events, platform.settings.dimensions):
        if t1:
            assert_same(platform.t1(event, dimension), oracle[(event, dimension)], ["minute", dimension],
                        f"t1 {event}/{dimension}")
        assert_same(platform.t2(event, dimension), to_hours(oracle[(event, dimension)], event, dimension),
                    ["hour", dimension], f"t2 {event}/{dimension}")


@pytest.fixture
def platform(tmp_path, pg_url, monkeypatch):
    return make_platform(tmp_path, pg_url, monkeypatch)


def test_an_hour_materializes_to_the_oracle_with_metadata_and_checks(platform, tmp_path):
    files = sample_files("2019-10-01 00:00", 6, events_per_minute=80)
    for name, data in files:
        platform.land(name, data)
    result = _materialize(platform)
    assert result.success
    _check_oracle(platform, write_sources(tmp_path, files))

    raw = _metadata(result, "raw_files")
    assert raw["files_claimed"] == 12 and raw["quarantined_files"] == 0 and raw["duplicate_files"] == 0
    assert raw["dagster/row_count"] == sum(len(pd.read_csv(io.BytesIO(d))) for _, d in files)
    t1 = _metadata(result, "t1_minute")
    assert t1["minutes_recomputed"] == 6 and t1["files_read"] == 12
    assert t1["dagster/row_count"] == sum(len(platform.t1(e, d)) for e, d in pairs(platform.settings.events,
                                                                                     platform.settings.dimensions))
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"raw_files_have_known_columns": True, "t1_reconciles_with_raw": True, "t1_unique_keys": True,
                      "t1_schema": True, "t2_matches_minutes": True, "t2_unique_keys": True}
    # landed files moved to raw/, staged, recorded in the manifest with checksums
    assert not list(platform.lake.list("landing/"))
    assert len(list(platform.lake.list("raw/2019-10-01-00/"))) == 12
    manifest = json.loads(platform.lake.read_text("manifests/2019-10-01-00.json"))
    assert sorted(manifest["files"]) == sorted(n for n, _ in files)
    assert all(len(e["sha256"]) == 64 and e["status"] == "accepted" for e in manifest["files"].values())


def test_rematerializing_changes_nothing(platform):
    for name, data in sample_files("2019-10-01 00:00", 4, events_per_minute=60):
        platform.land(name, data)
    _materialize(platform)
    before = {spec: platform.table(spec) for spec in [t1_table("purchase", "brand"), t1_table("view", "product_id")]}
    again = _materialize(platform)
    assert _metadata(again, "t1_minute")["minutes_recomputed"] == 0
    for spec, frame in before.items():
        pd.testing.assert_frame_equal(platform.table(spec).sort_values(list(frame.columns)).reset_index(drop=True),
                                      frame.sort_values(list(frame.columns)).reset_index(drop=True))


def test_a_late_file_recomputes_only_its_minute(platform, tmp_path):
    files = sample_files("2019-10-01 00:00", 8, events_per_minute=60, servers=3)
    late = [f for f in files if f[0] == "2019-10-01-00-05-00-server3.csv"]
    on_time = [f for f in files if f not in late]
    for name, data in on_time:
        platform.land(name, data)
    _materialize(platform)
    spec = t1_table("view", "product_id")
    xmin = sql.SQL("SELECT minute, {}, xmin::text AS xmin FROM {}").format(sql.Identifier("product_id"), spec.table)
    before = platform.warehouse.read_frame(xmin)
    platform.land(*late[0])
    result = _materialize(platform)
    assert _metadata(result, "t1_minute")["minutes_recomputed"] == 1
    after = platform.warehouse.read_frame(xmin)
    minute5 = pd.Timestamp("2019-10-01 00:05", tz="UTC")
    untouched_before = before[pd.to_datetime(before["minute"], utc=True) != minute5]
    untouched_after = after[pd.to_datetime(after["minute"], utc=True) != minute5]
    # the other minutes' rows are the very same row versions (same xmin): not rewritten
    pd.testing.assert_frame_equal(untouched_before.sort_values(["minute", "product_id"]).reset_index(drop=True),
                                  untouched_after.sort_values(["minute", "product_id"]).reset_index(drop=True))
    assert set(after[pd.to_datetime(after["minute"], utc=True) == minute5]["xmin"]).isdisjoint(
        before[pd.to_datetime(before["minute"], utc=True) == minute5]["xmin"])
    _check_oracle(platform, write_sources(tmp_path, files))


def test_t2_stays_right_after_t1_expired_and_a_late_file(tmp_path, pg_url, monkeypatch):
    platform = make_platform(tmp_path, pg_url, monkeypatch, PIPELINE_T1_RETENTION_HOURS="1")
    early = sample_files("2019-10-01 00:00", 5, events_per_minute=50)
    later = sample_files("2019-10-01 03:00", 3, events_per_minute=50, seed=9)
    late = [f for f in early if f[0].startswith("2019-10-01-00-02-00-server1")]
    for name, data in [f for f in early if f not in late] + later:
        platform.land(name, data)
    assert not platform.process().failed
    # t1 of hour 00 has expired (window: one hour back from 03:02)
    assert pd.to_datetime(platform.t1("purchase", "brand")["minute"], utc=True).min() >= pd.Timestamp(
        "2019-10-01 02:02", tz="UTC")
    platform.land(*late[0])
    assert not platform.process().failed
    oracle = batch_oracle(write_sources(tmp_path, early + later), platform.settings.events, platform.settings.dimensions)
    for event, dimension in pairs(platform.settings.events, platform.settings.dimensions):
        assert_same(platform.t2(event, dimension), to_hours(oracle[(event, dimension)], event, dimension),
                    ["hour", dimension], f"t2 {event}/{dimension}")
        assert (pd.to_datetime(platform.t1(event, dimension)["minute"], utc=True)
                > pd.Timestamp("2019-10-01 01:02", tz="UTC")).all()


def test_retention_deletes_exactly_what_is_older_than_the_window(tmp_path, pg_url, monkeypatch):
    platform = make_platform(tmp_path, pg_url, monkeypatch, PIPELINE_T1_RETENTION_HOURS="2")
    for name, data in sample_files("2019-10-01 00:00", 130, events_per_minute=4, servers=1):
        platform.land(name, data)
    assert not platform.process().failed  # runs retention at the end
    newest = newest_t1_minute(platform.warehouse, platform.settings)
    assert newest == pd.Timestamp("2019-10-01 02:09", tz="UTC")
    for event, dimension in pairs(platform.settings.events, platform.settings.dimensions):
        minutes = set(pd.to_datetime(platform.t1(event, dimension)["minute"], utc=True))
        assert min(minutes) > newest - pd.Timedelta(hours=2)
    views = set(pd.to_datetime(platform.t1("view", "product_id")["minute"], utc=True))
    assert views == set(pd.date_range("2019-10-01 00:10", "2019-10-01 02:09", freq="min", tz="UTC"))
    assert len(platform.t2("view", "brand")["hour"].unique()) == 3  # t2 keeps every hour


def test_archive_is_verified_before_raw_files_are_deleted(platform, tmp_path, monkeypatch):
    files = sample_files("2019-10-01 00:00", 3, events_per_minute=40)
    for name, data in files:
        platform.land(name, data)
    _materialize(platform)
    real_write = type(platform.lake).write_bytes

    def corrupting_write(lake, key, data):
        if key.startswith("archive-staging/"):
            data = gzip.compress(gzip.decompress(data)[:-200])  # a short archive: rows missing
        return real_write(lake, key, data)

    monkeypatch.setattr(type(platform.lake), "write_bytes", corrupting_write)
    with pytest.raises(Exception, match="failed verification"):
        _materialize(platform, partition_key="2019-10-01", selection=("archive",))
    assert len(list(platform.lake.list("raw/"))) == 6  # nothing deleted
    assert not list(platform.lake.list("archive/"))
    monkeypatch.setattr(type(platform.lake), "write_bytes", real_write)

    result = _materialize(platform, partition_key="2019-10-01", selection=("archive",))
    meta = _metadata(result, "archive")
    assert meta["files"] == 6 and meta["raw_files_deleted"] == 6
    assert not list(platform.lake.list("raw/"))
    archived = pd.read_csv(io.BytesIO(platform.lake.read_bytes("archive/2019-10-01.csv.gz")), compression="gzip", dtype=str,
                           keep_default_na=False)
    for name, data in files:
        original = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        mine = archived[archived["source_file"] == name].drop(columns=["source_file"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, original)

    # a late file re-archives its block: old rows kept once, new rows added
    late = sample_files("2019-10-01 00:10", 1, events_per_minute=40, servers=1, seed=5)
    platform.land(*late[0])
    _materialize(platform)
    _materialize(platform, partition_key="2019-10-01", selection=("archive",))
    archived = pd.read_csv(io.BytesIO(platform.lake.read_bytes("archive/2019-10-01.csv.gz")), compression="gzip", dtype=str)
    assert archived.groupby("source_file").size().to_dict() == {
        name: len(pd.read_csv(io.BytesIO(data))) for name, data in files + late}


def _row(minute="00", second="05", event="purchase", product="1", price="10.5", session="s1"):
    return (f"2019-10-01 00:{minute}:{second} UTC,{event},{product},2053013555631882655,electronics.smartphone,"
            f"acme,{price},541312140,{session}\n").encode()


BAD_FILES = {
    "empty": (b"", "empty"),
    "header only": (HEADER, "no rows"),
    "wrong columns": (b"time,type,product\n1,2,3\n", "header"),
    "binary garbage": (bytes(range(256)) * 4, ""),
    "truncated gzip": (gzip.compress(HEADER + _row() * 50)[:-30], "gzip"),
    "huge line": (HEADER + _row()[:-1] + b"x" * 1_200_000 + b"\n", "long"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_each_kind_of_bad_file_is_quarantined_and_the_minute_still_processes(platform, kind):
    data, words = BAD_FILES[kind]
    bad_name = "2019-10-01-00-00-00-bad.csv" + (".gz" if kind == "truncated gzip" else "")
    platform.land(bad_name, data)
    platform.land("2019-10-01-00-00-00-good.csv", HEADER + _row(price="10.5") + _row(product="2", price="4.5"))
    result = _materialize(platform)
    assert _metadata(result, "raw_files")["quarantined_files"] == 1
    reasons = [json.loads(platform.lake.read_text(o.key)) for o in platform.lake.list("quarantine/")
               if o.key.endswith(".reason.json")]
    assert [r["file"] for r in reasons] == [bad_name]
    assert words.lower() in reasons[0]["reason"].lower()
    kept = [o for o in platform.lake.list("quarantine/") if not o.key.endswith(".reason.json")]
    assert platform.lake.read_bytes(kept[0].key) == data  # the bad file itself is kept, byte for byte
    gmv = platform.t1("purchase", "brand")
    assert list(gmv["gmv"]) == [15.0] and list(gmv["purchase_count"]) == [2]


@pytest.mark.parametrize("kind,row,reason", [
    ("bad number", _row(price="ten"), "bad price"),
    ("negative price", _row(price="-1"), "bad price"),
    ("bad timestamp", b"2019-10-01 25:99:00 UTC" + _row()[23:], "bad event_time"),
    ("wrong minute", _row(minute="07"), "outside the file's minute"),
    ("bad product id", _row(product="x1"), "bad product_id"),
])
def test_bad_rows_are_rejected_counted_and_kept_while_good_rows_count(platform, kind, row, reason):
    platform.land("2019-10-01-00-00-00-s1.csv", HEADER + _row(price="10") + row + _row(product="3", price="5"))
    result = _materialize(platform)
    assert _metadata(result, "raw_files")["rejected_rows"] == 1
    rejected = [o for o in platform.lake.list("quarantine/") if o.key.endswith(".rejected.csv")]
    frame = pd.read_csv(io.BytesIO(platform.lake.read_bytes(rejected[0].key)))
    assert len(frame) == 1 and reason in frame["reason"][0]
    gmv = platform.t1("purchase", "product_id")
    assert sorted(gmv["gmv"]) == [5.0, 10.0]


def test_path_like_and_unparseable_names_are_quarantined_by_the_sensor(platform):
    for name in ["x..csv", "2019-10-01-00-00-00-..csv", "2019-10-01 00.00.00 s1.csv", "notes.txt",
                 "2019-13-01-00-00-00-s1.csv"]:
        platform.land(name, HEADER + _row())
    summary = platform.process()
    assert not summary.runs  # nothing to ingest
    reasons = [json.loads(platform.lake.read_text(o.key)) for o in platform.lake.list("quarantine/")
               if o.key.endswith(".reason.json")]
    assert len(reasons) == 5 and all("bad file name" in r["reason"] for r in reasons)
    assert not list(platform.lake.list("landing/"))


def _archive(platform, key="archive/2019-10-01.csv.gz") -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(platform.lake.read_bytes(key)), compression="gzip", dtype=str,
                       keep_default_na=False)


def _manifest_entry(platform, name):
    return json.loads(platform.lake.read_text("manifests/2019-10-01-00.json"))["files"][name]


def test_a_line_with_a_wrong_field_count_is_rejected_and_the_rest_of_its_file_counts(platform):
    """Issue 15: one short or long line used to quarantine the whole file and its good rows."""
    short, long = _row(price="3")[:-20] + b"\n", _row(price="7")[:-1] + b",surplus\n"
    data = HEADER + _row(price="10") + short + _row(product="2", price="5") + long + _row(product="3", price="1")
    name = "2019-10-01-00-00-00-s1.csv"
    platform.land(name, data)
    result = _materialize(platform)
    meta = _metadata(result, "raw_files")
    assert (meta["files_claimed"], meta["quarantined_files"]) == (1, 0)
    assert (meta["rejected_rows"], meta["wrong_field_count_rows"], meta["dagster/row_count"]) == (2, 2, 5)
    assert sorted(platform.t1("purchase", "product_id")["gmv"]) == [1.0, 5.0, 10.0]

    [rejected_key] = [o.key for o in platform.lake.list("quarantine/") if o.key.endswith(".rejected.csv")]
    rejected = pd.read_csv(io.BytesIO(platform.lake.read_bytes(rejected_key)), dtype=str, keep_default_na=False)
    assert rejected["_line"].tolist() == ["3", "5"]
    assert rejected["reason"].tolist() == ["wrong number of fields"] * 2
    assert rejected["_text"].tolist() == [short.decode().rstrip("\n"), long.decode().rstrip("\n")]
    reason = json.loads(platform.lake.read_text(rejected_key + ".reason.json"))
    assert reason["reasons"] == {"wrong number of fields": 2} and reason["expected_fields"] == 9
    entry = _manifest_entry(platform, name)
    assert (entry["status"], entry["rows"], entry["rejected_rows"], entry["malformed_rows"]) == ("accepted", 5, 2, 2)
    assert platform.lake.read_bytes(f"raw/2019-10-01-00/{name}") == data  # every byte kept until archived

    # The archive holds the rows that have columns, and verifies; the two lines stay in quarantine.
    archived = _materialize(platform, partition_key="2019-10-01", selection=("archive",))
    assert _metadata(archived, "archive")["dagster/row_count"] == 3
    assert _archive(platform)["product_id"].tolist() == ["1", "2", "3"]
    assert not list(platform.lake.list("raw/"))


def test_a_file_with_extra_columns_is_accepted_reported_and_archived_whole(platform):
    """Issue 15: an additive schema change (servers send a new column) used to quarantine every file."""
    columns = HEADER.decode().strip().split(",")
    header = ",".join(["coupon", *reversed(columns), "channel"]) + "\n"

    def row(product, price, coupon):
        values = _row(product=product, price=price).decode().strip().split(",")
        return ",".join([coupon, *reversed(values), "web"]) + "\n"

    extra = (header + row("1", "10", "C-1") + row("2", "5", '"x, ""y"""')).encode()
    plain = HEADER + _row(product="3", price="1")
    platform.land("2019-10-01-00-00-00-new.csv", extra)
    platform.land("2019-10-01-00-00-00-old.csv", plain)
    result = _materialize(platform)
    meta = _metadata(result, "raw_files")
    assert (meta["files_claimed"], meta["quarantined_files"]) == (2, 0)
    assert meta["files_with_extra_columns"] == 1
    assert meta["extra_columns"] == {"2019-10-01-00-00-00-new.csv": ["coupon", "channel"]}
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "raw_files_have_known_columns"]
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert check.metadata["extra_columns"].value == ["channel", "coupon"]
    assert sorted(platform.t1("purchase", "product_id")["gmv"]) == [1.0, 5.0, 10.0]
    assert _manifest_entry(platform, "2019-10-01-00-00-00-new.csv")["extra_columns"] == ["coupon", "channel"]
    assert platform.lake.read_bytes("raw/2019-10-01-00/2019-10-01-00-00-00-new.csv") == extra

    archived = _materialize(platform, partition_key="2019-10-01", selection=("archive",))
    assert _metadata(archived, "archive")["files"] == 2
    archive = _archive(platform)
    assert list(archive.columns) == ["source_file", *columns, "extra"]
    assert [json.loads(e) if e else None for e in archive["extra"]] == [
        {"coupon": "C-1", "channel": "web"}, {"coupon": 'x, "y"', "channel": "web"}, None]
    assert archive["product_id"].tolist() == ["1", "2", "3"]

    # A run whose files have only the contract's columns passes the check.
    platform.land("2019-10-01-00-01-00-old.csv", HEADER + _row(minute="01", product="4", price="2"))
    again = _materialize(platform)
    [check] = [c for c in again.get_asset_check_evaluations() if c.check_name == "raw_files_have_known_columns"]
    assert check.passed
