"""A replay lands the planned files, at the planned pace, late, twice or shifted to now."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest

from pipeline.events.generate import GeneratorConfig, write_files
from pipeline.events.replay import ReplayPlan, ReplaySummary, plan_replay, replay, shift_file, shift_minutes
from pipeline.resources.lake import LocalLake

UTC = dt.timezone.utc
START = dt.datetime(2019, 10, 1, 0, 0, tzinfo=UTC)
# 5 minutes x 2 servers, listed out of order on purpose.
NAMES = [f"2019-10-01-00-0{minute}-00-server{server}.csv" for minute in (3, 0, 4, 1, 2) for server in (2, 1)]
IN_TIME_ORDER = sorted(NAMES)


class RecordingLake(LocalLake):
    """A folder lake that remembers every write and whether the key was already there."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.writes: list[tuple[str, bytes, bool]] = []

    def write_bytes(self, key: str, data: bytes, durable: bool = True) -> None:
        self.writes.append((key, data, self.exists(key)))
        super().write_bytes(key, data, durable)


def _landing(lake: LocalLake) -> list[str]:
    return [obj.name for obj in lake.list("landing/")]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "source"
    config = GeneratorConfig(start=START, minutes=5, events_per_minute=40, servers=2, products=30, users=60)
    write_files(config, folder)
    return folder


# --- the plan -------------------------------------------------------------------------------


def test_plan_lands_on_time_files_in_time_order_batched_by_minutes():
    steps = plan_replay(NAMES, minutes_per_step=2)
    assert [step.name for step in steps] == IN_TIME_ORDER
    assert [step.batch for step in steps] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert not any(step.late or step.duplicate for step in steps)


def test_plan_makes_no_batch_for_minutes_without_files():
    names = [f"2019-10-01-00-{minute}-00-server1.csv" for minute in ("00", "10", "11")]
    assert [step.batch for step in plan_replay(names, minutes_per_step=1)] == [0, 1, 2]


def test_plan_holds_late_files_to_the_end_and_lands_duplicates_in_a_later_batch():
    steps = plan_replay(NAMES, late_fraction=0.2, duplicate_fraction=0.3, seed=4)
    on_time = [step for step in steps if step.kind == "on_time"]
    late = [step for step in steps if step.late]
    duplicates = [step for step in steps if step.duplicate]
    assert (len(on_time), len(late), len(duplicates)) == (8, 2, 3)

    assert sorted(step.name for step in on_time + late) == IN_TIME_ORDER  # each file once, on time or late
    late_names = {step.name for step in late}
    assert [step.name for step in on_time] == [name for name in IN_TIME_ORDER if name not in late_names]
    last_on_time_batch = max(step.batch for step in on_time)
    assert steps[-2:] == late and all(step.batch == last_on_time_batch + 1 for step in late)
    assert [step.name for step in late] == sorted(step.name for step in late)

    position = {step.name: index for index, step in enumerate(steps) if step.kind == "on_time"}
    batch = {step.name: step.batch for step in on_time}
    for step in duplicates:
        assert step.name in position  # a duplicate repeats a file that landed on time
        assert steps.index(step) > position[step.name]
        assert batch[step.name] < step.batch <= batch[step.name] + 3


def test_plan_is_deterministic_for_a_seed():
    options = {"late_fraction": 0.2, "duplicate_fraction": 0.2}
    assert plan_replay(NAMES, seed=1, **options) == plan_replay(list(reversed(NAMES)), seed=1, **options)
    assert plan_replay(NAMES, seed=1, **options) != plan_replay(NAMES, seed=2, **options)


def test_plan_rejects_names_that_are_not_event_files():
    with pytest.raises(ValueError, match="notes.txt"):
        plan_replay(NAMES + ["notes.txt"])
    with pytest.raises(ValueError, match="2019-13-01-00-00-00-server1.csv"):
        plan_replay(["2019-13-01-00-00-00-server1.csv"])


@pytest.mark.parametrize(
    "options",
    [{"late_fraction": 1.5}, {"duplicate_fraction": -0.1}, {"minutes_per_step": 0}],
)
def test_plan_rejects_bad_options(options):
    with pytest.raises(ValueError):
        plan_replay(NAMES, **options)


def test_replay_options_are_checked_before_anything_lands():
    with pytest.raises(ValueError, match="pace_seconds"):
        ReplayPlan(pace_seconds=-1)


# --- shifting -------------------------------------------------------------------------------


