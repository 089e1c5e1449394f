"""Exactly once (DESIGN section 7): repeated ticks, a re-landed identical file, a retried run and
a run killed between its DELETE and its COPY never double a total and never lose a file.

Every test ends by comparing t1 and t2 with the DuckDB oracle over the accepted files, so a row
counted twice or missing shows up as a difference in the tables themselves.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline.batch import execute_request, tick
from pipeline.definitions import build_definitions
from pipeline.events import minutes
from pipeline.events.jobs import INGEST_JOB
from pipeline.events.tables import pairs, t1_table
from pipeline.settings import Settings
from pipeline_tests import processes
from pipeline_tests.events.event_oracle import assert_same, batch_oracle, to_hours
from pipeline_tests.events.platform_fixture import Platform, make_platform, sample_files, write_sources

H00, H01 = "2019-10-01-00:00", "2019-10-01-01:00"
PROJECT = Path(__file__).resolve().parents[2]


def files_across_two_hours() -> list[tuple[str, bytes]]:
    """00:58 to 01:01 from two servers: purchases in every minute, two hour partitions."""
    return sample_files("2019-10-01 00:58", 4, events_per_minute=120)


def land(platform: Platform, files: list[tuple[str, bytes]]) -> None:
    for name, data in files:
        platform.land(name, data)


def assert_matches_oracle(platform: Platform, tmp_path: Path, files: list[tuple[str, bytes]]) -> None:
    settings = platform.settings
    oracle = batch_oracle(write_sources(tmp_path, files), settings.events, settings.dimensions)
    for event, dimension in pairs(settings.events, settings.dimensions):
        expected = oracle[(event, dimension)]
        assert_same(platform.t1(event, dimension), expected, ["minute", dimension], f"t1 {event}/{dimension}")
        assert_same(platform.t2(event, dimension), to_hours(expected, event, dimension), ["hour", dimension],
                    f"t2 {event}/{dimension}")


def snapshot(platform: Platform) -> dict[str, pd.DataFrame]:
    """Every t1 and t2 table, sorted, for exact before/after comparisons."""
    tables = {}
    for event, dimension in pairs(platform.settings.events, platform.settings.dimensions):
        for label, frame, time_col in (("t1", platform.t1(event, dimension), "minute"),
                                       ("t2", platform.t2(event, dimension), "hour")):
            frame = frame.sort_values([time_col, dimension]).reset_index(drop=True)
            tables[f"{label} {event}/{dimension}"] = frame
    return tables


def assert_same_snapshot(actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        pd.testing.assert_frame_equal(actual[name], expected[name], obj=name)


def raw_files_metadata(platform: Platform, limit: int = 20) -> list[dict]:
    """Metadata of the newest raw_files materializations, newest first."""
    records = platform.instance.fetch_materializations(dg.AssetKey(["events", "raw_files"]), limit=limit).records
    return [{k: v.value for k, v in r.asset_materialization.metadata.items()} for r in records]


def ingest_job() -> dg.JobDefinition:
    """The ingest job as a reconstructable target (re-execution needs one), from the test's env."""
    return build_definitions(Settings.from_env()).resolve_job_def(INGEST_JOB)


def run(platform: Platform, request: dg.RunRequest) -> None:
    _, ok = execute_request(platform.defs, platform.instance, INGEST_JOB, request, {})
    assert ok, request


# --------------------------------------------------------------------------- (a) repeated ticks


def test_a_tick_evaluated_twice_and_executed_twice_counts_each_file_once(tmp_path, pg_url, monkeypatch):
    platform = make_platform(tmp_path, pg_url, monkeypatch)
    files = files_across_two_hours()
    land(platform, files)

    first, _ = tick(platform.defs, platform.instance, "landing_sensor", None)
    second, _ = tick(platform.defs, platform.instance, "landing_sensor", None)
    assert [r.partition_key for r in first] == [H00, H01]
    assert [r.run_key for r in second] == [r.run_key for r in first]

    for request in first + second:  # what a daemon without run-key dedup would do
        run(platform, request)

    assert list(platform.lake.list("landing/")) == []
    assert [m["files_claimed"] for m in raw_files_metadata(platform)] == [0, 0, 4, 4]
    assert_matches_oracle(platform, tmp_path, files)


