"""Sensors on the lake: streamed days and pushed reference files.

Both key their runs on the file set (keys and ETags), so a repeated tick, a lost cursor or a
re-listed file never runs twice, while a new or rewritten file always triggers a new run.
"""

import datetime as dt
import json
from collections import defaultdict

import dagster as dg

from pipeline.resources.lake import LakeResource

from . import files, schema
from .config import BasketConfig

REFERENCE_ASSET = dg.AssetKey(["basket", "reference"])


def build_stream_sensor(
    job, config: BasketConfig, *, interval_seconds: int, page_size: int
) -> dg.SensorDefinition:
    @dg.sensor(
        name="basket_stream_sensor",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def basket_stream_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
        """Lists basket/stream/ page by page and requests a basket/orders run for every day whose
        file set changed since the last tick. The cursor maps each day to its file set's digest;
        files that name no table and day are quarantined."""
        if context.instance.get_latest_materialization_event(REFERENCE_ASSET) is None:
            # Orders are audited against the published products: without them every day would fail.
            return dg.SkipReason("waiting for basket/reference to be materialized once")
        lk = lake.get()
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        today = dt.datetime.now(dt.UTC).date().isoformat()
        by_day = defaultdict(list)
        for obj in lk.list(files.STREAM_PREFIX, page_size=page_size):
            try:
                _, day = files.parse_stream_key(obj.key)
            except files.KeyLayoutError as error:
                target = files.quarantine(lk, obj.key, [str(error)])
                context.log.warning(f"quarantined {obj.key} as {target}: {error}")
                continue
            if day < config.start:
                context.log.warning(
                    f"ignoring {obj.key}: its day is before PIPELINE_BASKET_START={config.start}"
                )
            elif day <= today:  # a later day's partition does not exist yet; it is picked up that day
                by_day[day].append(obj)
        requests = []
        for day, objects in sorted(by_day.items()):
            digest = files.fingerprint(objects)
            if seen.get(day) != digest:
                requests.append(
                    dg.RunRequest(run_key=f"{day}:{digest}", partition_key=day, tags={"basket/day": day})
                )
                seen[day] = digest
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True))

    return basket_stream_sensor


def build_reference_sensor(job, *, interval_seconds: int) -> dg.SensorDefinition:
    @dg.sensor(
        name="basket_reference_sensor",
        job=job,
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def basket_reference_sensor(context: dg.SensorEvaluationContext, lake: LakeResource):
        """Requests a basket/reference run once all three reference files are pushed, and again
        whenever one of them changes; the cursor is the digest of the last set loaded."""
        expected = {files.reference_key(t) for t in schema.REFERENCE_TABLES}
        pushed = [obj for obj in lake.get().list(files.REFERENCE_PREFIX) if obj.key in expected]
        if len(pushed) < len(expected):
            missing = sorted(expected - {obj.key for obj in pushed})
            return dg.SkipReason(f"waiting for {', '.join(missing)}")
        digest = files.fingerprint(pushed)
        if digest == context.cursor:
            return dg.SkipReason("reference files unchanged")
        return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"reference:{digest}")], cursor=digest)

    return basket_reference_sensor