def test_shift_minutes_brings_the_newest_file_to_the_current_minute():
    # Newest file 2019-10-01 00:04; now 2019-10-03 01:02:30 -> 2 days + 62 minutes - 4 minutes.
    assert shift_minutes(NAMES, dt.datetime(2019, 10, 3, 1, 2, 30, tzinfo=UTC)) == 2 * 1440 + 62 - 4
    assert shift_minutes(NAMES, dt.datetime(2019, 10, 1, 0, 4, 59, tzinfo=UTC)) == 0
    assert shift_minutes(NAMES, dt.datetime(2019, 10, 1, 0, 1, tzinfo=UTC)) == -3


CSV = (
    b"event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
    b"2019-10-31 23:59:05 UTC,view,1004856,2053013555631882655,electronics.smartphone,samsung,130.76,"
    b"543272936,8187d148-3c41-46d4-b0c0-9c08cd9dc564\n"
    b"2019-10-31 23:59:59 UTC,purchase,1004857,2053013555631882655,,,2019.31,543272937,"
    b"2019-10-31 23:59:59 UTC\n"
)
SHIFTED = (
    b"event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
    b"2019-11-01 00:01:05 UTC,view,1004856,2053013555631882655,electronics.smartphone,samsung,130.76,"
    b"543272936,8187d148-3c41-46d4-b0c0-9c08cd9dc564\n"
    b"2019-11-01 00:01:59 UTC,purchase,1004857,2053013555631882655,,,2019.31,543272937,"
    b"2019-10-31 23:59:59 UTC\n"
)


def test_shift_file_moves_name_and_event_times_only():
    name, data = shift_file("2019-10-31-23-59-00-server3.csv", CSV, 2)
    assert name == "2019-11-01-00-01-00-server3.csv"
    assert data == SHIFTED  # the time-like text in the last column is not an event_time


def test_shift_file_moves_back_and_handles_gzip():
    name, data = shift_file("2019-11-01-00-01-00-server3.csv.gz", gzip.compress(SHIFTED), -2)
    assert name == "2019-10-31-23-59-00-server3.csv.gz"
    assert gzip.decompress(data) == CSV


@pytest.mark.parametrize(("minutes", "expected"), [(1, ("00:06", "00:07")), (-1, ("00:04", "00:05"))])
def test_shift_moves_every_line_once_when_a_file_spans_minutes(minutes, expected):
    # Rows of 00:05 and 00:06 shifted by one minute: no row may move twice.
    data = b"event_time,event_type\n2019-10-01 00:05:10 UTC,view\n2019-10-01 00:06:20 UTC,view\n"
    _, shifted = shift_file("2019-10-01-00-05-00-server1.csv", data, minutes)
    first, second = expected
    assert shifted == (
        f"event_time,event_type\n2019-10-01 {first}:10 UTC,view\n2019-10-01 {second}:20 UTC,view\n".encode()
    )


def test_shift_by_zero_changes_nothing():
    assert shift_file("2019-10-31-23-59-00-server3.csv", CSV, 0) == ("2019-10-31-23-59-00-server3.csv", CSV)


def test_shift_file_refuses_files_it_cannot_shift():
    with pytest.raises(ValueError, match="event_time"):
        shift_file("2019-10-31-23-59-00-server3.csv", b"a,b\n1,2\n", 5)
    with pytest.raises(ValueError, match="gzip"):
        shift_file("2019-10-31-23-59-00-server3.csv.gz", gzip.compress(CSV)[:30], 5)


# --- landing --------------------------------------------------------------------------------


def test_replay_lands_every_file_at_once(source: Path, lake: LocalLake):
    calls: list[float] = []
    progressed: list[int] = []
    summary = replay(source, lake, sleep=calls.append, progress=progressed.append)

    names = sorted(path.name for path in source.iterdir())
    assert len(names) == 10
    assert _landing(lake) == names
    assert all(lake.read_bytes(f"landing/{name}") == (source / name).read_bytes() for name in names)
    total = sum((source / name).stat().st_size for name in names)
    assert summary == ReplaySummary(landed=10, late=0, duplicates=0, bytes=total, shifted_minutes=0)
    assert calls == [] and progressed == [1] * 10


def test_replay_paces_batches_of_minutes(source: Path, lake: LocalLake):
    seen_at_each_pause: list[tuple[float, list[str]]] = []

    def fake_sleep(seconds: float) -> None:
        seen_at_each_pause.append((seconds, _landing(lake)))

    replay(source, lake, pace_seconds=1.5, minutes_per_step=2, sleep=fake_sleep)

    # Minutes 0-1, then 2-3, then 4: two pauses, each after a whole batch landed.
    assert [seconds for seconds, _ in seen_at_each_pause] == [1.5, 1.5]
    first_batch = [f"2019-10-01-00-0{minute}-00-server{server}.csv" for minute in (0, 1) for server in (1, 2)]
    assert seen_at_each_pause[0][1] == first_batch
    assert len(seen_at_each_pause[1][1]) == 8
    assert len(_landing(lake)) == 10


