"""The event sensors evaluated tick by tick, on a folder lake and on S3 (moto over HTTP).

Each test builds the platform's Definitions, evaluates the sensor with a context built like the
daemon's, and asserts the exact run requests (partition, run key, tags) and the cursor. Expected
run keys come from the objects the test itself lists in the lake, so they follow the storage's
own fingerprints (mtime on a folder, ETag on S3).
"""

from __future__ import annotations

import dataclasses
import json
import time
from types import SimpleNamespace

import dagster as dg
import pandas as pd
import pytest

from pipeline.batch import execute_request
from pipeline.events.jobs import INGEST_JOB
from pipeline.events import assets
from pipeline.events.claim import LISTED_TAG
from pipeline.events.sensors import PENDING_GRACE, Claimer, claimers, file_set_key
from pipeline.resources.lake import LakeObject, LocalLake
from pipeline_tests.events.platform_fixture import Platform, make_platform, sample_files
from pipeline_tests.events.test_exactly_once import assert_matches_oracle

H00, H01, H02 = (f"2019-10-01-0{h}:00" for h in range(3))
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
RETRIES = {"dagster/max_retries": "2"}  # the daemon re-runs a failed or killed ingest run


both_lakes = pytest.mark.parametrize("build", ["folder", "s3"], indirect=True)


@pytest.fixture
def build(request, tmp_path, pg_url, monkeypatch):
    """Builds a platform on the lake kind given by indirect parametrization, with extra settings."""

    def _build(**env: str) -> Platform:
        if request.param == "folder":
            return make_platform(tmp_path, pg_url, monkeypatch, **env)
        s3_lake = request.getfixturevalue("s3_lake")
        platform = make_platform(tmp_path, pg_url, monkeypatch, PIPELINE_LAKE_URL=s3_lake.url,
                                 AWS_ENDPOINT_URL=request.getfixturevalue("s3_endpoint"), **env)
        return dataclasses.replace(platform, lake=s3_lake)

    return _build


def tick(platform: Platform, cursor: str | None = None, sensor_name: str = "landing_sensor"):
    sensor = platform.defs.resolve_sensor_def(sensor_name)
    context = dg.build_sensor_context(instance=platform.instance, cursor=cursor, definitions=platform.defs,
                                      resources=platform.defs.resources)
    result = sensor(context)
    return list(result.run_requests or []), result.cursor


def land(platform: Platform, files: list[tuple[str, bytes]]) -> None:
    for name, data in files:
        platform.land(name, data)


def listed(platform: Platform, prefix: str, *names: str) -> list[LakeObject]:
    objects = {o.name: o for o in platform.lake.list(prefix)}
    return [objects[name] for name in names]


def names(files: list[tuple[str, bytes]]) -> list[str]:
    return [name for name, _ in files]


def live_tags(hour: str) -> dict[str, str]:
    return {"clickflow/hour": hour, "dagster/priority": "10", "backlog": "false", **RETRIES}


def live(hour: str, objects: list[LakeObject]) -> dg.RunRequest:
    return dg.RunRequest(run_key=file_set_key(hour, objects), partition_key=hour, tags=live_tags(hour))


def backlog(hour: str, objects: list[LakeObject]) -> dg.RunRequest:
    tags = {"clickflow/hour": hour, "dagster/priority": "0", "backlog": "true", **RETRIES}
    return dg.RunRequest(run_key=file_set_key(hour, objects), partition_key=hour, tags=tags)


def after(live: str = "", backlog: str = "") -> str:
    """The cursor: where the live and the backlog lanes continue on next tick."""
    return json.dumps({"live": live, "backlog": backlog})


def run_all(platform: Platform, requests: list[dg.RunRequest]) -> None:
    for request in requests:
        _, ok = execute_request(platform.defs, platform.instance, INGEST_JOB, request, {})
        assert ok, request


@both_lakes
def test_files_of_two_hours_give_one_live_request_per_hour(build):
    platform = build()
    files = sample_files("2019-10-01 00:59", 2, events_per_minute=40)  # 00:59 and 01:00, two servers
    land(platform, files)

    requests, cursor = tick(platform)

    assert requests == [live(H00, listed(platform, "landing/", *names(files[:2]))),
                        live(H01, listed(platform, "landing/", *names(files[2:])))]
    assert cursor == after()


