"""Triggers and notifications: the ``metadata/`` marker sensor and the run-status notifiers.

The seed's producer uploads click files, then an object under ``metadata/``; that upload starts
the pipeline. The sensor lists ``clickstream/metadata/`` (page by page), remembers each marker's
ETag in its cursor and requests one run per tick over the days the new markers announce
(a ``date`` column, like the statistics object) plus the period days whose totals they change.
A marker that names no days requests every partition. Run keys come from the markers' keys and
ETags, so a repeated tick or a re-listed marker never starts a second run.
"""

import datetime as dt
import hashlib
import json

import dagster as dg

from pipeline.clickstream import notify, readers, storage, transform
from pipeline.clickstream.assets import DAILY, REPORT
from pipeline.clickstream.config import ClickstreamConfig
from pipeline.clickstream.partitions import DAY, clamp, range_tags, run_days
from pipeline.resources.lake import Lake, LakeObject, LakeResource

JOB_NAME = "clickstream_job"
SENSOR_NAME = "clickstream_metadata_sensor"
MARKER_SET_TAG = "clickstream/marker_set"  # the markers (key@ETag, JSON) a run was requested for


def build_metadata_sensor(
    config: ClickstreamConfig, partitions: dg.DailyPartitionsDefinition, job, interval_seconds: int = 30
) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR_NAME,
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def clickstream_metadata_sensor(
        context: dg.SensorEvaluationContext, lake: LakeResource
    ) -> dg.SensorResult:
        """Starts a clickstream run when a marker object lands under clickstream/metadata/."""
        store = lake.get()
        markers = [obj for obj in store.list(storage.METADATA_PREFIX) if obj.key != storage.STATS_KEY]
        if context.cursor:
            seen = json.loads(context.cursor)
        else:
            seen = markers_run_before(context.instance, SENSOR_NAME, markers)
        cursor = json.dumps({obj.key: obj.etag for obj in markers}, sort_keys=True)
        new = [obj for obj in markers if seen.get(obj.key) != obj.etag]
        if not new:
            return dg.SensorResult(
                skip_reason="no new marker under " + storage.METADATA_PREFIX, cursor=cursor
            )
        start, end = _announced_span(store, new, config.period, context.log)
        span = clamp(partitions, start, end) if start else clamp(partitions, dt.date.min, dt.date.max)
        if span is None:
            return dg.SensorResult(
                skip_reason=f"markers {', '.join(obj.key for obj in new)} announce {start}..{end}, outside "
                "the daily partitions (PIPELINE_PARTITIONS_START .. PIPELINE_PARTITIONS_END or today)",
                cursor=cursor,
            )
        request = dg.RunRequest(
            run_key=run_key(new),
            tags={**range_tags(*span), "clickstream/markers": str(len(new)), MARKER_SET_TAG: marker_set(new)},
        )
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return clickstream_metadata_sensor


def marker_set(markers: list[LakeObject]) -> str:
    return json.dumps(sorted(f"{obj.key}@{obj.etag}" for obj in markers))


def markers_run_before(instance: dg.DagsterInstance, sensor_name: str, markers: list[LakeObject]) -> dict[str, str]:
    """The cursor a tick without one starts from: the listed markers that a run of this sensor
    (not failed) already covered, read from the runs' marker-set tag, newest runs first, until
    every listed marker is accounted for. Without it, a daemon (or a batch invocation) starting
    without a cursor would run markers handled in several runs once more, under one new run key."""
    wanted = {f"{obj.key}@{obj.etag}": obj for obj in markers}
    covered: set[str] = set()
    cursor = None
    while len(covered) < len(wanted):
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": sensor_name}), cursor=cursor,
                                 limit=100)
        for run in runs:
            if MARKER_SET_TAG in run.tags and run.status not in (dg.DagsterRunStatus.FAILURE,
                                                                  dg.DagsterRunStatus.CANCELED):
                covered.update(set(json.loads(run.tags[MARKER_SET_TAG])) & wanted.keys())
        if len(runs) < 100:
            break
        cursor = runs[-1].run_id
    return {wanted[entry].key: wanted[entry].etag for entry in covered}


