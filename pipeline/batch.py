"""Batch mode: what the daemon does, done in this process until nothing is pending (cron, CI, replays).

A round ticks every sensor of the code location (each until a tick asks for nothing new: one page
of a listing per tick), executes the runs they request, then evaluates the conditions of every
automation sensor and executes what they request (assets sharing a partition in one run, as the
daemon groups them); rounds repeat until one requests nothing. Runs carry the tags the daemon
gives its runs (``dagster/sensor_name`` and ``dagster/run_key``, or ``dagster/from_automation_condition``),
and the daemon skips a request whose run key a run of the same sensor already has, so a daemon
started after batch mode repeats nothing. Run-status sensors are shown each run executed here.

Not done here: sensor cursors are not stored in the instance (only Dagster's private API can
write them), so every invocation, and a daemon started afterwards, begins each sensor without a
cursor and relies on the run keys; monitor sensors (no target: the events' freshness checks and
their alerts) are not ticked; schedules are not evaluated (they follow the wall clock), except
that the events' retention job runs after events were ingested or archived, as before.
"""

from __future__ import annotations

import inspect
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import dagster as dg

from pipeline.events.jobs import ARCHIVE_JOB, INGEST_JOB, RANGE_END_TAG, RANGE_START_TAG, RETENTION_JOB

RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"
AUTOMATION_TAG = "dagster/from_automation_condition"
MODE_TAG = "clickflow/mode"
RETRYABLE = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)  # other runs of a run key count as done
MAX_TICKS_PER_ROUND = 10_000  # pages of one listing in one round


@dataclass
class ProcessSummary:
    runs: list[tuple[str, str, bool]] = field(default_factory=list)  # (job or automation sensor, partition, success)
    skipped_run_keys: int = 0

    @property
    def failed(self) -> list[tuple[str, str, bool]]:
        return [r for r in self.runs if not r[2]]


def _quiet(log_level: str) -> dict:
    return {"loggers": {"console": {"config": {"log_level": log_level}}}}


def execute_request(defs: dg.Definitions, instance: dg.DagsterInstance, job_name: str,
                    request: dg.RunRequest | None, extra_tags: dict[str, str],
                    log_level: str = "INFO") -> tuple[str, bool]:
    """One requested run of ``job_name`` in this process: its partition (or range tags), run key, tags and config."""
    label, result = _execute(defs, instance, defs.resolve_job_def(job_name), request, extra_tags, log_level)
    return label, result.success


def _execute(defs, instance, job, request, extra_tags, log_level):
    tags = dict(extra_tags)
    partition_key, run_config, selection = None, {}, None
    if request is not None:
        tags.update({k: str(v) for k, v in request.tags.items()})
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        partition_key = request.partition_key
        run_config = dict(request.run_config or {})
        selection = request.asset_selection
    label = partition_key or (f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}" if RANGE_START_TAG in tags else "-")
    result = job.execute_in_process(run_config={**run_config, **_quiet(log_level)}, instance=instance,
                                    partition_key=partition_key, tags=tags, asset_selection=selection,
                                    raise_on_error=False)
    return label, result


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, sensor_name: str, cursor: str | None):
    """One evaluation of a sensor: its run requests and its new cursor (returned in a SensorResult
    or set with ``context.update_cursor``)."""
    sensor = defs.resolve_sensor_def(sensor_name)
    resources = {k: v for k, v in (defs.resources or {}).items() if k in sensor.required_resource_keys}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=resources,
                                      sensor_name=sensor_name)
    result = sensor(context)
    items = list(result) if inspect.isgenerator(result) or isinstance(result, list) else [result]
    requests, new_cursor = [], context.cursor
    for item in items:
        if isinstance(item, dg.RunRequest):
            requests.append(item)
        elif isinstance(item, dg.SensorResult):
            requests += list(item.run_requests or [])
            new_cursor = item.cursor if item.cursor is not None else new_cursor
    return requests, new_cursor


def _kind(sensor: dg.SensorDefinition) -> str:
    if isinstance(sensor, dg.AutomationConditionSensorDefinition):
        return "automation"
    if isinstance(sensor, dg.RunStatusSensorDefinition):
        return "run status"
    # A sensor with no target requests no runs: a monitor (the events' freshness checks), whose
    # verdicts and alerts are the daemon's, about the wall clock, not about what a batch processed.
    return "input" if sensor.targets else "monitor"