@both_lakes
def test_pagination_advances_the_cursor_then_starts_over(build):
    platform = build(PIPELINE_LANDING_PAGE_SIZE="2")
    files = sample_files("2019-10-01 00:59", 2, events_per_minute=40)[:3]
    land(platform, files)
    objects = listed(platform, "landing/", *names(files))

    first, cursor = tick(platform)
    assert first == [live(H00, objects[:2])]
    assert cursor == after(objects[1].key)

    second, cursor = tick(platform, cursor)
    assert second == [live(H01, objects[2:])]
    assert cursor == after()  # a short page: the next tick lists from the start again

    again, _ = tick(platform, cursor)
    assert again == first  # nothing was claimed meanwhile: the same first page, the same run key


@both_lakes
def test_the_same_tick_twice_gives_identical_run_keys(build):
    platform = build()
    land(platform, sample_files("2019-10-01 00:58", 3, events_per_minute=40))

    first, first_cursor = tick(platform)
    second, second_cursor = tick(platform)

    assert [r.run_key for r in first] == [r.run_key for r in second]
    assert len({r.run_key for r in first}) == 2
    assert first == second and first_cursor == second_cursor


@both_lakes
def test_unusable_names_are_quarantined_with_a_reason_and_request_nothing(build):
    platform = build()
    good = sample_files("2019-10-01 00:00", 1, events_per_minute=40, servers=1)
    land(platform, good)
    platform.land("weird name!.csv", b"some bytes")
    platform.land("2019-09-30-23-59-00-server1.csv", b"before the first partition")

    requests, cursor = tick(platform)

    assert requests == [live(H00, listed(platform, "landing/", *names(good)))]
    assert [o.name for o in platform.lake.list("landing/")] == names(good)
    quarantined = {o.name.split("-", 1)[1]: o.key for o in platform.lake.list("quarantine/")}
    early_name = "2019-09-30-23-59-00-server1.csv"
    assert sorted(quarantined) == [early_name, f"{early_name}.reason.json", "weird_name_.csv",
                                   "weird_name_.csv.reason.json"]
    assert platform.lake.read_bytes(quarantined["weird_name_.csv"]) == b"some bytes"
    reason = json.loads(platform.lake.read_text(quarantined["weird_name_.csv.reason.json"]))
    assert reason["original_name"] == "weird name!.csv"
    assert reason["reason"].startswith("bad file name:")
    early = json.loads(platform.lake.read_text(quarantined[f"{early_name}.reason.json"]))
    assert "PIPELINE_PARTITIONS_START=2019-10-01" in early["reason"]
    assert cursor == after()


@both_lakes
def test_a_file_after_the_last_partition_waits_in_landing(build):
    platform = build()  # PIPELINE_PARTITIONS_END=2019-10-03: the last hour is 2019-10-02 23:00
    platform.land("2019-10-03-00-00-00-server1.csv", b"from a clock running ahead")

    requests, cursor = tick(platform)

    assert requests == []
    assert cursor == after()
    assert [o.name for o in platform.lake.list("landing/")] == ["2019-10-03-00-00-00-server1.csv"]
    assert list(platform.lake.list("quarantine/")) == []


@both_lakes
def test_a_file_older_than_the_newest_t1_minute_is_backlog_unless_its_hour_is_live(build):
    platform = build()
    files = sample_files("2019-10-01 00:00", 4, events_per_minute=40)
    held_back = files[3]  # 00:01 from server2
    land(platform, [f for f in files if f is not held_back])
    assert not platform.process().failed  # t1 now ends at 00:03
    next_hour = sample_files("2019-10-01 01:00", 1, events_per_minute=40, servers=1)
    land(platform, [held_back] + next_hour)

    requests, cursor = tick(platform)

    assert requests == [live(H01, listed(platform, "landing/", *names(next_hour))),
                        backlog(H00, listed(platform, "landing/", held_back[0]))]
    assert cursor == after()

    # A live file of the same hour takes the late one along in one live run.
    live_file = sample_files("2019-10-01 00:04", 1, events_per_minute=40, servers=1)
    land(platform, live_file)
    requests, _ = tick(platform)
    assert requests == [live(H00, listed(platform, "landing/", held_back[0], *names(live_file))),
                        live(H01, listed(platform, "landing/", *names(next_hour)))]


