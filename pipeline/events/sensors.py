"""Sensors of the event system: landed files -> ingest runs, settled raw blocks -> archive runs.

The landing sensor lists a page of each of its two lanes per tick (live: from the newest t1 hour
on; backlog: the rest, in whole hours) and keeps each lane's position in the cursor; it asks for
no run where a queued or running run of the hour will claim the files. Run keys are derived from
the partition and the exact file set (key + ETag), so a repeated tick, a re-listed file or a
second sensor process never starts the same work twice.
"""

import hashlib
import json
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd

from pipeline.events import clock, keys, layout, schema
from pipeline.events.assets import PRIORITY_ARCHIVE, PRIORITY_BACKLOG, PRIORITY_LIVE
from pipeline.events.claim import LISTED_TAG
from pipeline.events.jobs import ARCHIVE_JOB, BACKLOG_TAG, HOUR_TAG, INGEST_JOB, RANGE_END_TAG, RANGE_START_TAG
from pipeline.events.partitions import archive_partitions, hourly_partitions
from pipeline.resources.lake import Lake, LakeKeyError, LakeObject, LakeResource, ObjectGone, validate_key
from pipeline.resources.warehouse import WarehouseResource
from pipeline.settings import Settings

PENDING_GRACE = pd.Timedelta(minutes=15)


def file_set_key(prefix: str, objects: list[LakeObject]) -> str:
    digest = hashlib.sha256("\n".join(f"{o.key}:{o.etag}" for o in sorted(objects, key=lambda o: o.key)).encode())
    return f"{prefix}:{digest.hexdigest()[:20]}"


@dataclass
class LandingCursor:
    """Where each lane of the landing listing goes on next tick ("" = from its start).

    The live lane lists ``landing/`` from the newest t1 hour on, the backlog lane everything before
    it, a page each per tick: however many backlog pages wait, every tick sees the live files.
    """

    live: str = ""
    backlog: str = ""

    @classmethod
    def load(cls, text: str | None) -> "LandingCursor":
        state = json.loads(text) if text else {}
        return cls(live=state.get("live", ""), backlog=state.get("backlog", ""))  # older cursors start over

    def dump(self) -> str:
        return json.dumps({"live": self.live, "backlog": self.backlog})

    @property
    def pending(self) -> bool:
        """True while a lane has more pages to read."""
        return bool(self.live or self.backlog)


@dataclass
class LandingPlan:
    """What one tick decided, kept separate from Dagster types so it is easy to test."""

    live: dict[str, list[LakeObject]]
    backlog: dict[str, list[LakeObject]]
    quarantined: dict[str, str]
    waiting: list[str]  # files for hours that are not partitions yet (clock skew)
    cursor: LandingCursor
    unreadable: dict[str, str] = field(default_factory=dict)
    pending: dict[str, list[LakeObject]] = field(default_factory=dict)  # hours to finish (see pending_hours)
    covered: int = 0  # files left to a queued or running run of their hour (see drop_covered)


def live_start(newest: pd.Timestamp | None) -> str:
    """The first landing key of the live lane: the newest t1 hour's prefix ("" with an empty t1).

    Names start with their minute, so every file of that hour and later sorts at or after it, and
    every file of an earlier hour (backlog by definition) before it.
    """
    return "" if newest is None else layout.landing_prefix(newest.floor("h"))


def _page(lake: Lake, start_after: str, end_before: str | None, size: int) -> tuple[list[LakeObject], str]:
    """One page of a lane in whole hours, and where the lane goes on next tick.

    A full page ends in the middle of an hour more often than not: that hour is left to the next
    page, so one run gets all of it instead of two runs a part each. A page of a single hour is
    kept whole (the run claims all of the hour's files anyway).
    """
    page = lake.list_page("landing/", start_after=start_after, limit=size, end_before=end_before)
    if len(page) < size:
        return page, ""
    last_hour = page[-1].name[:13]  # YYYY-MM-DD-HH
    kept = [o for o in page if o.name[:13] != last_hour]
    if not kept:
        return page, page[-1].key
    return kept, kept[-1].key


