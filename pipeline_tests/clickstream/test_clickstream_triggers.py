"""The metadata sensor (run requests, run keys, cursor), the schedule and the run notifications."""

import datetime as dt
import json

import dagster as dg
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from pipeline.clickstream import notify, storage
from pipeline.clickstream.definitions import build_defs
from pipeline.clickstream.mongo import MongoResource
from pipeline.clickstream.partitions import RANGE_END_TAG, RANGE_START_TAG, range_tags
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource
from pipeline.settings import Settings

TODAY = dt.datetime.now(dt.UTC).date().isoformat()  # the last daily partition (end_offset=1)
MARKERS = storage.METADATA_PREFIX


@pytest.fixture
def definitions(tmp_path, make_config):
    """The group's definitions with the platform's resources (the warehouse is never reached here)."""
    return lambda lake, mongo=None, **config: _definitions(tmp_path, lake, make_config(**config), mongo)


def _definitions(tmp_path, lake, config, mongo) -> dg.Definitions:
    settings = Settings.from_env({"PIPELINE_PARTITIONS_START": "2024-01-01", "PIPELINE_HOME": str(tmp_path)})
    defs = build_defs(settings, config, mongo=mongo or MongoResource())
    platform = {
        "lake": LakeResource(url=lake.url),
        "warehouse": WarehouseResource(url="postgresql://unused/db"),
    }
    return dg.Definitions.merge(defs, dg.Definitions(resources=platform))


def tick(defs, lake, cursor=None, instance=None):
    """A tick without a cursor reads the instance's runs of the sensor (a new, empty one by default)."""
    sensor = defs.resolve_sensor_def("clickstream_metadata_sensor")
    context = dg.build_sensor_context(cursor=cursor, resources={"lake": LakeResource(url=lake.url)},
                                      instance=instance or dg.DagsterInstance.ephemeral())
    return sensor(context)


def span(request) -> tuple[str, str]:
    return request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]


def test_a_marker_requests_its_days_plus_the_period_once(definitions, lake):
    defs = definitions(lake, period=7)
    empty = tick(defs, lake)
    assert not empty.run_requests and json.loads(empty.cursor) == {}

    lake.write_text(storage.STATS_KEY, "latest_date\n2024-01-02\n")  # our own output: never a trigger
    lake.write_text(MARKERS + "batch-1.csv", "date\n2024-01-05\n2024-01-03\n")
    (etag,) = [obj.etag for obj in lake.list(MARKERS + "batch-1")]
    first = tick(defs, lake, empty.cursor)
    (request,) = first.run_requests
    assert span(request) == ("2024-01-03", "2024-01-11")  # 01-05 + 6 days of trailing totals
    assert request.run_key == f"{MARKERS}batch-1.csv@{etag}"
    assert json.loads(first.cursor) == {MARKERS + "batch-1.csv": etag}

    again = tick(defs, lake, first.cursor)
    assert not again.run_requests and again.cursor == first.cursor

    lake.write_text(MARKERS + "batch-1.csv", "date\n2024-01-20\n")  # rewritten: a new ETag, a new run
    (rerun,) = tick(defs, lake, first.cursor).run_requests
    assert span(rerun) == ("2024-01-20", "2024-01-26") and rerun.run_key != request.run_key


def test_new_markers_of_one_tick_make_one_run_over_their_hull(definitions, lake):
    defs = definitions(lake, period=2)
    lake.write_text(MARKERS + "a.csv", "date\n2024-01-10\n")
    lake.write_text(MARKERS + "b.json", json.dumps([{"date": "2024-01-04"}]))
    (request,) = tick(defs, lake).run_requests
    assert span(request) == ("2024-01-04", "2024-01-11")
    assert request.run_key.startswith("markers-") and request.tags["clickstream/markers"] == "2"


def test_a_marker_without_days_requests_every_partition(definitions, lake):
    defs = definitions(lake)
    lake.write_text(MARKERS + "_SUCCESS", "")
    (request,) = tick(defs, lake).run_requests
    assert span(request) == ("2024-01-01", TODAY)


def test_a_marker_before_the_first_partition_is_skipped_with_a_reason(definitions, lake):
    defs = definitions(lake, period=2)
    lake.write_text(MARKERS + "old.csv", "date\n2023-06-01\n")
    result = tick(defs, lake)
    assert not result.run_requests and "outside the daily partitions" in result.skip_reason.skip_message
    assert json.loads(result.cursor) == {MARKERS + "old.csv": lake.list_page(MARKERS)[0].etag}


@pytest.mark.integration
def test_on_s3_the_run_key_carries_the_objects_etag(definitions, s3_lake):
    defs = definitions(s3_lake, period=1)
    s3_lake.write_text(MARKERS + "batch.csv", "date\n2024-01-02\n")
    etag = s3_lake.client.head_object(Bucket=s3_lake.bucket, Key=s3_lake.prefix + MARKERS + "batch.csv")[
        "ETag"
    ]
    sensor = defs.resolve_sensor_def("clickstream_metadata_sensor")
    resources = {"lake": LakeResource(url=s3_lake.url, endpoint_url=s3_lake.client.meta.endpoint_url)}
    context = dg.build_sensor_context(resources=resources, instance=dg.DagsterInstance.ephemeral())
    (request,) = sensor(context).run_requests
    assert request.run_key == f"{MARKERS}batch.csv@{etag.strip(chr(34))}"
    assert span(request) == ("2024-01-02", "2024-01-02")


