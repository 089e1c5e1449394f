"""The clickstream assets: daily clicks (lake) -> the period report (PostgreSQL and/or MongoDB).

Both are daily-partitioned with a single-run backfill policy: a sensor or schedule run over a
range of days reads the click files once. The report partition D looks back on the daily
partitions D-(period-1) .. D (see :mod:`pipeline.clickstream.partitions`).
"""

import dagster as dg
import pandas as pd

from pipeline.clickstream import publish, storage, tables, transform
from pipeline.clickstream.config import ClickstreamConfig
from pipeline.clickstream.mongo import MongoResource
from pipeline.clickstream.partitions import DAY, days_between, lookback, window_days
from pipeline.clickstream.source import load_source
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource

GROUP = "clickstream"
OWNERS = ["team:analytics"]
DAILY = dg.AssetKey([GROUP, "daily_clicks"])
REPORT = dg.AssetKey([GROUP, "report"])

REPORT_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("grouping", "text", description="the configured grouping, a+b for a joint one"),
        dg.TableColumn("key", "text", description="the grouping's value; a JSON array for a joint grouping"),
        dg.TableColumn("date", "date", description="the UTC day D"),
        dg.TableColumn(
            "daily_clicks", "bigint", description="clicks on D (0 if the key had no rows that day)"
        ),
        dg.TableColumn("rolling_clicks", "bigint", description="clicks over the period days ending at D"),
        dg.TableColumn("start_date", "date", description="D - period days (as the seed)"),
    ]
)


def build_assets(
    config: ClickstreamConfig, partitions: dg.DailyPartitionsDefinition
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=DAILY,
        group_name=GROUP,
        kinds={"pandas", "parquet"},
        owners=OWNERS,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def clickstream_daily_clicks(
        context: dg.AssetExecutionContext, lake: LakeResource
    ) -> dg.MaterializeResult:
        """Clicks per day and grouping key, from every click file under the source prefix.

        Each day of the run is recomputed from all files, so rows that arrive late or in another
        batch still land in their own day; one Parquet object per day in the lake feeds the
        reports that look back on it.
        """
        days = window_days(context.partition_time_window)
        store = lake.get()
        with storage.working_folder(config.work_dir, context.run.run_id, "daily", context.log) as folder:
            batch = load_source(store, config, folder, context.log)
            dated = batch.rows[config.date_column]
            in_run = dated.isin(pd.to_datetime(days))
            daily = transform.daily_clicks(
                batch.rows[in_run],
                config.groupings,
                date_column=config.date_column,
                target_column=config.target_column,
            )
            for day in days:
                storage.write_daily(
                    store, day, daily[daily["date"] == pd.Timestamp(day)], config.grouping_names
                )
        outside = dated[~in_run]
        if not outside.empty:
            context.log.info(
                f"{len(outside)} row(s) are dated outside {days[0]}..{days[-1]} "
                f"({outside.min().date()}..{outside.max().date()}): the runs of those days count them"
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(daily),
                "days": f"{days[0]}..{days[-1]}",
                "files_read": len(batch.files),
                "rows_read": batch.rows_read,
                "rows_in_run_days": int(in_run.sum()),
                "rows_rejected": batch.rows_rejected,
                "quarantined": dg.MetadataValue.json(batch.quarantined),
                "lake_objects": f"{store.url}/{storage.DAILY_PREFIX}<day>.parquet",
            }
        )

    first_day = partitions.start.date()
    sinks = {"postgres"} if config.postgres.enabled else set()
    sinks |= {"mongodb"} if config.mongo.enabled else set()
    table_name = (
        f"{tables.SCHEMA}.{config.postgres.table_name}"
        if config.postgres.enabled
        else f"{config.mongo.database}.{config.mongo.collection}"
    )

    @dg.asset(
        key=REPORT,
        group_name=GROUP,
        kinds={"pandas", *sinks},
        owners=OWNERS,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[dg.AssetDep(DAILY, partition_mapping=lookback(config.period))],
        metadata={
            "dagster/column_schema": REPORT_SCHEMA,
            "dagster/table_name": table_name,
            "period_days": config.period,
            "groupings": ", ".join(config.grouping_names),
        },
    )
    def clickstream_report(
        context: dg.AssetExecutionContext,
        lake: LakeResource,
        warehouse: WarehouseResource,
        mongo: MongoResource,
    ) -> dg.MaterializeResult:
        """Each day's clicks and its trailing period total, per grouping key, in the enabled sinks.

        A run replaces the (grouping, day) slices of its days, so re-running never double counts;
        with ``*_data_append = false`` the sink is rebuilt from every known day instead. After
        the upload the statistics object is written and the local copies go (kept on failure).
        """
        days = window_days(context.partition_time_window)
        store = lake.get()
        with storage.working_folder(config.work_dir, context.run.run_id, "report", context.log) as folder:
            window = days_between(max(days[0] - DAY * (config.period - 1), first_day), days[-1])
            daily, absent = storage.read_daily(store, window, config.grouping_names, folder / "daily")
            if absent:
                context.log.info(
                    f"no daily clicks for {len(absent)} look-back day(s) {absent[0]}..{absent[-1]} "
                    "(never materialized): they count as zero"
                )
            report = transform.report(daily, days, config.period)
            report.to_csv(folder / "report.csv", index=False)  # the exact rows being uploaded
            written = publish.upload(config, store, report, days, warehouse, mongo, folder)
            latest = publish.write_statistics(store, config, daily, report, days, written, context.run.run_id)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(report),
                "days": f"{days[0]}..{days[-1]}",
                "latest_date": str(latest) if latest else "",
                **{f"rows_written_{sink}": count for sink, count in written.items()},
                "mode": ", ".join(
                    f"{sink}: {'replace days' if append else 'rebuild'}"
                    for sink, append in publish.modes(config).items()
                ),
                "statistics_object": store.uri(storage.STATS_KEY),
            }
        )

    return [clickstream_daily_clicks, clickstream_report]
