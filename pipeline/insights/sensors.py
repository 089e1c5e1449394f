"""Sensors of the insights pipeline.

``insights_dumps`` lists ``insights/events/`` and requests a load for every dump that is new or
whose content changed (late dumps, replaced dumps). Change is decided by content, as for event
files: a dump whose listing changed (an upload, or a touch on a folder lake) is fingerprinted
(``Lake.fingerprint``: SHA-256 of the bytes on a folder, the ETag on S3) and loads again only if
the fingerprint differs, so uploading the same bytes again loads nothing. Its cursor maps each
dump key to ``[listing ETag, fingerprint]`` of the content last seen; the run key is the key plus
the listing ETag, so a repeated tick never starts a second run. The automation sensor refreshes
the all-time tables when months change.
"""

import json

import dagster as dg

from pipeline.insights.partitions import DUMP_PREFIX, parse_dump_key
from pipeline.resources.lake import Lake, LakeResource

DUMP_SENSOR_INTERVAL_SECONDS = 60  # dumps arrive monthly; a minute of latency is plenty


def plan_dump_runs(lake: Lake, cursor: str | None, partitions: dg.MonthlyPartitionsDefinition,
                   page_size: int = 1000) -> tuple[list[dg.RunRequest], str, list[str]]:
    """Run requests for new or changed dumps, the next cursor and the keys it had to skip.

    A dump for a month that is not a partition yet (the running month) is left out of the
    cursor, so it is requested once its month has ended.
    """
    seen = _read_cursor(cursor)
    listed: dict[str, list[str | None]] = {}
    requests: list[dg.RunRequest] = []
    skipped: list[str] = []
    for obj in lake.list(DUMP_PREFIX, page_size=page_size):
        parsed = parse_dump_key(obj.key)
        if parsed is None or not partitions.has_partition_key(parsed[0].partition_key):
            skipped.append(obj.key)
            continue
        etag, fingerprint = seen.get(obj.key, (None, None))
        if etag == obj.etag:  # listed exactly as before
            listed[obj.key] = [etag, fingerprint]
            continue
        listed[obj.key] = [obj.etag, lake.fingerprint(obj)]
        if fingerprint != listed[obj.key][1]:  # new, or other bytes (None: a cursor of before fingerprints)
            requests.append(dg.RunRequest(
                partition_key=parsed[0].partition_key,
                run_key=f"{obj.key}@{obj.etag}",
                tags={"insights/dump": obj.key},
            ))
    return requests, json.dumps(listed, sort_keys=True), skipped


def _read_cursor(cursor: str | None) -> dict[str, tuple[str | None, str | None]]:
    """key -> (listing ETag, fingerprint); a cursor written before fingerprints maps key -> ETag."""
    seen = json.loads(cursor) if cursor else {}
    return {key: (value, None) if isinstance(value, str) else tuple(value) for key, value in seen.items()}


def build_sensors(job, all_time_assets: dg.AssetsDefinition, partitions: dg.MonthlyPartitionsDefinition,
                  page_size: int) -> list[dg.SensorDefinition]:
    @dg.sensor(
        name="insights_dumps",
        job=job,
        minimum_interval_seconds=DUMP_SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Loads a month again when its dump under insights/events/ is new or replaced.",
    )
    def insights_dumps(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        requests, cursor, skipped = plan_dump_runs(lake.get(), context.cursor, partitions, page_size)
        if skipped:
            context.log.info("not loaded (not insights/events/YYYY/MM/events.csv|parquet of a complete "
                             f"month since the start): {skipped[:20]}")
        return dg.SensorResult(run_requests=requests, cursor=cursor)

    automation = dg.AutomationConditionSensorDefinition(
        "insights_automation",
        target=dg.AssetSelection.assets(all_time_assets),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Refreshes the all-time tables once a month is (re)loaded.",
    )
    return [insights_dumps, automation]