def test_the_schedule_rereads_from_the_latest_reported_day(definitions, lake):
    defs = definitions(lake)
    schedule = defs.resolve_schedule_def("clickstream_schedule")
    assert (
        schedule.cron_schedule == "0 0 * * *" and schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    )
    context = dg.build_schedule_context(resources={"lake": LakeResource(url=lake.url)})
    assert span(schedule(context)) == ("2024-01-01", TODAY)
    lake.write_text(storage.STATS_KEY, "latest_date,report_rows\n2024-02-03,5\n")
    assert span(schedule(context)) == ("2024-02-03", TODAY)


class UnreachableMongo(MongoResource):
    def connect(self, default_host):
        raise ServerSelectionTimeoutError("mongo.invalid:27017: no server")


def execute(defs, instance):
    job = defs.resolve_job_def("clickstream_job")
    return job.execute_in_process(
        tags=range_tags(dt.date(2024, 1, 1), dt.date(2024, 1, 2)), instance=instance, raise_on_error=False
    )


@pytest.mark.slow
def test_finished_runs_are_posted_to_the_webhook(definitions, lake, mongo_resource, webhook):
    lake.write_text(
        "clickstream/source/a.csv",
        "date,product_category,product_name,click_event\n2024-01-01,A,p,1\n2024-01-02,A,p,1\n",
    )
    instance = dg.DagsterInstance.ephemeral()
    defs = definitions(lake, mongo=mongo_resource, postgres=False, columns="product_category")
    succeeded = execute(defs, instance)
    assert succeeded.success
    sensor = defs.resolve_sensor_def("clickstream_success_notifier")
    sensor(
        dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=succeeded.get_run_success_event(),
            dagster_instance=instance,
            dagster_run=succeeded.dagster_run,
        )
    )
    ((content_type, payload),) = webhook.received
    assert content_type == "application/json"
    assert payload == {
        "pipeline": "clickstream",
        "status": "SUCCESS",
        "run_id": succeeded.run_id,
        "job": "clickstream_job",
        "days": "2024-01-01..2024-01-02",
        "row_count": 2,
        "rows_written_mongodb": 2,
        "latest_date": "2024-01-02",
    }

    failing = definitions(lake, mongo=UnreachableMongo(), postgres=False, columns="product_category")
    failed = execute(failing, instance)
    assert not failed.success
    sensor = failing.resolve_sensor_def("clickstream_failure_notifier")
    sensor(
        dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=failed.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=failed.dagster_run,
        ).for_run_failure()
    )
    payload = webhook.received[1][1]
    assert (payload["status"], payload["run_id"], payload["days"]) == (
        "FAILURE",
        failed.run_id,
        "2024-01-01..2024-01-02",
    )
    # Issue 15: the notification said only "Steps failed: [...]"; it carries the cause.
    cause = "ServerSelectionTimeoutError: mongo.invalid:27017: no server"
    assert payload["message"] == f"clickstream__report: {cause}"
    assert payload["errors"] == {"clickstream__report": cause}


def test_other_runs_are_not_announced_and_without_a_webhook_it_only_logs(
    definitions, lake, webhook, monkeypatch
):
    @dg.op
    def unrelated():
        pass

    instance = dg.DagsterInstance.ephemeral()
    other = (
        dg.GraphDefinition(name="other", node_defs=[unrelated]).to_job().execute_in_process(instance=instance)
    )
    sensor = definitions(lake).resolve_sensor_def("clickstream_success_notifier")
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=other.get_run_success_event(),
        dagster_instance=instance,
        dagster_run=other.dagster_run,
    )
    sensor(context)
    assert webhook.received == []

    monkeypatch.delenv(notify.WEBHOOK_ENV)
    log = _Log()
    assert (
        notify.notify(log, {"run_id": "r1", "status": "SUCCESS", "days": "2024-01-01..2024-01-02"}) is False
    )
    assert log.lines == [("info", "clickstream run r1 SUCCESS for 2024-01-01..2024-01-02")]


def test_a_refused_or_unsafe_webhook_fails_loudly(webhook, monkeypatch):
    webhook.status = 500
    with pytest.raises(notify.NotificationError, match="answered HTTP 500"):
        notify.notify(_Log(), {"run_id": "r1", "status": "SUCCESS"})
    monkeypatch.setenv(notify.WEBHOOK_ENV, "file:///etc/passwd")
    with pytest.raises(notify.NotificationError, match="must be an http"):
        notify.notify(_Log(), {"run_id": "r1", "status": "SUCCESS"})


def test_the_failure_notification_names_each_failed_step_and_its_error(definitions, lake, webhook):
    """A run failing in two ways: a dg.Failure (its description) and an exception (its type and text)."""

    @dg.op
    def described():
        raise dg.Failure(description="the report could not be uploaded: bucket missing")

    @dg.op
    def crashed():
        try:
            raise KeyError("inner")
        except KeyError as error:
            raise ValueError("bad click count 'x' on line 3") from error

    @dg.op
    def fine():
        pass

    instance = dg.DagsterInstance.ephemeral()
    job = dg.GraphDefinition(name="clickstream_job", node_defs=[described, crashed, fine]).to_job()
    failed = job.execute_in_process(instance=instance, raise_on_error=False)
    sensor = definitions(lake).resolve_sensor_def("clickstream_failure_notifier")
    sensor(dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=failed.get_run_failure_event(), dagster_instance=instance,
        dagster_run=failed.dagster_run).for_run_failure())
    ((_, payload),) = webhook.received
    # One message, the steps in the order they failed.
    assert sorted(payload["message"].split("; ")) == [
        "crashed: ValueError: bad click count 'x' on line 3",
        "described: the report could not be uploaded: bucket missing",
    ]
    assert payload["errors"] == {
        "described": "the report could not be uploaded: bucket missing",
        "crashed": "ValueError: bad click count 'x' on line 3",
    }


class _Log:
    def __init__(self):
        self.lines = []

    def info(self, message):
        self.lines.append(("info", message))

    def error(self, message):
        self.lines.append(("error", message))
