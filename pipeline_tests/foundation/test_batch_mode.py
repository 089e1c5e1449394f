"""Batch mode on a small code location of its own: every input sensor ticked until idle, runs
tagged as the daemon tags them, run keys never run twice, automation conditions evaluated after the
runs (baseline first), run-status sensors told, and a broken sensor reported without stopping the rest."""

from __future__ import annotations

import dagster as dg

from pipeline.batch import process

SEEN: list[tuple[str, str]] = []  # (sensor, run id) the run-status sensor was shown


@dg.asset
def source() -> int:
    return 1


@dg.asset(deps=[source], automation_condition=dg.AutomationCondition.eager())
def follower() -> int:
    return 2


job = dg.define_asset_job("load", selection=[source])


@dg.sensor(job=job)
def two_pages(context: dg.SensorEvaluationContext):
    """Two requests a page, a page a tick, as the landing sensor pages its listing."""
    page = int(context.cursor or 0)
    if page >= 2:
        return dg.SensorResult(run_requests=[], cursor=context.cursor)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"p{page}-{i}") for i in range(2)],
                           cursor=str(page + 1))


@dg.sensor(job=job)
def broken(context: dg.SensorEvaluationContext):
    raise RuntimeError("the lake is unreachable")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS)
def announce(context: dg.RunStatusSensorContext):
    if context.dagster_event.event_type == dg.DagsterEventType.RUN_SUCCESS:
        SEEN.append(("success", context.dagster_run.run_id))


automation = dg.AutomationConditionSensorDefinition("follow", target=dg.AssetSelection.assets(follower))
DEFS = dg.Definitions(assets=[source, follower], jobs=[job], sensors=[two_pages, broken, announce, automation])


def test_sensors_runs_tags_automation_and_notifications():
    SEEN.clear()
    instance = dg.DagsterInstance.ephemeral()

    summary = process(DEFS, instance, log_level="ERROR")

    loads = [r for r in summary.runs if r[0] == "load"]
    assert len(loads) == 4 and all(ok for *_, ok in loads)  # both pages read in one invocation
    assert summary.runs.count(("follow", "-", True)) == 1  # the four loads, followed once
    (failure,) = summary.failed
    assert failure[0] == "broken" and "the lake is unreachable" in failure[1]
    runs = instance.get_runs()
    by_key = {r.tags.get("dagster/run_key"): r for r in runs if r.job_name == "load"}
    assert sorted(by_key) == ["p0-0", "p0-1", "p1-0", "p1-1"]
    assert {r.tags["dagster/sensor_name"] for r in by_key.values()} == {"two_pages"}
    (followed,) = [r for r in runs if r.tags.get("dagster/sensor_name") == "follow"]
    assert followed.tags["dagster/from_automation_condition"] == "true"
    assert followed.asset_selection == {dg.AssetKey("follower")}
    assert sorted(run_id for _, run_id in SEEN) == sorted(r.run_id for r in runs)

    again = process(DEFS, instance, log_level="ERROR")  # a new invocation, no cursor: the run keys answer

    assert [r for r in again.runs if r[2]] == [] and again.skipped_run_keys == 4
    assert len(instance.get_runs()) == len(runs)