def plan_landing(lake: Lake, settings: Settings, cursor: LandingCursor, newest: pd.Timestamp | None,
                 last_partition: str | None) -> LandingPlan:
    """One tick's listing: a page of the live lane, then a page of the backlog lane."""
    split = live_start(newest)
    live_page, live_next = _page(lake, max(cursor.live, split), None, settings.landing_page_size)
    backlog_page, backlog_next = (_page(lake, cursor.backlog, split, settings.landing_page_size) if split
                                  else ([], ""))
    plan = LandingPlan({}, {}, {}, [], LandingCursor(live_next, backlog_next))
    first = layout.hour_start(f"{settings.partitions_start}-00:00")
    last = layout.hour_start(last_partition) if last_partition else None
    for obj in live_page + backlog_page:
        try:
            validate_key(obj.key)
        except LakeKeyError as error:
            plan.unreadable[obj.key] = str(error)  # cannot be read safely: left where it is, reported
            continue
        try:
            fname = schema.parse_file_name(obj.name)
        except schema.BadFileName as error:
            _quarantine_landed(lake, plan, obj, _safe_name(obj.name), f"bad file name: {error}",
                               original_name=obj.name)
            continue
        hour = fname.minute.floor("h")
        if hour < first:
            reason = (f"its hour {hour:%Y-%m-%d %H:00} is before PIPELINE_PARTITIONS_START="
                      f"{settings.partitions_start}; lower that setting and land it again")
            _quarantine_landed(lake, plan, obj, obj.name, reason)
            continue
        if last is None or hour > last:
            plan.waiting.append(obj.name)
            continue
        key = layout.partition_key(hour)
        late = newest is not None and fname.minute < newest
        (plan.backlog if late else plan.live).setdefault(key, []).append(obj)
    # An hour with any live file is live; its late files ride along in the same run.
    for key in list(plan.backlog):
        if key in plan.live:
            plan.live[key] += plan.backlog.pop(key)
    return plan


def _quarantine_landed(lake: Lake, plan: LandingPlan, obj: LakeObject, name: str, reason: str, **details) -> None:
    """Quarantine an unusable landed file; one moved away since the listing is left for this tick."""
    try:
        data = lake.read_bytes(obj.key)
    except ObjectGone:
        return
    layout.quarantine(lake, name, data, reason, **details)
    lake.delete(obj.key)
    plan.quarantined[obj.name] = reason


@dataclass(frozen=True)
class Claimer:
    """An ingest run that will claim (or is claiming) landed files of its hours.

    A run's claim of an hour takes every file of the hour landed before it began listing
    ``landing/`` for it (the run records when, in its ``clickflow/listed`` tag). So a run not
    started yet takes every file of its hours, and a started one every file of an hour it has not
    listed yet, and of one it has, those landed before the listing.
    """

    hours: frozenset[str]
    live: bool  # a live run (priority): only such a run, queued, may take live files along
    started: bool
    listed: dict[str, float] = field(default_factory=dict, hash=False)  # hour -> listing began (epoch s)


def claimers(instance: dg.DagsterInstance, now: pd.Timestamp | None = None) -> list[Claimer]:
    """The ingest runs that are queued, starting or running.

    A run the daemon created but never submitted (NOT_STARTED for longer than ``PENDING_GRACE``:
    the daemon died in between) will not claim anything and is left out.
    """
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=INGEST_JOB, statuses=[
        dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED]))
    found = []
    for record in records:
        run = record.dagster_run
        if (run.status == dg.DagsterRunStatus.NOT_STARTED
                and now.timestamp() - record.create_timestamp.timestamp() > PENDING_GRACE.total_seconds()):
            continue
        found.append(Claimer(frozenset(run_hours(run.tags)), run.tags.get(BACKLOG_TAG) != "true",
                             run.status == dg.DagsterRunStatus.STARTED, json.loads(run.tags.get(LISTED_TAG, "{}"))))
    return found


def run_hours(tags: dict[str, str]) -> list[str]:
    """The hour partitions of an ingest run: its partition, or every hour of its range."""
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        return [layout.partition_key(h) for h in pd.date_range(layout.hour_start(start), layout.hour_start(end),
                                                                 freq="h")]
    return [tags["dagster/partition"]] if tags.get("dagster/partition") else []


