"""`make dev` after `clickflow process` (or `make demo`) repeats nothing: the real daemon, started on
the instance batch mode filled, ticks every sensor (without their cursors, which only the daemon
stores) and evaluates every automation condition, and launches no run."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from pipeline.cli import main
from pipeline.resources.lake import LocalLake
from pipeline_tests.events.platform_fixture import sample_files
from pipeline_tests.live_dagster import live_dagster

SENSORS = """
query Sensors {
  sensorsOrError(repositorySelector: {repositoryLocationName: "clickflow", repositoryName: "__repository__"}) {
    ... on Sensors { results { name sensorType sensorState { status ticks(limit: 20) {
      status timestamp runIds skipReason error { message } } } } }
    ... on PythonError { message }
  }
}"""
GROUPS = ("insights", "clickstream", "b2b", "basket")


def sensor_runs(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """Run ids by the sensor that requested them (schedules left out: they follow the clock)."""
    found: dict[str, list[str]] = {}
    for run in instance.get_runs():
        if "dagster/schedule_name" not in run.tags:
            found.setdefault(run.tags.get("dagster/sensor_name", "-"), []).append(run.run_id)
    return found


@pytest.mark.e2e
@pytest.mark.slow
def test_the_daemon_started_after_batch_mode_launches_no_run(tmp_path):
    before: dict[str, list[str]] = {}

    def batch(settings):
        for group in GROUPS:
            assert main(["generate", group]) == 0
        for name, data in sample_files("2019-10-01 00:00", 3, events_per_minute=40):
            LocalLake(lake).write_bytes(f"landing/{name}", data)
        assert main(["process"]) == 0
        instance = dg.DagsterInstance.get()
        before.update(sensor_runs(instance))
        instance.dispose()

    lake = tmp_path / "lake"
    with live_dagster(lake, tmp_path / "logs", before_start=batch) as live:
        started = time.time()
        # batch mode did the work of every input sensor and both automation sensors
        assert {"landing_sensor", "insights_dumps", "insights_automation", "events_automation",
                "clickstream_metadata_sensor", "b2b_init_sensor", "b2b_day_sensor", "basket_reference_sensor",
                "basket_stream_sensor"} <= set(before), before

        def ticked():
            sensors = live.graphql(SENSORS)["sensorsOrError"]["results"]
            running = [s for s in sensors if s["sensorState"]["status"] == "RUNNING"]
            ticks = {s["name"]: [t for t in s["sensorState"]["ticks"] if t["timestamp"] >= started - 5]
                     for s in running}
            # every sensor evaluated at least once; the automation sensors twice (the first evaluation
            # after batch mode, and one that compares with it)
            wanted = {s["name"]: 2 if s["sensorType"] == "AUTOMATION" else 1 for s in running}
            done = [t for name in ticks for t in ticks[name] if t["status"] in ("SUCCESS", "SKIPPED", "FAILURE")]
            if all(len([t for t in ticks[n] if t["status"] != "STARTED"]) >= k for n, k in wanted.items()):
                return ticks, done
            return None

        ticks, done = live.wait(ticked, 240, "every sensor to tick on the daemon")
        assert len(ticks) >= 12, sorted(ticks)
        failed = {name: [t["error"] for t in found if t["status"] == "FAILURE"] for name, found in ticks.items()}
        assert not any(failed.values()), failed
        assert [t for t in done if t["runIds"]] == []
        time.sleep(3)  # a run the last tick created would be in the instance by now
        instance = dg.DagsterInstance.get()
        assert sensor_runs(instance) == before
        instance.dispose()