class Batch:
    """The state of one batch invocation: sensor cursors, automation cursors, what was attempted.

    Before its first run it evaluates the automation conditions once, as a baseline (a condition's
    first evaluation never requests, like the daemon's first tick); later, an automation sensor is
    evaluated after runs that materialized one of its assets or of their direct upstream assets
    (what the conditions here look at), and sees what those runs changed. An invocation that runs
    nothing evaluates nothing.
    """

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, *, log_level: str = "INFO",
                 on_run: Callable[[str, str, bool], None] | None = None):
        self.defs, self.instance, self.log_level, self.on_run = defs, instance, log_level, on_run
        _hold_connections(instance)
        sensors = defs.get_repository_def().sensor_defs
        # The faster a sensor ticks under the daemon, the earlier it ticks here: files are claimed
        # before the (slower) archive sensor looks at what was claimed.
        self.inputs = sorted((s for s in sensors if _kind(s) == "input"),
                             key=lambda s: (s.minimum_interval_seconds or 30, s.name))
        self.automations = [s for s in sensors if _kind(s) == "automation"]
        self.watchers = [s for s in sensors if _kind(s) == "run status"]
        self.cursors: dict[str, str | None] = {}
        self.attempted: set[tuple[str, str]] = set()  # a failing run is tried once per invocation
        self.broken: set[str] = set()  # sensors whose tick raised
        self.summary = ProcessSummary()
        self._asset_job = None
        self.automation_cursors: dict[str, object] = {}
        self.materialized: set[dg.AssetKey] = set()  # since the last evaluation
        graph = defs.resolve_asset_graph()
        self.watched = {s.name: s.asset_selection.upstream(depth=1).resolve(graph) for s in self.automations}

    # ------------------------------------------------------------------ runs

    def execute(self, job_name: str, request: dg.RunRequest | None, tags: dict[str, str]) -> bool:
        self._baseline()
        label, result = _execute(self.defs, self.instance, self.defs.resolve_job_def(job_name), request,
                                 {MODE_TAG: "process", **tags}, self.log_level)
        return self._record(job_name, label, result)

    def _record(self, name: str, label: str, result) -> bool:
        self.materialized.update(event.asset_key for event in result.get_asset_materialization_events())
        self.summary.runs.append((name, label, result.success))
        if self.on_run:
            self.on_run(name, label, result.success)
        self._tell_watchers(result)
        return result.success

    def _tell_watchers(self, result) -> None:
        """Run-status sensors see each finished run, as the daemon shows them its runs."""
        if not self.watchers:
            return
        event = result.get_run_success_event() if result.success else result.get_run_failure_event()
        run = self.instance.get_run_by_id(result.run_id)
        for sensor in self.watchers:
            resources = {k: v for k, v in (self.defs.resources or {}).items() if k in sensor.required_resource_keys}
            sensor(dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_event=event,
                                                      dagster_instance=self.instance, dagster_run=run,
                                                      resources=resources or None))

    def _done(self, sensor: str, run_key: str) -> bool:
        """A run of this sensor with this run key exists and did not fail (the daemon's test, which
        also counts failed ones: batch mode tries a failed run once more per invocation)."""
        runs = self.instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key}))
        return any(run.tags.get(SENSOR_NAME_TAG, sensor) == sensor and run.status not in RETRYABLE for run in runs)

    # ------------------------------------------------------------------ sensors

    def _drain(self, sensor: dg.SensorDefinition) -> int:
        """Tick ``sensor`` until a tick brings nothing new; returns the number of new run keys it ran.

        A tick that raises is recorded as a failure (as the daemon records a failed tick), the
        sensor is not ticked again in this invocation, and the other sensors go on."""
        started = 0
        for _ in range(0 if sensor.name in self.broken else MAX_TICKS_PER_ROUND):
            before = self.cursors.get(sensor.name)
            try:
                requests, self.cursors[sensor.name] = tick(self.defs, self.instance, sensor.name, before)
            except Exception as error:  # noqa: BLE001 - reported, like a failed tick under the daemon
                self.broken.add(sensor.name)
                self.summary.runs.append((sensor.name, f"tick failed: {type(error).__name__}: {error}"[:300], False))
                if self.on_run:
                    self.on_run(*self.summary.runs[-1])
                return started
            fresh = 0
            for request in requests:
                if request.run_key:
                    if (sensor.name, request.run_key) in self.attempted:
                        continue
                    self.attempted.add((sensor.name, request.run_key))
                    if self._done(sensor.name, request.run_key):
                        self.summary.skipped_run_keys += 1
                        continue
                    fresh += 1
                job_name = request.job_name or sensor.job_name
                self.execute(job_name, request, {SENSOR_NAME_TAG: sensor.name})
            # Requests without a run key run on every tick (as under the daemon) but never keep the loops going.
            started += fresh
            if not fresh and self.cursors[sensor.name] == before:
                return started
        return started

    # ------------------------------------------------------------------ automation

    def _baseline(self) -> None:
        if not self.automation_cursors:
            self.automation_cursors = {s.name: self._evaluate(s, None).cursor for s in self.automations}

    def _evaluate(self, sensor: dg.AutomationConditionSensorDefinition, cursor):
        return dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance,
                                                 asset_selection=sensor.asset_selection, cursor=cursor)

    def _automate(self, sensor: dg.AutomationConditionSensorDefinition) -> int:
        result = self._evaluate(sensor, self.automation_cursors[sensor.name])
        self.automation_cursors[sensor.name] = result.cursor
        if not result.total_requested:
            return 0
        by_partition: dict[str | None, list[dg.AssetKey]] = defaultdict(list)
        for key in sensor.asset_selection.resolve(self.defs.resolve_asset_graph()):
            for partition in result.get_requested_partitions(key):
                by_partition[partition].append(key)
        if self._asset_job is None:
            self._asset_job = self.defs.resolve_implicit_global_asset_job_def()
        tags = {MODE_TAG: "process", SENSOR_NAME_TAG: sensor.name, AUTOMATION_TAG: "true"}
        for partition, keys in sorted(by_partition.items(), key=lambda item: item[0] or ""):
            request = dg.RunRequest(partition_key=partition, asset_selection=sorted(keys, key=str))
            label, outcome = _execute(self.defs, self.instance, self._asset_job, request, tags, self.log_level)
            self._record(sensor.name, label, outcome)
        return len(by_partition)

    # ------------------------------------------------------------------ the loop

    def until_idle(self, *, retention: bool = True, max_rounds: int = 1_000) -> ProcessSummary:
        for _ in range(max_rounds):
            started = sum(self._drain(sensor) for sensor in self.inputs)
            changed, self.materialized = self.materialized, set()
            started += sum(self._automate(sensor) for sensor in self.automations if changed & self.watched[sensor.name])
            if not started:
                break
        events_changed = any(job in (INGEST_JOB, ARCHIVE_JOB) for job, _, _ in self.summary.runs)
        if retention and events_changed:
            # The hourly retention schedule's job, after new rows or archives (schedules are not evaluated).
            self.execute(RETENTION_JOB, None, {})
        return self.summary


def process(defs: dg.Definitions, instance: dg.DagsterInstance, *, retention: bool = True,
            on_run: Callable[[str, str, bool], None] | None = None, max_rounds: int = 1_000,
            log_level: str = "INFO") -> ProcessSummary:
    """Every sensor and automation condition of the code location, and the runs they request,
    until nothing is pending; then the events' retention if events changed."""
    batch = Batch(defs, instance, log_level=log_level, on_run=on_run)
    return batch.until_idle(retention=retention, max_rounds=max_rounds)


_POOLED: "weakref.WeakSet[dg.DagsterInstance]" = weakref.WeakSet()


def _hold_connections(instance: dg.DagsterInstance) -> None:
    """One process, one run at a time: let the instance's PostgreSQL storages keep a connection
    instead of opening one per event written (hundreds per run, ~3 ms each). Once per instance;
    no statement timeout (0), as for any run; a no-op on other storages."""
    if instance not in _POOLED:
        instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=2)
        _POOLED.add(instance)