def is_covered(obj: LakeObject, hour: str, live: bool, runs: list[Claimer], resolution: float = 0.0) -> bool:
    """Whether a run already queued or running will claim ``obj``, so no new run is needed for it.

    A queued run of the hour takes it (a live file only along a queued live run, which starts
    first); a started run takes it unless the run listed the hour before it landed
    (``resolution``: how much older than the truth the storage's timestamp may look). A file
    landed after that listing is left to exactly one follow-up run, queued behind the running one,
    which then covers later files too.
    """
    for run in runs:
        if hour not in run.hours:
            continue
        if not run.started:
            if run.live or not live:
                return True
            continue
        listed = run.listed.get(hour)
        if listed is None or (obj.modified is not None and obj.modified + resolution < listed):
            return True
    return False


def drop_covered(plan: LandingPlan, runs: list[Claimer], resolution: float = 0.0) -> None:
    """Leave out of the plan every file a queued or running run will claim (see ``is_covered``)."""
    for group, live in ((plan.live, True), (plan.backlog, False)):
        for hour in list(group):
            kept = [o for o in group[hour] if not is_covered(o, hour, live, runs, resolution)]
            plan.covered += len(group[hour]) - len(kept)
            if kept:
                group[hour] = kept
            else:
                del group[hour]


def pending_hours(lake: Lake, active_hours: set[str], now: pd.Timestamp,
                  grace: pd.Timedelta = PENDING_GRACE) -> dict[str, list[LakeObject]]:
    """Hours whose claimed files never got through t1 and t2 (a run died after its claim).

    An hour with a queued or running ingest run is left alone while its marker is young: that
    run will finish the job. A marker older than ``grace`` is requested regardless (stuck run).
    """
    found = {}
    for obj in lake.list("pending/"):
        key = layout.partition_key(layout.hour_of_slug(obj.name))
        try:
            marked = pd.Timestamp(lake.read_text(obj.key).strip())
        except ObjectGone:
            continue  # t2 completed the hour since the listing
        if key in active_hours and now - marked < grace:
            continue
        found[key] = [obj]
    return found


def active_ingest_hours(runs: list[Claimer]) -> set[str]:
    return {hour for run in runs for hour in run.hours}


def unused_run_key(instance: dg.DagsterInstance, run_key: str) -> str:
    """``run_key``, or its successor when a run with it already succeeded yet its files are listed again.

    An S3 ETag is the content only, so a file landed again unchanged lists exactly like the landing
    its run already claimed; a used run key is never run again, and the file would stay in
    landing/. Each success moves the key on, so repeated ticks still agree on one key.
    """
    key = run_key
    while done := instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": key},
                                                          statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1):
        key = f"{run_key}:{done[0].run_id[:8]}"
    return key


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).lstrip("._-")
    return cleaned[:200] or "unnamed"


def ingest_requests(plan: LandingPlan) -> list[dg.RunRequest]:
    retry = {"dagster/max_retries": "2"}  # the daemon re-runs a failed (or killed) ingest run
    requests = [
        dg.RunRequest(
            run_key=file_set_key(key, objects),
            partition_key=key,
            tags={HOUR_TAG: key, "dagster/priority": str(PRIORITY_LIVE), BACKLOG_TAG: "false", **retry},
        )
        for key, objects in sorted(plan.live.items())
    ]
    requests += [
        dg.RunRequest(run_key=file_set_key(f"{key}:pending", objects), partition_key=key,
                      tags={HOUR_TAG: key, "dagster/priority": str(PRIORITY_BACKLOG), BACKLOG_TAG: "true", **retry})
        for key, objects in sorted(plan.pending.items())
        if key not in plan.live and key not in plan.backlog
    ]
    if plan.backlog:
        keys = sorted(plan.backlog)
        objects = [o for k in keys for o in plan.backlog[k]]
        tags = {BACKLOG_TAG: "true", "dagster/priority": str(PRIORITY_BACKLOG), **retry}
        if len(keys) == 1:
            requests.append(dg.RunRequest(run_key=file_set_key(keys[0], objects), partition_key=keys[0],
                                          tags={**tags, HOUR_TAG: keys[0]}))
        else:
            # One run over the whole range (BackfillPolicy.single_run), serialised with other backlog runs.
            requests.append(dg.RunRequest(
                run_key=file_set_key(f"{keys[0]}..{keys[-1]}", objects),
                tags={**tags, HOUR_TAG: "backlog", RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]},
            ))
    return requests