def test_replay_lands_late_files_last_and_duplicates_as_new_objects(source: Path, tmp_path: Path):
    lake = RecordingLake(tmp_path / "recorded-lake")
    claimed: list[str] = []

    def platform_claims_landed_files(seconds: float) -> None:
        """What the platform does between two batches: move landed files out of landing/."""
        for obj in list(lake.list("landing/")):
            claimed.append(obj.name)
            lake.move(obj.key, f"raw/{len(claimed)}/{obj.name}")

    summary = replay(
        source,
        lake,
        pace_seconds=60,
        late_fraction=0.2,
        duplicate_fraction=0.2,
        seed=5,
        sleep=platform_claims_landed_files,
    )
    assert (summary.landed, summary.late, summary.duplicates) == (12, 2, 2)
    assert summary.bytes == sum(len(data) for _, data, _ in lake.writes)

    names = [key.removeprefix("landing/") for key, _, _ in lake.writes]
    assert sorted(set(names)) == sorted(path.name for path in source.iterdir())
    assert not any(existed for _, _, existed in lake.writes)  # every landing is a new object
    repeated = {name for name in names if names.count(name) == 2}
    assert len(repeated) == 2
    for name in repeated:
        first, second = (data for key, data, _ in lake.writes if key == f"landing/{name}")
        assert first == second == (source / name).read_bytes()
    plan = plan_replay(sorted(set(names)), late_fraction=0.2, duplicate_fraction=0.2, seed=5)
    planned_late = [step.name for step in plan if step.late]
    assert names[-2:] == planned_late  # the late files land last


def test_replay_shifted_to_now_moves_names_and_times_together(source: Path, lake: LocalLake):
    now = dt.datetime(2019, 10, 3, 1, 2, 30, tzinfo=UTC)
    summary = replay(source, lake, shift_to_now=True, now=now)

    shift = 2 * 1440 + 62 - 4  # newest source minute is 2019-10-01 00:04
    assert summary.shifted_minutes == shift
    # Source minute 2019-10-01 00:MM -> 2019-10-03 HH:MM.
    new_minute_of = {"00": "00-58", "01": "00-59", "02": "01-00", "03": "01-01", "04": "01-02"}
    expected = {
        f"2019-10-01-00-{old}-00-server{server}.csv": f"2019-10-03-{new}-00-server{server}.csv"
        for old, new in new_minute_of.items()
        for server in (1, 2)
    }
    assert _landing(lake) == sorted(expected.values())
    assert max(expected.values()) == "2019-10-03-01-02-00-server2.csv"  # newest file = now's minute
    for old, new in expected.items():
        old_lines = (source / old).read_bytes().splitlines()
        new_lines = lake.read_bytes(f"landing/{new}").splitlines()
        assert new_lines[0] == old_lines[0]
        new_minute = f"2019-10-03 {new[11:13]}:{new[14:16]}:".encode()
        assert all(line.startswith(new_minute) for line in new_lines[1:])
        # From the seconds on, every byte is unchanged.
        assert [line[17:] for line in new_lines[1:]] == [line[17:] for line in old_lines[1:]]


def test_replay_shifts_gzip_sources(tmp_path: Path, lake: LocalLake):
    folder = tmp_path / "packed"
    write_files(GeneratorConfig(start=START, minutes=2, events_per_minute=20, servers=1, gzip=True), folder)
    replay(folder, lake, shift_to_now=True, now=dt.datetime(2019, 10, 1, 0, 11, tzinfo=UTC))
    assert _landing(lake) == ["2019-10-01-00-10-00-server1.csv.gz", "2019-10-01-00-11-00-server1.csv.gz"]
    lines = gzip.decompress(lake.read_bytes("landing/2019-10-01-00-11-00-server1.csv.gz")).splitlines()
    assert len(lines) == 21 and all(line.startswith(b"2019-10-01 00:11:") for line in lines[1:])


def test_replay_refuses_a_missing_or_empty_source(tmp_path: Path, lake: LocalLake):
    with pytest.raises(ValueError, match="not a folder"):
        replay(tmp_path / "nowhere", lake)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no event files"):
        replay(tmp_path / "empty", lake)