# S3 ETags fingerprint content only, so an identical re-landing lists exactly like the landing
# before it: the sensor must move the run key on past the succeeded run.
@both_lakes
def test_an_identical_file_landed_again_after_its_run_gets_a_new_run_key(build):
    platform = build()
    files = sample_files("2019-10-01 00:00", 1, events_per_minute=40, servers=1)
    land(platform, files)
    first, _ = tick(platform)
    run_all(platform, first)

    land(platform, files)
    again, _ = tick(platform)

    assert [(r.partition_key, r.tags) for r in again] == [(H00, live_tags(H00))]
    assert again[0].run_key != first[0].run_key  # else it is never run: the file stays in landing/


@both_lakes
def test_late_files_of_three_hours_give_one_range_request(build):
    platform = build()
    land(platform, sample_files("2019-10-01 03:00", 1, events_per_minute=40))
    assert not platform.process().failed  # t1 now ends at 03:00
    late = [f for start in ("00:10", "01:10", "02:10")
            for f in sample_files(f"2019-10-01 {start}", 1, events_per_minute=40, servers=1)]
    land(platform, late)

    requests, cursor = tick(platform)

    objects = listed(platform, "landing/", *names(late))
    assert requests == [dg.RunRequest(
        run_key=file_set_key(f"{H00}..{H02}", objects),
        tags={"backlog": "true", "dagster/priority": "0", "clickflow/hour": "backlog",
              RANGE_START: H00, RANGE_END: H02, **RETRIES},
    )]
    assert requests[0].partition_key is None
    assert cursor == after()

    run_all(platform, requests)  # one run claims all three hours
    assert list(platform.lake.list("landing/")) == []
    assert sorted(o.name for o in platform.lake.list("manifests/")) == [
        "2019-10-01-00.json", "2019-10-01-01.json", "2019-10-01-02.json", "2019-10-01-03.json"]


@both_lakes
def test_archive_sensor_requests_settled_hours_only(build):
    platform = build(PIPELINE_ARCHIVE_BLOCK="hour", PIPELINE_ARCHIVE_SETTLE_MINUTES="30")
    first = sample_files("2019-10-01 00:00", 1, events_per_minute=40)
    land(platform, first + sample_files("2019-10-01 01:20", 1, events_per_minute=40))
    run_all(platform, tick(platform)[0])

    # t1 ends at 01:20: settled up to 00:50, so hour 00 (until 01:00) is not settled yet.
    assert tick(platform, sensor_name="archive_sensor")[0] == []

    land(platform, sample_files("2019-10-01 01:40", 1, events_per_minute=40, servers=1))
    run_all(platform, tick(platform)[0])

    # t1 ends at 01:40: settled up to 01:10, hour 00 is settled, hour 01 is not.
    requests, _ = tick(platform, sensor_name="archive_sensor")
    raw = listed(platform, "raw/2019-10-01-00/", *names(first))
    assert requests == [dg.RunRequest(run_key=file_set_key(f"archive-{H00}", raw), partition_key=H00,
                                      tags={"dagster/priority": "-5"})]


# --- a surge: files moving under the listing, live files first, no pile-up of runs --------------

H03 = "2019-10-01-03:00"


def queue(platform: Platform, request: dg.RunRequest) -> str:
    """A run for ``request`` as the daemon creates it, not started yet. (NOT_STARTED: only a run
    with a code location's origin can be QUEUED; the sensor treats both alike.)"""
    tags = {**request.tags, "dagster/run_key": request.run_key}
    if request.partition_key:
        tags["dagster/partition"] = request.partition_key
    run = platform.instance.create_run_for_job(platform.defs.resolve_job_def(INGEST_JOB), tags=tags)
    return run.run_id


def start(platform: Platform, run_id: str) -> None:
    """The run's worker has started it (what the instance records when a run begins)."""
    event = dg.DagsterEvent(dg.DagsterEventType.RUN_START.value, job_name=INGEST_JOB)
    platform.instance.report_dagster_event(event, run_id)


def lists(platform: Platform, run_id: str, hour: str) -> None:
    """The run's claim begins listing ``hour`` now and says so in its tag (as raw_files does)."""
    time.sleep(1.1)  # S3's LastModified has whole seconds: land and list in different seconds
    platform.instance.add_run_tags(run_id, {LISTED_TAG: json.dumps({hour: time.time()})})
    time.sleep(1.1)


