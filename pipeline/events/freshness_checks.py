"""Freshness checks of ``events/t1_minute`` and ``events/rankings``, evaluated by the daemon.

The lags are defined in :mod:`pipeline.events.freshness` (event time, from the tables and the
lake, not from materialization times). The ``events_freshness_sensor`` evaluates both checks on
every tick, in the daemon, and records the results as asset check evaluations (shown on the
assets' Checks tab); it needs no run, so it costs the live minutes nothing (the ingest job leaves
the checks out). A run that materializes t1 or the rankings otherwise (the UI, the automation's
rankings refresh) evaluates that asset's check too, as Dagster adds an asset's checks to its runs.

Alert hook: when a check's status changes (PASS -> WARN/FAIL, or back to PASS: recovered), the
sensor logs it and POSTs a JSON payload to ``PIPELINE_NOTIFY_WEBHOOK`` when that is set (the same
webhook as the clickstream notifications). A webhook that refuses fails the tick, which keeps the
previous status and so sends again on the next tick.
"""

import json

import dagster as dg
import pandas as pd

from pipeline.events import clock, freshness, keys
from pipeline.events.freshness import FAIL, PASS, Lag, Verdict
from pipeline.notify import post_json, webhook_url
from pipeline.resources.lake import Lake, LakeResource
from pipeline.resources.warehouse import Warehouse, WarehouseResource
from pipeline.settings import Settings

T1_CHECK, RANKINGS_CHECK = keys.T1_FRESHNESS, keys.RANKINGS_FRESHNESS
SENSOR = "events_freshness_sensor"


def _rule(settings: Settings) -> str:
    wall = ("and the wall clock" if settings.partitions_end is None
            else "(not the wall clock: PIPELINE_PARTITIONS_END is set, a replay of history)")
    return (f"WARN beyond {settings.freshness_warn_minutes} min, FAIL beyond "
            f"{settings.freshness_fail_minutes} min behind the newest landed file {wall}")


def evaluate(lake: Lake, warehouse: Warehouse, settings: Settings,
             now: pd.Timestamp | None = None) -> dict[dg.AssetCheckKey, tuple[Lag, Verdict]]:
    """Both checks' lags and verdicts at ``now`` (default: the wall clock)."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    newest_t1 = clock.newest_t1_minute(warehouse, settings)
    ranked = freshness.newest_ranked_minute(warehouse, settings)
    since = min((m for m in (newest_t1, ranked) if m is not None), default=None)
    landed = freshness.newest_landed_minute(lake, since, now)
    warn = pd.Timedelta(minutes=settings.freshness_warn_minutes)
    fail = pd.Timedelta(minutes=settings.freshness_fail_minutes)
    live = settings.partitions_end is None
    results = {}
    for check, newest, what in ((T1_CHECK, newest_t1, "t1"), (RANKINGS_CHECK, ranked, "the rankings")):
        lag = Lag(newest, landed, now)
        results[check] = (lag, freshness.judge(lag, warn, fail, live, what))
    return results


def _metadata(lag: Lag) -> dict:
    def seconds(value: pd.Timedelta | None) -> float | None:
        return None if value is None else round(value.total_seconds(), 1)

    return {
        "newest_minute": str(lag.newest) if lag.newest is not None else "none",
        "newest_landed_minute": str(lag.newest_landed) if lag.newest_landed is not None else "none",
        "lag_behind_wall_clock_s": seconds(lag.behind_wall_clock),
        "lag_behind_landing_s": seconds(lag.behind_landing),
        "evaluated_at": str(lag.now),
    }


def _severity(verdict: Verdict) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if verdict.status == FAIL else dg.AssetCheckSeverity.WARN


def check_evaluation(check: dg.AssetCheckKey, lag: Lag, verdict: Verdict) -> dg.AssetCheckEvaluation:
    """A verdict as the check evaluation the sensor records."""
    return dg.AssetCheckEvaluation(
        asset_key=check.asset_key, check_name=check.name, passed=verdict.status == PASS,
        severity=_severity(verdict), description=verdict.description,
        metadata={**_metadata(lag), "status": verdict.status})


def alert_payload(check: dg.AssetCheckKey, lag: Lag, verdict: Verdict, previous: str | None) -> dict:
    return {
        "source": "clickflow",
        "kind": "freshness",
        "check": check.to_user_string(),
        "status": verdict.status,
        "previous": previous,
        "recovered": verdict.status == PASS,
        "message": verdict.description,
        **_metadata(lag),
    }


def alert(log, payload: dict) -> bool:
    """Log the status change; POST it when the webhook is configured. Returns True if posted."""
    text = f"freshness {payload['check']}: {payload['previous'] or 'first evaluation'} -> {payload['status']}: " \
           f"{payload['message']}"
    (log.info if payload["recovered"] else log.warning)(text)
    url = webhook_url()
    if url is None:
        return False
    post_json(url, payload)
    return True


def build_freshness_checks(settings: Settings) -> dg.AssetChecksDefinition:
    specs = [
        dg.AssetCheckSpec(T1_CHECK.name, asset=T1_CHECK.asset_key, blocking=False,
                          description=f"How far t1's newest minute lags: {_rule(settings)}."),
        dg.AssetCheckSpec(RANKINGS_CHECK.name, asset=RANKINGS_CHECK.asset_key, blocking=False,
                          description=f"How far the newest minute the rankings cover lags: {_rule(settings)}."),
    ]

    # Subsettable: a run that materializes t1 or the rankings from the UI or by automation takes
    # the check of that asset along (Dagster adds an asset's checks to its runs).
    @dg.multi_asset_check(specs=specs, name="events_freshness_checks", can_subset=True,
                          description="Freshness of t1 and the rankings (also evaluated by events_freshness_sensor).")
    def events_freshness_checks(context: dg.AssetCheckExecutionContext, lake: LakeResource,
                                warehouse: WarehouseResource):
        for check, (lag, verdict) in evaluate(lake.get(), warehouse.get(), settings).items():
            if check not in context.selected_asset_check_keys:
                continue
            yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name,
                                      passed=verdict.status == PASS, severity=_severity(verdict),
                                      description=verdict.description,
                                      metadata={**_metadata(lag), "status": verdict.status})

    return events_freshness_checks


def build_freshness_sensor(settings: Settings) -> dg.SensorDefinition:
    @dg.sensor(
        name=SENSOR,
        minimum_interval_seconds=max(30, settings.sensor_interval_seconds),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Evaluates the freshness checks of t1 and the rankings (no run needed) and alerts "
                    "on a change of status through PIPELINE_NOTIFY_WEBHOOK.",
    )
    def events_freshness_sensor(context: dg.SensorEvaluationContext, lake: LakeResource,
                                warehouse: WarehouseResource):
        statuses = json.loads(context.cursor) if context.cursor else {}
        events = []
        for check, (lag, verdict) in evaluate(lake.get(), warehouse.get(), settings).items():
            events.append(check_evaluation(check, lag, verdict))
            name, previous = check.to_user_string(), statuses.get(check.to_user_string())
            if verdict.status != previous and (previous is not None or verdict.status != PASS):
                alert(context.log, alert_payload(check, lag, verdict, previous))
            statuses[name] = verdict.status
        return dg.SensorResult(asset_events=events, cursor=json.dumps(statuses, sort_keys=True))

    return events_freshness_sensor
