"""Asset checks: the daily objects are sound, and each sink holds exactly what they imply.

Checks cover the days of the run they execute in (read from its public partition tags), or every
known day when launched on their own.
"""

import dagster as dg
import pandas as pd

from pipeline.clickstream import mongo as mongo_io
from pipeline.clickstream import storage, tables, transform
from pipeline.clickstream.assets import DAILY, REPORT
from pipeline.clickstream.config import ClickstreamConfig
from pipeline.clickstream.mongo import MongoResource
from pipeline.clickstream.partitions import DAY, days_between, run_days
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource


def build_checks(config: ClickstreamConfig) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(asset=DAILY, blocking=True)
    def clickstream_daily_clicks_sound(
        context: dg.AssetCheckExecutionContext, lake: LakeResource
    ) -> dg.AssetCheckResult:
        """Every day of the run has its object, for the configured groupings, one row per key,
        and no negative clicks; a failure stops the report from publishing bad numbers."""
        store = lake.get()
        days = run_days(context.run.tags) or storage.known_days(store)
        daily, absent = storage.read_daily(store, days, config.grouping_names)
        duplicated = int(daily.duplicated(["grouping", "key", "date"]).sum())
        negative = int((daily["clicks"] < 0).sum())
        return dg.AssetCheckResult(
            passed=not absent and duplicated == 0 and negative == 0,
            metadata={
                "days_checked": len(days),
                "days_without_object": [str(day) for day in absent],
                "duplicate_keys": duplicated,
                "negative_clicks": negative,
            },
        )

    @dg.asset_check(asset=REPORT, blocking=True)
    def clickstream_report_matches_daily(
        context: dg.AssetCheckExecutionContext,
        lake: LakeResource,
        warehouse: WarehouseResource,
        mongo: MongoResource,
    ) -> dg.AssetCheckResult:
        """Reads the run's days back from each enabled sink and compares them, row for row, with
        the report recomputed from the daily objects: catches lost, doubled or stale rows."""
        store = lake.get()
        days = run_days(context.run.tags) or storage.known_days(store)
        if not days:
            return dg.AssetCheckResult(passed=True, metadata={"days_checked": 0})
        window = days_between(days[0] - DAY * (config.period - 1), days[-1])
        daily, _ = storage.read_daily(store, window, config.grouping_names)
        expected = _comparable(transform.report(daily, days, config.period))
        mismatches: dict[str, int] = {}
        if config.postgres.enabled:
            spec = tables.report_table(config.postgres.table_name)
            actual = tables.read_report(warehouse.get(), spec, days)
            mismatches["postgres"] = _differences(expected, _comparable(actual, config.grouping_names))
        if config.mongo.enabled:
            with mongo.collection(config.mongo.host, config.mongo.database, config.mongo.collection) as coll:
                actual = mongo_io.read_documents(coll, days)
            mismatches["mongodb"] = _differences(expected, _comparable(actual, config.grouping_names))
        return dg.AssetCheckResult(
            passed=not any(mismatches.values()),
            metadata={
                "days_checked": len(days),
                "expected_rows": len(expected),
                **{f"mismatched_rows_{sink}": count for sink, count in mismatches.items()},
            },
        )

    return [clickstream_daily_clicks_sound, clickstream_report_matches_daily]


def _comparable(frame: pd.DataFrame, groupings=None) -> pd.DataFrame:
    """Same columns, types and order whatever store the rows come from."""
    if groupings is not None:
        frame = frame[frame["grouping"].isin(groupings)]
    out = frame[list(transform.REPORT_COLUMNS)].copy()
    for column in ("date", "start_date"):
        out[column] = pd.to_datetime(out[column]).astype("datetime64[ns]")
    out = out.astype({"grouping": str, "key": str, "daily_clicks": "int64", "rolling_clicks": "int64"})
    return out.sort_values(["grouping", "key", "date"], ignore_index=True)


def _differences(expected: pd.DataFrame, actual: pd.DataFrame) -> int:
    """Rows present on one side only (an outer join on every column), plus doubled rows."""
    merged = expected.merge(actual.drop_duplicates(), how="outer", indicator=True)
    return int((merged["_merge"] != "both").sum()) + int(actual.duplicated().sum())
