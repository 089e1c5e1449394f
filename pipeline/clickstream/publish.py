"""Publishing a report: the enabled sinks, then the statistics object of the upload."""

import datetime as dt

import pandas as pd

from pipeline.clickstream import mongo as mongo_io
from pipeline.clickstream import storage, tables, transform
from pipeline.clickstream.config import ClickstreamConfig
from pipeline.clickstream.mongo import MongoResource
from pipeline.resources.lake import Lake
from pipeline.resources.warehouse import WarehouseResource


def modes(config: ClickstreamConfig) -> dict[str, bool]:
    """Enabled sink -> True to replace the run's days, False to rebuild the whole sink."""
    enabled = {}
    if config.postgres.enabled:
        enabled["postgres"] = config.postgres.append
    if config.mongo.enabled:
        enabled["mongodb"] = config.mongo.append
    return enabled


def upload(
    config: ClickstreamConfig,
    store: Lake,
    report: pd.DataFrame,
    days: list[dt.date],
    warehouse: WarehouseResource,
    mongo: MongoResource,
    folder,
) -> dict[str, int]:
    """Write ``report`` (the run's days) to each enabled sink; returns rows written per sink.
    Resources are opened only for enabled sinks (no embedded PostgreSQL for a MongoDB-only setup)."""
    full = None if all(modes(config).values()) else full_report(store, config, folder)
    written: dict[str, int] = {}
    if config.postgres.enabled:
        spec = tables.report_table(config.postgres.table_name)
        written["postgres"] = (
            tables.replace_days(warehouse.get(), spec, report, config.grouping_names, days)
            if config.postgres.append
            else tables.rebuild(warehouse.get(), spec, full)
        )
    if config.mongo.enabled:
        with mongo.collection(config.mongo.host, config.mongo.database, config.mongo.collection) as coll:
            written["mongodb"] = (
                mongo_io.replace_days(coll, report, config.grouping_names, days)
                if config.mongo.append
                else mongo_io.rebuild(coll, full)
            )
    return written


def full_report(store: Lake, config: ClickstreamConfig, folder) -> pd.DataFrame:
    """The report of every day that has daily clicks: what a rebuilt sink holds."""
    known = storage.known_days(store)
    daily, _ = storage.read_daily(store, known, config.grouping_names, folder / "all-daily")
    return transform.report(daily, known, config.period)


def write_statistics(
    store: Lake,
    config: ClickstreamConfig,
    daily: pd.DataFrame,
    report: pd.DataFrame,
    days: list[dt.date],
    written: dict[str, int],
    run_id: str,
) -> dt.date | None:
    """Write ``latest_date_data.csv``; returns the latest day with data. That day never moves
    back (a backfill of old days keeps the one already recorded)."""
    candidates = [storage.read_latest_date(store)]
    if not daily.empty:
        candidates.append(daily["date"].max().date())
    known = [day for day in candidates if day is not None]
    latest = max(known) if known else None
    # Every source row is counted once per grouping: count it under the first one.
    first = daily[(daily["grouping"] == config.grouping_names[0]) & daily["date"].isin(pd.to_datetime(days))]
    storage.write_stats(
        store,
        {
            "latest_date": latest,
            "report_start": days[0],
            "report_end": days[-1],
            "source_rows": int(first["rows"].sum()),
            "report_rows": len(report),
            "rows_written_postgres": written.get("postgres"),
            "rows_written_mongodb": written.get("mongodb"),
            "run_id": run_id,
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
        },
    )
    return latest
