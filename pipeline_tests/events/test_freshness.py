"""Freshness of t1 and the rankings: the lags (hand-computed), the newest landed file, the checks
the daemon's sensor records, and the webhook alert on a change of status (a real HTTP server)."""

from __future__ import annotations

import dataclasses
import json

import dagster as dg
import pandas as pd
import pytest

from pipeline.events import freshness, keys
from pipeline.events.freshness import FAIL, PASS, WARN, Lag
from pipeline.events.freshness_checks import SENSOR, evaluate
from pipeline.notify import NotificationError
from pipeline.resources.lake import LocalLake
from pipeline_tests.events.platform_fixture import make_platform, sample_files

T = pd.Timestamp("2019-10-01 00:00", tz="UTC")
WARN_AFTER, FAIL_AFTER = pd.Timedelta(minutes=3), pd.Timedelta(minutes=10)


def _m(minutes: float) -> pd.Timestamp:
    return T + pd.Timedelta(minutes=minutes)


def test_lags_are_measured_from_the_end_of_the_newest_minute_and_in_event_time():
    lag = Lag(newest=_m(3), newest_landed=_m(9), now=_m(5) + pd.Timedelta(seconds=30))
    assert lag.behind_wall_clock == pd.Timedelta(seconds=90)  # 00:05:30 - 00:04:00
    assert lag.behind_landing == pd.Timedelta(minutes=6)
    caught_up = Lag(newest=_m(9), newest_landed=_m(9), now=_m(9) + pd.Timedelta(seconds=20))
    assert caught_up.behind_wall_clock == pd.Timedelta(0) and caught_up.behind_landing == pd.Timedelta(0)
    assert Lag(None, _m(1), _m(2)).behind_landing is None and Lag(None, None, _m(2)).behind_wall_clock is None


@pytest.mark.parametrize(("newest", "landed", "now", "wall_clock", "status"), [
    (3, 5, 6, True, PASS),  # 2 min behind landing, 2 min behind the clock
    (3, 7, 6, True, WARN),  # 4 min behind landing
    (3, 3, 9, True, WARN),  # 5 min behind the clock, nothing newer landed: a feed that stopped
    (3, 3, 15, True, FAIL),  # 11 min behind the clock
    (3, 3, 15, False, PASS),  # the same in a replay: the clock is not judged
    (3, 14, 15, False, FAIL),  # 11 min behind landing
    (3, 13, 15, False, WARN),  # exactly 10 min: not beyond the FAIL limit
])
def test_the_worse_lag_decides_the_status(newest, landed, now, wall_clock, status):
    verdict = freshness.judge(Lag(_m(newest), _m(landed), _m(now)), WARN_AFTER, FAIL_AFTER, wall_clock)
    assert verdict.status == status


def test_an_empty_table_warns_only_once_files_have_landed():
    assert freshness.judge(Lag(None, None, _m(0)), WARN_AFTER, FAIL_AFTER, True).status == PASS
    verdict = freshness.judge(Lag(None, _m(2), _m(3)), WARN_AFTER, FAIL_AFTER, True)
    assert verdict == freshness.Verdict(WARN, "t1 is empty although files up to 2019-10-01 00:02 landed")


def test_the_newest_landed_minute_counts_waiting_and_claimed_files_from_an_hour_on(tmp_path):
    lake = LocalLake(tmp_path / "lake")
    for name in ("2019-10-01-00-59-00-s1.csv", "2019-10-01-01-07-00-s1.csv", "weird name.csv",
                 "2019-10-01-09-00-00-s1.csv"):  # the last one: a producer's clock running ahead
        lake.write_bytes(f"landing/{name}", b"x")
    lake.write_text("manifests/2019-10-01-01.json", json.dumps({"hour": "x", "files": {
        "a": {"minute": "2019-10-01T01:12:00+00:00", "status": "accepted"},
        "b": {"minute": "2019-10-01T01:30:00+00:00", "status": "quarantined"}}}))
    lake.write_text("manifests/2019-10-01-00.json", json.dumps({"hour": "x", "files": {
        "c": {"minute": "2019-10-01T00:50:00+00:00", "status": "accepted"}}}))
    now = _m(120)
    assert freshness.newest_landed_minute(lake, _m(60), now) == _m(72)  # manifest 01 wins over landing 01:07
    lake.delete("manifests/2019-10-01-01.json")
    assert freshness.newest_landed_minute(lake, _m(60), now) == _m(67)
    assert freshness.newest_landed_minute(lake, _m(30), now) == _m(67)  # hour 00 is read too, and is older
    assert freshness.newest_landed_minute(lake, None, _m(55)) == _m(50)  # only what is not in the future