def run_key(markers: list[LakeObject]) -> str:
    parts = sorted(f"{obj.key}@{obj.etag}" for obj in markers)
    if len(parts) == 1:
        return parts[0]
    return "markers-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _announced_span(
    store: Lake, markers: list[LakeObject], period: int, log
) -> tuple[dt.date | None, dt.date | None]:
    """First announced day .. last announced day + period - 1, or (None, None) for "every day"."""
    starts, ends = [], []
    for obj in markers:
        try:
            days = transform.marker_days(readers.read_table(store.read_bytes(obj.key), obj.name))
        except (readers.UnreadableFile, ValueError) as error:
            log.info(f"{obj.key} is not a table of dates ({error})")
            days = None
        if days is None:
            log.info(f"{obj.key} names no days: requesting every partition")
            return None, None
        starts.append(days[0])
        ends.append(days[-1] + DAY * (period - 1))  # the trailing totals that include these days
    return min(starts), max(ends)


def build_notification_sensors(job_name: str = JOB_NAME) -> list[dg.SensorDefinition]:
    ours = {DAILY, REPORT}

    def is_clickstream(run: dg.DagsterRun) -> bool:
        return run.job_name == job_name or bool(ours & set(run.asset_selection or ()))

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="clickstream_success_notifier",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def clickstream_success_notifier(context: dg.RunStatusSensorContext) -> None:
        """Announces each successful clickstream run (log, and webhook when configured)."""
        if _is(context, dg.DagsterEventType.RUN_SUCCESS) and is_clickstream(context.dagster_run):
            notify.notify(context.log, _payload(context, "SUCCESS", _report_metadata(context)))

    @dg.run_failure_sensor(name="clickstream_failure_notifier", default_status=dg.DefaultSensorStatus.RUNNING)
    def clickstream_failure_notifier(context: dg.RunFailureSensorContext) -> None:
        """Announces each failed clickstream run with its error (log, and webhook when configured)."""
        if _is(context, dg.DagsterEventType.RUN_FAILURE) and is_clickstream(context.dagster_run):
            notify.notify(context.log, _payload(context, "FAILURE", failure_details(context)))

    return [clickstream_success_notifier, clickstream_failure_notifier]


def failure_details(context: dg.RunFailureSensorContext) -> dict:
    """What made the run fail: each failed step's error message (``errors``, step key -> message)
    and all of them in one ``message``; the run's own failure message when no step failed (a run
    that could not start)."""
    errors = {event.step_key: step_error(event.step_failure_data.error)
              for event in context.get_step_failure_events()}
    if errors:
        message = "; ".join(f"{step}: {error}" for step, error in errors.items())
    else:
        message = context.failure_event.message if context.failure_event else ""
    return {"message": message, "errors": errors}


def step_error(error) -> str:
    """A step's error as one says it: the exception the asset raised (not Dagster's wrapper around
    it), ``Type: message`` without the module path; a ``dg.Failure`` by its description alone."""
    while error.cause is not None and error.cls_name == "DagsterExecutionStepExecutionError":
        error = error.cause
    head, _, text = error.message.strip().partition(": ")
    if head.rsplit(".", 1)[-1] != error.cls_name or not text:
        return error.message.strip()
    return text if error.cls_name == "Failure" else f"{error.cls_name}: {text}"


def _is(context: dg.RunStatusSensorContext, event_type: dg.DagsterEventType) -> bool:
    """The daemon calls a run-status sensor only for its status; batch mode shows every sensor every
    finished run (the sensor's status is not public), so each checks the event itself."""
    return context.dagster_event.event_type == event_type


def _payload(context: dg.RunStatusSensorContext, status: str, extra: dict) -> dict:
    run = context.dagster_run
    days = run_days(run.tags)
    return {
        "pipeline": "clickstream",
        "status": status,
        "run_id": run.run_id,
        "job": run.job_name,
        "days": f"{days[0]}..{days[-1]}" if days else "",
        **extra,
    }


def _report_metadata(context: dg.RunStatusSensorContext) -> dict:
    """What the run's report materialization says it wrote (nothing if it did not run)."""
    wanted = ("rows_written_postgres", "rows_written_mongodb", "latest_date", "dagster/row_count")
    days = run_days(context.dagster_run.tags)
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=REPORT, asset_partitions=[days[-1].isoformat()] if days else None),
        limit=20,
    ).records
    for record in records:
        if record.run_id == context.dagster_run.run_id and record.asset_materialization:
            metadata = record.asset_materialization.metadata
            return {name.replace("dagster/", ""): metadata[name].value for name in wanted if name in metadata}
    return {}