# --------------------------------------------------------------------------- (b) re-landed file


def test_an_identical_file_landed_again_is_dropped_as_duplicate(tmp_path, pg_url, monkeypatch):
    platform = make_platform(tmp_path, pg_url, monkeypatch)
    files = files_across_two_hours()
    land(platform, files)
    assert not platform.process().failed
    manifest = platform.lake.read_text("manifests/2019-10-01-00.json")

    repeated = files[1]
    land(platform, [repeated])
    summary = platform.process()

    assert summary.runs[:1] == [(INGEST_JOB, H00, True)], summary
    newest = raw_files_metadata(platform, limit=1)[0]
    assert (newest["duplicate_files"], newest["files_claimed"], newest["dagster/row_count"]) == (1, 0, 0)
    assert platform.lake.read_text("manifests/2019-10-01-00.json") == manifest
    assert list(platform.lake.list("landing/")) == []
    assert_matches_oracle(platform, tmp_path, files)


def _staged_as_recorded(platform: Platform) -> None:
    """staged/ holds exactly the staged rows the manifests refer to: nothing half-claimed is left."""
    recorded = set()
    for obj in platform.lake.list("manifests/"):
        for entry in json.loads(platform.lake.read_text(obj.key))["files"].values():
            if entry["status"] == "accepted":
                recorded.add(entry["staged_key"])
    assert {o.key for o in platform.lake.list("staged/")} == recorded


def test_a_different_file_under_an_accepted_name_is_quarantined_and_leaves_nothing_staged(
        tmp_path, pg_url, monkeypatch):
    platform = make_platform(tmp_path, pg_url, monkeypatch)
    files = files_across_two_hours()
    adopted, other = files[2], files[3]
    land(platform, [f for f in files if f not in (adopted, other)])
    assert not platform.process().failed
    # A run killed after its move left `adopted` in raw/ unrecorded, and a different file with the
    # same name lands; and a different file lands under a name already accepted.
    platform.lake.write_bytes(f"raw/2019-10-01-00/{adopted[0]}", adopted[1])
    land(platform, [(adopted[0], adopted[1].replace(b"UTC,view", b"UTC,cart", 1)), other])
    assert not platform.process().failed
    land(platform, [(files[0][0], files[0][1].replace(b"UTC,view", b"UTC,cart", 1))])
    assert not platform.process().failed

    reasons = [json.loads(platform.lake.read_text(o.key)) for o in platform.lake.list("quarantine/")
               if o.key.endswith(".reason.json")]
    assert sorted(r["file"] for r in reasons if "already accepted" in r["reason"]) == sorted([adopted[0], files[0][0]])
    assert list(platform.lake.list("landing/")) == []
    _staged_as_recorded(platform)
    assert_matches_oracle(platform, tmp_path, files)


# --------------------------------------------------------------------------- (c) retried run


def test_a_retried_run_gives_the_same_tables(tmp_path, pg_url, monkeypatch):
    platform = make_platform(tmp_path, pg_url, monkeypatch)
    files = files_across_two_hours()
    land(platform, files)
    requests, _ = tick(platform.defs, platform.instance, "landing_sensor", None)

    # The first run dies after committing its t1 minutes, before recording them in the lake.
    write_aggregates = minutes.write_aggregates
    failed_hours = []

    def lake_fails_once(lake, hour, *args):
        if not failed_hours:
            failed_hours.append(hour)
            raise OSError("lake unavailable")
        return write_aggregates(lake, hour, *args)

    monkeypatch.setattr(minutes, "write_aggregates", lake_fails_once)
    _, ok = execute_request(platform.defs, platform.instance, INGEST_JOB, requests[0], {})
    assert not ok and failed_hours == [pd.Timestamp("2019-10-01 00:00", tz="UTC")]
    assert platform.warehouse.row_count(t1_table("view", "brand")) > 0  # t1 committed, aggregates not

    # What the run-retry daemon does: re-execute from failure (t1_minute, t2_hour) with the run's tags.
    failed = platform.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))[0]
    retry = dg.execute_job(
        dg.reconstructable(ingest_job), instance=platform.instance,
        tags={k: v for k, v in failed.tags.items() if k != "dagster/failure_reason"},
        reexecution_options=dg.ReexecutionOptions.from_failure(failed.run_id, platform.instance))
    assert retry.success and retry.dagster_run.step_keys_to_execute == ["events__t1_minute", "events__t2_hour"]
    run(platform, requests[1])
    assert_matches_oracle(platform, tmp_path, files)

    before = snapshot(platform)
    run(platform, requests[0])  # the whole run once more, after it succeeded
    assert_same_snapshot(snapshot(platform), before)