def _platform(tmp_path, pg_url, monkeypatch, **env):
    platform = make_platform(tmp_path, pg_url, monkeypatch, **env)
    for name, data in sample_files("2019-10-01 00:00", 4, events_per_minute=40, servers=1):
        platform.land(name, data)
    assert not platform.process().failed  # t1 ends at 00:03, the rankings cover 00:03
    return platform


def _tick(platform, cursor=None):
    sensor = platform.defs.resolve_sensor_def(SENSOR)
    context = dg.build_sensor_context(instance=platform.instance, cursor=cursor, definitions=platform.defs,
                                      resources=platform.defs.resources)
    return sensor(context)


def _by_check(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {dg.AssetCheckKey(e.asset_key, e.check_name).to_user_string(): e for e in result.asset_events}


@pytest.mark.integration
def test_the_sensor_records_both_checks_and_alerts_once_per_change_of_status(tmp_path, pg_url, monkeypatch,
                                                                             webhook):
    platform = _platform(tmp_path, pg_url, monkeypatch)
    late_name, late_data = sample_files("2019-10-01 00:09", 1, events_per_minute=40, servers=1)[0]
    platform.land(late_name, late_data)  # landed, not processed yet: t1 is 6 minutes behind it

    first = _tick(platform)
    checks = _by_check(first)
    assert sorted(checks) == ["events/rankings:rankings_freshness", "events/t1_minute:t1_freshness"]
    t1 = checks["events/t1_minute:t1_freshness"]
    assert (t1.passed, t1.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert t1.description == ("t1: newest minute 2019-10-01 00:03, 6.0 min behind the newest landed file (over 3 min); "
                              "the wall clock is not judged (PIPELINE_PARTITIONS_END is set: a replay of history)")
    assert t1.metadata["lag_behind_landing_s"].value == 360.0
    assert t1.metadata["newest_landed_minute"].value == "2019-10-01 00:09:00+00:00"
    ranked = checks["events/rankings:rankings_freshness"]
    assert ranked.metadata["newest_minute"].value == "2019-10-01 00:03:00+00:00" and not ranked.passed
    alerts = [payload for _, payload in webhook.received]
    assert [(a["check"], a["previous"], a["status"]) for a in alerts] == [
        ("events/t1_minute:t1_freshness", None, WARN), ("events/rankings:rankings_freshness", None, WARN)]
    assert {content_type for content_type, _ in webhook.received} == {"application/json"}
    assert alerts[0]["kind"] == "freshness" and alerts[0]["lag_behind_landing_s"] == 360.0

    second = _tick(platform, first.cursor)
    assert len(second.asset_events) == 2 and len(webhook.received) == 2  # same status: no new alert

    assert not platform.process().failed  # 00:09 is in t1 and the rankings now
    third = _tick(platform, second.cursor)
    assert all(e.passed for e in third.asset_events)
    recovered = [payload for _, payload in webhook.received[2:]]
    assert [(a["previous"], a["status"], a["recovered"]) for a in recovered] == [(WARN, PASS, True)] * 2
    assert json.loads(third.cursor) == {"events/rankings:rankings_freshness": PASS,
                                        "events/t1_minute:t1_freshness": PASS}


@pytest.mark.integration
def test_a_refusing_webhook_fails_the_tick_so_the_alert_is_sent_again(tmp_path, pg_url, monkeypatch, webhook):
    platform = _platform(tmp_path, pg_url, monkeypatch)
    platform.land(*sample_files("2019-10-01 00:20", 1, events_per_minute=40, servers=1)[0])  # 17 min: FAIL
    webhook.status = 500
    with pytest.raises(NotificationError, match="answered HTTP 500"):
        _tick(platform)
    webhook.status = 204
    result = _tick(platform)  # no cursor was stored by the failed tick: the change is still new
    assert [(p["status"], p["previous"]) for _, p in webhook.received[-2:]] == [(FAIL, None), (FAIL, None)]
    assert {e.severity for e in result.asset_events} == {dg.AssetCheckSeverity.ERROR}


@pytest.mark.integration
def test_live_data_is_judged_against_the_wall_clock_too(tmp_path, pg_url, monkeypatch):
    platform = _platform(tmp_path, pg_url, monkeypatch)
    live = dataclasses.replace(platform.settings, partitions_end=None)  # open-ended: live data
    lake, warehouse = platform.lake, platform.warehouse
    at = {m: evaluate(lake, warehouse, live, now=_m(m))[keys.T1_FRESHNESS][1] for m in (6, 8, 15)}
    assert [at[m].status for m in (6, 8, 15)] == [PASS, WARN, FAIL]  # 2, 4 and 11 min after 00:04
    assert at[15].description == "t1: newest minute 2019-10-01 00:03, 11.0 min behind the wall clock (over 10 min)"
    replay = evaluate(lake, warehouse, platform.settings, now=_m(15))[keys.T1_FRESHNESS][1]
    assert replay.status == PASS and "the wall clock is not judged" in replay.description
