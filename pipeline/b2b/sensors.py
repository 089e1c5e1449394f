"""Sensors on the lake: the init files and each day's files, as `clickflow generate b2b` (or the
shop's exports) put them there.

Run keys come from the file sets (keys and ETags), so a repeated tick, a lost cursor or a
re-listed file never runs twice, while a rewritten day is loaded again.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from pipeline.b2b import storage
from pipeline.b2b.assets import FILE_SET_METADATA, INIT, RAW_FILES
from pipeline.b2b.schedules import DAY_TAGS
from pipeline.b2b.transform import INIT_FIELDS
from pipeline.resources.lake import LakeResource, fingerprint

INIT_JOB = "b2b_init"
LOAD_JOB = "b2b_load"


def init_job() -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(INIT_JOB, selection=dg.AssetSelection.assets(INIT),
                               description="The initial load of b2b/init/ (replaces the four tables).")


def load_job() -> dg.UnresolvedAssetJobDefinition:
    """The daily job without the generation step: for days whose files are already in the lake."""
    return dg.define_asset_job(
        LOAD_JOB,
        selection=dg.AssetSelection.groups("b2b") - dg.AssetSelection.assets(INIT, RAW_FILES),
        tags=DAY_TAGS,
        description="Load one day's files from the lake (companies, orders, web logs), then its snapshots "
                    "and reports.",
    )


def build_sensors(partitions: dg.DailyPartitionsDefinition, interval_seconds: int) -> list[dg.SensorDefinition]:
    @dg.sensor(name="b2b_init_sensor", job_name=INIT_JOB, minimum_interval_seconds=interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING)
    def b2b_init_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
        """Requests the init load once the four b2b/init/ files are there, if b2b/init was never
        loaded. It replaces the tables, daily loads included, so a later change of those files is
        not loaded by itself: materialize b2b/init to load them again."""
        if context.instance.get_latest_materialization_event(INIT) is not None:
            return dg.SkipReason("b2b/init is loaded; materialize it by hand to load b2b/init/ again")
        expected = {storage.init_key(name) for name in INIT_FIELDS}
        found = [obj for obj in lake.get().list("b2b/init/") if obj.key in expected]
        if len(found) < len(expected):
            return dg.SkipReason(f"waiting for {', '.join(sorted(expected - {o.key for o in found}))}")
        return dg.RunRequest(run_key=f"init:{fingerprint(found)}")

    @dg.sensor(name="b2b_day_sensor", job_name=LOAD_JOB, minimum_interval_seconds=interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING)
    def b2b_day_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
        """Requests a day's load when its three raw files are in b2b/raw/<day>/ and the day's files
        (with its insert/ and update/ company files) changed since the last tick. Days run in order
        (orders build on the previous day). The cursor maps each day to its file set's digest."""
        if context.instance.get_latest_materialization_event(INIT) is None:
            return dg.SkipReason("waiting for b2b/init to be loaded")
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        requests, waiting = [], []
        for day, objects in sorted(storage.input_by_day(lake.get()).items()):
            raw = {obj.key for obj in objects if obj.key.startswith("b2b/raw/")}
            digest = fingerprint(objects)
            if seen.get(day) == digest:
                continue
            if not _is_day(day) or not partitions.has_partition_key(day):
                context.log.warning(f"b2b files for {day!r} ignored: not a daily partition since PIPELINE_B2B_START")
            elif {storage.raw_key(dt.date.fromisoformat(day), name) for name in storage.RAW_FILES} <= raw:
                if not _written_by_its_own_run(context.instance, day, digest):
                    requests.append(dg.RunRequest(run_key=f"{day}:{digest}", partition_key=day))
            else:
                waiting.append(day)
                continue  # not complete: looked at again next tick
            seen[day] = digest
        if waiting:
            context.log.info(f"days waiting for their three raw files: {waiting[:10]}")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))

    return [b2b_init_sensor, b2b_day_sensor]


def _is_day(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def _written_by_its_own_run(instance: dg.DagsterInstance, day: str, digest: str) -> bool:
    """The files are exactly those a b2b/raw_files run generated, and that run loaded them."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=RAW_FILES, asset_partitions=[day]),
                                              limit=1).records
    if not records or records[0].asset_materialization is None:
        return False
    recorded = records[0].asset_materialization.metadata.get(FILE_SET_METADATA)
    return recorded is not None and recorded.value == digest