def with_t1_until_03_00(platform: Platform) -> None:
    land(platform, sample_files("2019-10-01 03:00", 1, events_per_minute=40, servers=1))
    assert not platform.process().failed


def late_files(*starts: str, minutes: int = 1) -> list[tuple[str, bytes]]:
    return [f for start in starts
            for f in sample_files(f"2019-10-01 {start}", minutes, events_per_minute=40, servers=1)]


@both_lakes
def test_a_tick_does_not_fail_when_listed_objects_move_away_before_they_are_read(build, monkeypatch):
    platform = build()
    good = sample_files("2019-10-01 00:00", 1, events_per_minute=40, servers=1)
    land(platform, good)
    platform.land("weird name!.csv", b"taken by another process")
    platform.lake.write_text("pending/2019-10-01-01", "2019-10-01T01:00:00+00:00")
    lake_type = type(platform.lake)
    real = lake_type.list_page

    def list_then_lose(self, prefix, *args, **kwargs):
        page = real(self, prefix, *args, **kwargs)
        for obj in page:  # gone between the listing and the read: claimed, or cleared by t2
            if obj.name in ("weird name!.csv", "2019-10-01-01"):
                self.delete(obj.key)
        return page

    monkeypatch.setattr(lake_type, "list_page", list_then_lose)
    requests, cursor = tick(platform)
    monkeypatch.setattr(lake_type, "list_page", real)

    assert requests == [live(H00, listed(platform, "landing/", *names(good)))]
    assert cursor == after()
    assert list(platform.lake.list("quarantine/")) == []


@both_lakes
def test_live_files_are_requested_on_the_first_tick_whatever_the_backlog(build):
    platform = build(PIPELINE_LANDING_PAGE_SIZE="2")
    with_t1_until_03_00(platform)
    late = late_files("00:10", "01:10", "02:10", minutes=2)  # three pages of backlog
    fresh = sample_files("2019-10-01 03:01", 1, events_per_minute=40, servers=1)
    land(platform, late + fresh)
    objects = listed(platform, "landing/", *names(late))
    live_request = live(H03, listed(platform, "landing/", *names(fresh)))

    first, cursor = tick(platform)
    assert first == [live_request, backlog(H00, objects[0:2])]
    assert cursor == after(backlog=objects[1].key)

    second, cursor = tick(platform, cursor)
    assert second == [live_request, backlog(H01, objects[2:4])]
    assert cursor == after(backlog=objects[3].key)


@both_lakes
def test_a_full_backlog_page_ends_at_a_whole_hour(build):
    platform = build(PIPELINE_LANDING_PAGE_SIZE="3")
    with_t1_until_03_00(platform)
    late = late_files("00:10", "01:10", minutes=2)
    land(platform, late)
    objects = listed(platform, "landing/", *names(late))

    first, cursor = tick(platform)
    assert first == [backlog(H00, objects[:2])]  # not 01:10 alone: hour 01 waits for the next page
    assert cursor == after(backlog=objects[1].key)

    second, cursor = tick(platform, cursor)
    assert second == [backlog(H01, objects[2:])]
    assert cursor == after()


@both_lakes
def test_no_run_is_requested_for_an_hour_whose_run_has_not_started(build):
    platform = build()
    land(platform, sample_files("2019-10-01 00:00", 1, events_per_minute=40, servers=1))
    (request,), _ = tick(platform)
    queue(platform, request)

    land(platform, sample_files("2019-10-01 00:01", 1, events_per_minute=40, servers=1))
    assert tick(platform)[0] == []  # the queued run claims both files when it starts

    other_hour = sample_files("2019-10-01 01:00", 1, events_per_minute=40, servers=1)
    land(platform, other_hour)
    assert tick(platform)[0] == [live(H01, listed(platform, "landing/", *names(other_hour)))]


