"""The dashboard asset on a real platform (embedded PostgreSQL, folder lake), and its automation."""

from __future__ import annotations

import json
import re

import dagster as dg
import pandas as pd
import pytest

from pipeline.events.assets import build_event_assets
from pipeline.events.dashboard_asset import DASHBOARD_KEY
from pipeline.resources import build_resources
from pipeline.settings import Settings
from pipeline_tests.events.event_oracle import batch_oracle
from pipeline_tests.events.platform_fixture import make_platform, sample_files, write_sources

SETTINGS = Settings.from_env({"PIPELINE_PARTITIONS_START": "2019-10-01", "PIPELINE_PARTITIONS_END": "2019-10-03"})


def _specs(page: str) -> dict:
    return json.loads(re.search(r"const specs = (\{.*\});\n", page).group(1))


def _rows(spec: dict) -> list[dict]:
    return next(iter(spec["datasets"].values()))


@pytest.mark.integration
@pytest.mark.slow
def test_batch_mode_writes_the_dashboard_from_the_tables_and_the_lake(tmp_path, pg_url, monkeypatch):
    platform = make_platform(tmp_path, pg_url, monkeypatch)
    files = sample_files("2019-10-01 00:00", 3, events_per_minute=120)
    for name, data in files:
        platform.land(name, data)
    platform.land("2019-10-01-00-01-00-broken.csv", b"")
    summary = platform.process()
    assert [job for job, _, ok in summary.runs if ok][1:2] == ["events_automation"]  # rankings + dashboard, one run

    page = platform.lake.read_text(DASHBOARD_KEY)
    specs = _specs(page)
    # GMV and views per minute: the independent oracle's totals over all accepted files
    oracle = batch_oracle(write_sources(tmp_path, files), ["purchase", "view"], ["brand"])
    gmv = oracle[("purchase", "brand")].groupby("minute")["gmv"].sum()
    views = oracle[("view", "brand")].groupby("minute")["view_count"].sum()
    page_gmv = {pd.Timestamp(r["minute"]): r["gmv"] for r in _rows(specs["minute-gmv"])}
    page_views = {pd.Timestamp(r["minute"]): r["views"] for r in _rows(specs["minute-views"])}
    assert page_gmv == pytest.approx(gmv.to_dict()) and page_views == views.to_dict()
    hour_views = _rows(specs["hour-views"])
    assert [(r["hour"], r["views"]) for r in hour_views] == [("2019-10-01T00:00:00Z", int(views.sum()))]
    # files per minute by server from the manifest: 2 servers x 3 minutes, plus the broken file
    by_server = {(r["minute"], r["server"]): r["files"] for r in _rows(specs["files-server"])}
    assert by_server[("2019-10-01T00:01:00Z", "broken")] == 1
    assert sum(by_server.values()) == 7
    assert '<div class="label">quarantined</div><div class="value">1</div>' in page
    assert "2019-10-01-00-01-00-broken.csv" in page and "file is empty" in page

    event = platform.instance.get_latest_materialization_event(dg.AssetKey(["events", "dashboard"]))
    metadata = event.asset_materialization.metadata
    assert metadata["dashboard"].value == platform.lake.path(DASHBOARD_KEY).as_uri()
    top_brand = oracle[("purchase", "brand")].groupby("brand")["gmv"].sum().sort_values(ascending=False).index[0]
    first_row = metadata["top_10"].value.splitlines()[2]
    assert first_row.startswith("| 1 | ") and f"| {top_brand} |" in first_row
    assert metadata["quarantined_files"].value == 1


def test_dashboard_follows_the_rankings():
    defs = dg.Definitions(assets=build_event_assets(SETTINGS), resources=build_resources(SETTINGS))
    with dg.instance_for_test() as instance:
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert result.get_num_requested(dg.AssetKey(["events", "dashboard"])) == 0  # no rankings yet

        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["events", "rankings"]))
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert result.get_num_requested(dg.AssetKey(["events", "dashboard"])) == 1

        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert result.get_num_requested(dg.AssetKey(["events", "dashboard"])) == 0  # handled: no repeat

        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["events", "dashboard"]))  # the run it asked for
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert result.get_num_requested(dg.AssetKey(["events", "dashboard"])) == 0

        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["events", "rankings"]))  # t1 changed again
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert result.get_num_requested(dg.AssetKey(["events", "dashboard"])) == 1


@pytest.mark.integration
def test_claim_and_t1_record_when_each_file_landed_and_reached_t1(tmp_path, pg_url, monkeypatch):
    import datetime as dt

    from pipeline.events import dashboard
    from pipeline.events.dashboard_asset import load_dashboard_data
    from pipeline.events.layout import Manifest

    platform = make_platform(tmp_path, pg_url, monkeypatch)
    first, late = sample_files("2019-10-01 00:00", 1, events_per_minute=40, servers=3)[:2], \
        sample_files("2019-10-01 00:00", 1, events_per_minute=40, servers=3)[2]
    for name, data in first:
        platform.land(name, data)
    landed = {o.name: o.modified for o in platform.lake.list("landing/")}
    before = pd.Timestamp.now(tz="UTC")
    assert not platform.process().failed
    between = pd.Timestamp.now(tz="UTC")
    platform.land(*late)  # the same minute from a third server: minute 00:00 is recomputed
    landed[late[0]] = next(o.modified for o in platform.lake.list("landing/"))
    assert not platform.process().failed
    after = pd.Timestamp.now(tz="UTC")

    entries = Manifest.load(platform.lake, pd.Timestamp("2019-10-01 00:00", tz="UTC")).files
    assert sorted(entries) == sorted(landed)
    for name, modified in landed.items():
        iso = dt.datetime.fromtimestamp(modified, dt.timezone.utc).isoformat(timespec="milliseconds")
        assert entries[name].landed_at == iso
    in_t1 = {name: pd.Timestamp(entry.in_t1_at) for name, entry in entries.items()}
    for name, _ in first:  # reached t1 in the first processing, and keep that time after the recompute
        assert before <= in_t1[name] <= between
    assert between <= in_t1[late[0]] <= after

    data = load_dashboard_data(platform.lake, platform.warehouse, platform.settings, now=after)
    assert data.lag_landing == pd.Timedelta(0)
    assert data.lag_wall_clock == after - pd.Timestamp("2019-10-01 00:01", tz="UTC")
    seconds = sorted((in_t1[n] - pd.Timestamp(entries[n].landed_at)).total_seconds() for n in landed)
    latency = dashboard.landing_to_t1(data.files, after)
    assert latency["files"] == 3 and latency["p95_s"] == pytest.approx(seconds[-1])  # 3 values: p95 is the max