def archive_requests(lake: Lake, settings: Settings, newest: pd.Timestamp | None) -> list[dg.RunRequest]:
    """One archive run per settled block that still has raw files."""
    if newest is None:
        return []
    settle = newest - pd.Timedelta(minutes=settings.archive_settle_minutes)
    span = pd.Timedelta(hours=1) if settings.archive_block == "hour" else pd.Timedelta(days=1)
    blocks: dict[pd.Timestamp, list[LakeObject]] = {}
    for obj in lake.list("raw/"):
        hour = pd.Timestamp(pd.to_datetime(obj.key.split("/")[1], format="%Y-%m-%d-%H"), tz="UTC")
        blocks.setdefault(hour.floor("h" if settings.archive_block == "hour" else "D"), []).append(obj)
    requests = []
    for start, objects in sorted(blocks.items()):
        if start + span > settle:
            continue  # not settled: more files may still arrive for it
        key = start.strftime("%Y-%m-%d-%H:%M" if settings.archive_block == "hour" else "%Y-%m-%d")
        requests.append(dg.RunRequest(run_key=file_set_key(f"archive-{key}", objects), partition_key=key,
                                      tags={"dagster/priority": str(PRIORITY_ARCHIVE)}))
    return requests


def tick_interval(settings: Settings) -> int:
    """``minimum_interval_seconds`` for a tick every PIPELINE_SENSOR_INTERVAL_SECONDS.

    The daemon looks at its sensors every 5 s and measures the interval from the previous tick's
    start, which drifts by milliseconds: with exactly 5 a tick would be skipped every other look,
    a tick every 10 s. A second less keeps the pace the setting asks for.
    """
    return max(1, settings.sensor_interval_seconds - 1)


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    hourly = hourly_partitions(settings)
    archive_parts = archive_partitions(settings)

    @dg.sensor(
        name="landing_sensor",
        job_name=INGEST_JOB,
        minimum_interval_seconds=tick_interval(settings),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Lists landing/ per tick, the newest t1 hour on first (live), then a page of older "
                    "files (backlog); requests one ingest run per hour with files no queued or running run "
                    "will claim (live runs first; late files as backlog runs, several hours as one range run).",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, lake: LakeResource, warehouse: WarehouseResource):
        store = lake.get()
        newest = clock.newest_t1_minute(warehouse.get(), settings)
        plan = plan_landing(store, settings, LandingCursor.load(context.cursor), newest,
                            hourly.get_last_partition_key())
        runs = claimers(context.instance)  # after the listing: a run queued now claims what it listed
        drop_covered(plan, runs, store.modified_resolution)
        plan.pending = pending_hours(store, active_ingest_hours(runs), pd.Timestamp.now(tz="UTC"))
        for name, reason in plan.quarantined.items():
            context.log.warning(f"quarantined landed file {name!r}: {reason}")
        for key, reason in plan.unreadable.items():
            context.log.error(f"cannot read landed object {key!r} ({reason}); rename or remove it")
        if plan.waiting:
            context.log.info(f"{len(plan.waiting)} file(s) wait for their hour to become a partition")
        if plan.covered:
            context.log.info(f"{plan.covered} file(s) left to the queued or running run of their hour")
        requests = [r.with_replaced_attrs(run_key=unused_run_key(context.instance, r.run_key))
                    for r in ingest_requests(plan)]
        return dg.SensorResult(run_requests=requests, cursor=plan.cursor.dump())

    @dg.sensor(
        name="archive_sensor",
        job_name=ARCHIVE_JOB,
        minimum_interval_seconds=max(60, settings.sensor_interval_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests an archive run for every settled block (older than the newest t1 minute "
                    "minus PIPELINE_ARCHIVE_SETTLE_MINUTES) that still has raw files.",
    )
    def archive_sensor(context: dg.SensorEvaluationContext, lake: LakeResource, warehouse: WarehouseResource):
        newest = clock.newest_t1_minute(warehouse.get(), settings)
        requests = [r for r in archive_requests(lake.get(), settings, newest)
                    if r.partition_key in archive_parts.get_partition_keys()]
        return dg.SensorResult(run_requests=requests)

    automation = dg.AutomationConditionSensorDefinition(
        "events_automation",
        target=dg.AssetSelection.assets(keys.RANKINGS, keys.DASHBOARD),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=tick_interval(settings),
        description="Refreshes the rankings when t1 changes, then the dashboard when the rankings change.",
    )
    return [landing_sensor, archive_sensor, automation]