@both_lakes
def test_a_queued_backlog_run_does_not_hold_back_live_files_of_its_hour(build):
    platform = build()
    land(platform, sample_files("2019-10-01 03:00", 2, events_per_minute=40, servers=1))
    assert not platform.process().failed  # t1 ends at 03:01
    late = late_files("03:00")  # server1 is in already; the same minute from server2 is late
    platform.land(late[0][0].replace("server1", "server2"), late[0][1])
    (request,), _ = tick(platform)
    assert request.tags["backlog"] == "true"
    queue(platform, request)

    fresh = sample_files("2019-10-01 03:02", 1, events_per_minute=40, servers=1)
    land(platform, fresh)
    requests, _ = tick(platform)  # the late file rides along; the backlog run may find nothing left
    assert requests == [live(H03, listed(platform, "landing/", late[0][0].replace("server1", "server2"),
                                         *names(fresh)))]


@both_lakes
def test_a_running_run_covers_the_files_landed_before_it_listed_their_hour(build):
    platform = build()
    land(platform, sample_files("2019-10-01 00:00", 1, events_per_minute=40, servers=1))
    (request,), _ = tick(platform)
    run_id = queue(platform, request)
    start(platform, run_id)
    land(platform, sample_files("2019-10-01 00:01", 1, events_per_minute=40, servers=1))
    assert tick(platform)[0] == []  # started, but its claim has not listed hour 00 yet: it takes this one

    lists(platform, run_id, H00)
    landed_after_the_listing = sample_files("2019-10-01 00:02", 1, events_per_minute=40, servers=1)
    land(platform, landed_after_the_listing)
    follow_up = live(H00, listed(platform, "landing/", *names(landed_after_the_listing)))
    assert tick(platform)[0] == [follow_up]
    assert tick(platform)[0] == [follow_up]  # the same run key however often it ticks: one follow-up
    queue(platform, follow_up)

    land(platform, sample_files("2019-10-01 00:03", 1, events_per_minute=40, servers=1))
    assert tick(platform)[0] == []  # the queued follow-up takes this one along


@both_lakes
def test_a_restarted_listing_requests_no_second_run_for_requested_backlog(build):
    platform = build(PIPELINE_LANDING_PAGE_SIZE="2")
    with_t1_until_03_00(platform)
    land(platform, late_files("00:10", "01:10", minutes=2))

    first, cursor = tick(platform)
    second, cursor = tick(platform, cursor)
    assert [r.partition_key for r in first + second] == [H00, H01]
    runs = [queue(platform, request) for request in first + second]

    third, cursor = tick(platform, cursor)  # the listing starts over: both hours are taken care of
    assert third == [] and cursor == after()
    start(platform, runs[0])
    assert tick(platform, cursor)[0] == []  # started after every backlog file landed


def _run_while_a_file_lands(platform: Platform, request: dg.RunRequest, late, monkeypatch) -> list:
    """Runs ``request`` for real; as its claim moves its first file (landing/ is listed by then),
    ``late`` lands and the landing sensor ticks twice. Returns those ticks' requests."""
    during_run: list[list[dg.RunRequest]] = []
    real = LocalLake.move

    def a_file_lands_as_the_claim_moves(self, src, dst):
        if not during_run:
            land(platform, late)
            during_run.append(tick(platform)[0])
            during_run.append(tick(platform)[0])
        real(self, src, dst)

    monkeypatch.setattr(LocalLake, "move", a_file_lands_as_the_claim_moves)
    run_all(platform, [request])
    monkeypatch.setattr(LocalLake, "move", real)
    return during_run


def _two_minutes_requested_and_a_third(tmp_path, pg_url, monkeypatch):
    """Minutes 00:00-00:01 (two servers) landed and requested; 00:02 (one server) to land later."""
    platform = make_platform(tmp_path, pg_url, monkeypatch)
    first = sample_files("2019-10-01 00:00", 2, events_per_minute=40)
    land(platform, first)
    (request,), _ = tick(platform)
    return platform, first, sample_files("2019-10-01 00:02", 1, events_per_minute=40, servers=1), request


