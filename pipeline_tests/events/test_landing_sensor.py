"""The event sensors evaluated tick by tick, on a folder lake and on S3 (moto over HTTP).

Each test builds the platform's Definitions, evaluates the sensor with a context built like the
daemon's, and asserts the exact run requests (partition, run key, tags) and the cursor. Expected
run keys come from the objects the test itself lists in the lake, so they follow the storage's
own fingerprints (mtime on a folder, ETag on S3).
"""

from __future__ import annotations

import dataclasses
import json

import dagster as dg
import pytest

from pipeline.batch import execute_request
from pipeline.events.jobs import INGEST_JOB
from pipeline.events.sensors import file_set_key
from pipeline.resources.lake import LakeObject
from pipeline_tests.events.platform_fixture import Platform, make_platform, sample_files

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


def after(key: str) -> str:
    return json.dumps({"after": key})


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
    assert cursor == after("")


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
    assert cursor == after("")  # a short page: the next tick lists from the start again

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
    assert cursor == after("")


@both_lakes
def test_a_file_after_the_last_partition_waits_in_landing(build):
    platform = build()  # PIPELINE_PARTITIONS_END=2019-10-03: the last hour is 2019-10-02 23:00
    platform.land("2019-10-03-00-00-00-server1.csv", b"from a clock running ahead")

    requests, cursor = tick(platform)

    assert requests == []
    assert cursor == after("")
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
    assert cursor == after("")

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
    assert cursor == after("")

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