# --------------------------------------------------------------------------- (d) killed run

# The batch mode in a child process that kills itself with SIGKILL at a chosen point, after
# writing what it saw there to a JSON file: "copy" = the first COPY, right after the DELETE of the
# same transaction; "manifest" = the claim's manifest save, after the files were moved to raw/.
KILLED_BATCH = r"""
import json, os, signal, sys
import dagster as dg
from psycopg import sql
from pipeline.batch import process
from pipeline.definitions import build_definitions
from pipeline.events.layout import Manifest
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings

def die(seen):
    with open(sys.argv[2], "w") as out:
        json.dump(seen, out)
    os.kill(os.getpid(), signal.SIGKILL)

def copy_then_die(conn, spec, columns, rows):
    rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(spec.table)).fetchone()[0]
    die({"table": spec.qualified, "rows_inside_transaction": rows})

def save_then_die(manifest, lake, hour):
    die({"hour": hour.isoformat()})

if sys.argv[1] == "copy":
    Warehouse.copy_columns = staticmethod(copy_then_die)
else:
    Manifest.save = save_then_die
process(build_definitions(Settings.from_env()), dg.DagsterInstance.ephemeral())
"""


def run_killed(point: str, tmp_path: Path) -> dict:
    seen = tmp_path / f"killed-at-{point}.json"
    child = processes.run([sys.executable, "-c", KILLED_BATCH, point, str(seen)], cwd=PROJECT,
                           env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    return json.loads(seen.read_text())


def test_a_run_killed_between_delete_and_copy_keeps_the_old_rows_and_is_repaired(tmp_path, pg_url,
                                                                                  monkeypatch):
    platform = make_platform(tmp_path, pg_url, monkeypatch)
    files = files_across_two_hours()
    late = files[3]  # 00:59 from server2: its minute already has rows from server1
    land(platform, [f for f in files if f is not late])
    assert not platform.process().failed
    old = snapshot(platform)
    land(platform, [late])

    inside = run_killed("copy", tmp_path)

    specs = [t1_table(e, d) for e, d in pairs(platform.settings.events, platform.settings.dimensions)]
    killed_in = next(spec for spec in specs if spec.qualified == inside["table"])
    assert inside["rows_inside_transaction"] < platform.warehouse.row_count(killed_in)  # the DELETE had run
    assert_same_snapshot(snapshot(platform), old)  # and was rolled back with the connection
    assert [o.name for o in platform.lake.list("raw/2019-10-01-00/")] == sorted(n for n, _ in files[:4])
    assert platform.lake.exists("pending/2019-10-01-00")  # claimed, never computed: pending

    summary = platform.process()  # landing/ is empty: only the pending marker asks for the hour

    assert summary.runs[:1] == [(INGEST_JOB, H00, True)], summary
    assert not platform.lake.exists("pending/2019-10-01-00")
    assert_matches_oracle(platform, tmp_path, files)


def test_a_run_killed_after_moving_files_before_recording_them_is_repaired(tmp_path, pg_url, monkeypatch):
    platform = make_platform(tmp_path, pg_url, monkeypatch)
    files = files_across_two_hours()
    late = files[3]  # 00:59 from server2
    land(platform, [f for f in files if f is not late])
    assert not platform.process().failed
    manifest = platform.lake.read_text("manifests/2019-10-01-00.json")
    land(platform, [late])

    assert run_killed("manifest", tmp_path) == {"hour": "2019-10-01T00:00:00+00:00"}

    assert list(platform.lake.list("landing/")) == []
    assert late[0] in [o.name for o in platform.lake.list("raw/2019-10-01-00/")]
    assert platform.lake.read_text("manifests/2019-10-01-00.json") == manifest  # not recorded

    summary = platform.process()

    assert summary.runs[:1] == [(INGEST_JOB, H00, True)], summary
    assert_matches_oracle(platform, tmp_path, files)