def test_a_live_run_picks_up_a_file_landed_while_it_worked_before_it_ends(tmp_path, pg_url, monkeypatch):
    """The race of a live hour: a file lands after the run of its hour listed landing/. No tick asks
    for another run while the run works; the run takes the file in a round of its own before it
    ends (raw_files and t1_minute materialized again, with their checks), nothing is left, and
    the tables equal the oracle over every file."""
    platform, first, landed_late, request = _two_minutes_requested_and_a_third(tmp_path, pg_url, monkeypatch)

    assert _run_while_a_file_lands(platform, request, landed_late, monkeypatch) == [[], []]

    assert list(platform.lake.list("landing/")) == []
    assert tick(platform)[0] == []
    (run,) = platform.instance.get_runs()
    raw = [e.asset_materialization for e in platform.instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        for e in [e.event_log_entry] if e.asset_materialization.asset_key == dg.AssetKey(["events", "raw_files"])]
    assert [m.metadata["files_claimed"].value for m in raw] == [4, 1]
    t2 = platform.instance.get_latest_materialization_event(dg.AssetKey(["events", "t2_hour"]))
    assert t2.asset_materialization.metadata["rounds_picked_up"].value == 1
    listed_at = json.loads(platform.instance.get_run_by_id(run.run_id).tags[LISTED_TAG])[H00]
    assert listed_at > max(o.modified for o in platform.lake.list("raw/"))  # its last look found nothing
    assert_matches_oracle(platform, tmp_path, first + landed_late)


def test_a_file_a_run_does_not_pick_up_is_claimed_by_exactly_one_follow_up(tmp_path, pg_url, monkeypatch):
    """With no time left to pick up (PICK_UP_SECONDS = 0), the run leaves the file: every tick asks
    for the same one follow-up, which takes it; nothing is left and the tables equal the oracle."""
    monkeypatch.setattr(assets, "PICK_UP_SECONDS", 0.0)
    platform, first, landed_late, request = _two_minutes_requested_and_a_third(tmp_path, pg_url, monkeypatch)

    # while it works, the run may still take the file: nothing is asked yet
    assert _run_while_a_file_lands(platform, request, landed_late, monkeypatch) == [[], []]

    follow_up = live(H00, listed(platform, "landing/", *names(landed_late)))
    assert tick(platform)[0] == [follow_up]
    assert tick(platform)[0] == [follow_up]  # the same run key: one run, however often it ticks
    run_all(platform, [follow_up])
    assert list(platform.lake.list("landing/")) == []
    assert tick(platform)[0] == []
    assert_matches_oracle(platform, tmp_path, first + landed_late)


def test_a_run_created_but_never_submitted_stops_covering_its_hour_after_the_grace(tmp_path, pg_url, monkeypatch):
    platform = make_platform(tmp_path, pg_url, monkeypatch)
    land(platform, sample_files("2019-10-01 00:00", 1, events_per_minute=40, servers=1))
    (request,), _ = tick(platform)
    queue(platform, request)  # NOT_STARTED: the daemon submits right after creating; this one never was
    now = pd.Timestamp.now(tz="UTC")
    assert claimers(platform.instance, now) == [Claimer(frozenset({H00}), live=True, started=False)]
    assert claimers(platform.instance, now + PENDING_GRACE + pd.Timedelta(seconds=1)) == []


def test_a_launched_live_run_lingers_two_sensor_intervals_for_its_hours_next_files(tmp_path, pg_url, monkeypatch):
    """A file landing while the run waits after its last round is taken by the same run."""
    platform = make_platform(tmp_path, pg_url, monkeypatch)
    launched, in_process = SimpleNamespace(remote_job_origin=object()), SimpleNamespace(remote_job_origin=None)
    assert assets.linger_seconds(launched, platform.settings) == 2 * platform.settings.sensor_interval_seconds
    assert assets.linger_seconds(in_process, platform.settings) == 0.0  # batch mode and tests do not wait

    first = sample_files("2019-10-01 00:00", 1, events_per_minute=40)
    next_minute = sample_files("2019-10-01 00:01", 1, events_per_minute=40)
    land(platform, first)
    (request,), _ = tick(platform)
    pauses = []

    def the_next_minute_lands_while_it_waits():
        if not pauses:
            land(platform, next_minute)
        pauses.append(True)

    monkeypatch.setattr(assets, "linger_seconds", lambda run, settings: 3.0)
    monkeypatch.setattr(assets, "_pause", the_next_minute_lands_while_it_waits)
    run_all(platform, [request])

    assert pauses and list(platform.lake.list("landing/")) == []
    t2 = platform.instance.get_latest_materialization_event(dg.AssetKey(["events", "t2_hour"]))
    assert t2.asset_materialization.metadata["rounds_picked_up"].value == 1
    assert tick(platform)[0] == []
    assert_matches_oracle(platform, tmp_path, first + next_minute)
