"""Event assets: raw files -> t1 minutes -> t2 hours -> rankings, archives and retention.

Thin wrappers: the work of each asset is in the module named after it (``claim``, ``minutes``,
``hours``, ``rankings``, ``archive``, ``retention``); these declare partitions,
dependencies, checks, automation and metadata, and take their resources by injection.
"""

import json
import time

import dagster as dg
import pandas as pd

from pipeline.events import checks, keys, layout, schema
from pipeline.events.lanes import (BACKLOG_TAG, HOUSEKEEPING, LANE_TAG, RANGE_START_TAG, give_way_if_background,
                                   in_own_process)
from pipeline.events.keys import GROUP, OWNERS
from pipeline.events.archive import archive_block
from pipeline.events.claim import LISTED_TAG, ClaimReport, claim_hour
from pipeline.events.hours import HourReport, clear_pending_if_current, rebuild_hours
from pipeline.events.minutes import recompute_minutes
from pipeline.events.rankings import rebuild_rankings
from pipeline.events.retention import apply_t1_retention, apply_t2_retention
from pipeline.events.dashboard_asset import build_dashboard_asset
from pipeline.events.engine import Engine, get_engine, hour_chunks
from pipeline.events.partitions import archive_partitions, hourly_partitions
from pipeline.events.tables import all_tables, pairs, rank_table, t1_table, t2_table
from pipeline.resources.lake import Lake, LakeResource
from pipeline.resources.warehouse import Warehouse, WarehouseResource
from pipeline.settings import Settings

# Higher runs first (dagster/priority): live minutes, then backlog, then housekeeping.
PRIORITY_LIVE, PRIORITY_BACKLOG, PRIORITY_ARCHIVE, PRIORITY_RETENTION = 10, 0, -5, -10


def partition_hours(context: dg.AssetExecutionContext) -> list[pd.Timestamp]:
    """The hours of this run: one partition, or a whole range in a single-run backfill."""
    window = context.partition_time_window
    return layout.block_hours(pd.Timestamp(window.start).tz_convert("UTC"), pd.Timestamp(window.end).tz_convert("UTC"))


def _table_metadata(names: list[str]) -> dict:
    return {"tables": dg.MetadataValue.md("\n".join(f"- `{n}`" for n in names))}


PICK_UP_SECONDS = 300.0  # how long a live run keeps taking its hour's newly landed files
LOOK_EVERY_SECONDS = 1.0  # how often a lingering run looks at landing/ for its hour


def linger_seconds(run, settings: Settings) -> float:
    """How long a launched live run waits for its hour's next file once it has taken everything.

    Two sensor intervals: a file landing just after the run ended would wait for a tick and then
    for a new run's process start, each about that long. Runs executed in process (batch mode,
    tests) do not wait: nothing lands while a batch runs.
    """
    return 2.0 * settings.sensor_interval_seconds if in_own_process(run) else 0.0


def picks_up(context: dg.AssetExecutionContext) -> bool:
    """Live runs of one hour pick up the files landed while they worked (see ``pick_up_landed``)."""
    return context.run.tags.get(BACKLOG_TAG) == "false" and RANGE_START_TAG not in context.run.tags


class ListingTag:
    """The run's ``clickflow/listed`` tag: when its claim of each hour began listing landing/."""

    def __init__(self, context: dg.AssetExecutionContext):
        self.context = context
        self.listed = json.loads(context.instance.get_run_by_id(context.run.run_id).tags.get(LISTED_TAG, "{}"))

    def record(self, hour: pd.Timestamp, at: float) -> None:
        self.listed[layout.partition_key(hour)] = at
        self.context.instance.add_run_tags(self.context.run.run_id, {LISTED_TAG: json.dumps(self.listed)})

    def recorder(self, hour: pd.Timestamp):
        return lambda at: self.record(hour, at)


def log_claim(context: dg.AssetExecutionContext, total: ClaimReport) -> None:
    for name, reason in total.quarantined.items():
        context.log.warning(f"quarantined {name}: {reason}")
    if total.rejected_rows:
        context.log.warning(f"{total.rejected_rows} row(s) rejected and kept in quarantine/")
    for name, columns in total.extra_columns.items():
        context.log.warning(f"{name} has extra column(s) {columns}: accepted; not in the tables, kept in "
                            "raw/ and the archive")


def claim_metadata(total: ClaimReport) -> dict:
    return {
        "dagster/row_count": total.rows,
        "files_claimed": len(total.claimed),
        "duplicate_files": len(total.duplicates),
        "quarantined_files": len(total.quarantined),
        "rejected_rows": total.rejected_rows,
        "wrong_field_count_rows": total.malformed_rows,
        "files_with_extra_columns": len(total.extra_columns),
        "extra_columns": dg.MetadataValue.json(total.extra_columns),
        "bytes": total.bytes,
        "quarantine_reasons": dg.MetadataValue.json(total.quarantined),
    }


def t1_metadata(reports: list) -> dict:
    minutes = [m for r in reports for m in r.minutes]
    return {
        "dagster/row_count": sum(r.t1_rows for r in reports),
        "minutes_recomputed": len(minutes),
        "files_read": sum(r.files for r in reports),
        "recomputed": dg.MetadataValue.json(minutes[:120]),
        "minutes_beyond_t2_window": sum(len(r.skipped_beyond_t2) for r in reports),
    }


def _pause() -> None:
    """A lingering run's wait between two looks at landing/."""
    time.sleep(LOOK_EVERY_SECONDS)


def _parses(name: str) -> bool:
    """A landed name the claim can take (others are the landing sensor's to quarantine)."""
    try:
        schema.parse_file_name(name)
    except schema.BadFileName:
        return False
    return True


def _log_results(context: dg.AssetExecutionContext, asset: dg.AssetKey, partition: str, metadata: dict,
                 results: list[dg.AssetCheckResult]) -> None:
    """A materialization of ``asset`` made inside another asset's step, with its checks; a failed
    blocking check stops the run, as it stops the step that owns it."""
    context.log_event(dg.AssetMaterialization(asset_key=asset, partition=partition, metadata=metadata))
    for result in results:
        context.log_event(dg.AssetCheckEvaluation(
            asset_key=asset, check_name=result.check_name, passed=result.passed, metadata=result.metadata,
            severity=result.severity, description=result.description))
    failed = [r.check_name for r in results if not r.passed and r.severity == dg.AssetCheckSeverity.ERROR]
    if failed:
        raise dg.Failure(f"blocking check(s) {failed} of {asset.to_user_string()} {partition} failed")


def build_event_assets(settings: Settings) -> list:
    hourly = hourly_partitions(settings)
    table_pairs = pairs(settings.events, settings.dimensions)
    t1_names = [t1_table(e, d).qualified for e, d in table_pairs]
    t2_names = [t2_table(e, d).qualified for e, d in table_pairs]
    rank_names = [rank_table(e, d).qualified for e, d in table_pairs]
    single_run = dg.BackfillPolicy.single_run()

    @dg.asset(
        partitions_def=hourly,
        backfill_policy=single_run,
        group_name=GROUP,
        key_prefix=[GROUP],
        owners=OWNERS,
        kinds={"csv", "arrow", settings.engine},
        pool="events_ingest",
        check_specs=checks.raw_check_specs(),
        metadata={"lake_prefixes": "landing/ -> raw/<hour>/, staged/<hour>/, manifests/<hour>.json, quarantine/"},
    )
    @on_engine(settings)
    def raw_files(context: dg.AssetExecutionContext, store: Lake, db: Warehouse, engine: Engine):
        """Claims the hour's landed files: validates each, moves it to raw/, stages its accepted
        rows (Arrow IPC) and records name, size, checksum and row counts in the hour's manifest.
        Unusable files go to quarantine/ with a reason, unusable rows (bad values, a wrong number of
        fields) to quarantine/ beside their file; identical re-landings are dropped. Files with extra
        columns are accepted (the extra columns are not in the tables) and reported."""
        total = ClaimReport()
        # A run that picks up later files (see pick_up_landed) says when it listed last, at its end.
        tag = None if picks_up(context) else ListingTag(context)
        for hour in partition_hours(context):
            with db.advisory_lock(layout.hour_lock_name(hour)):
                total.merge(claim_hour(store, hour, engine, settings.landing_page_size,
                                       on_listed=tag.recorder(hour) if tag else None))
        log_claim(context, total)
        return dg.MaterializeResult(metadata=claim_metadata(total), check_results=checks.raw_checks(total.extra_columns))

    @dg.asset(
        partitions_def=hourly,
        backfill_policy=single_run,
        deps=[raw_files],
        group_name=GROUP,
        key_prefix=[GROUP],
        owners=OWNERS,
        kinds={"postgres", settings.engine, "parquet"},
        pool="events_ingest",
        check_specs=checks.t1_check_specs(),
        metadata={"dagster/table_name": t1_names[0], **_table_metadata(t1_names)},
    )
    @on_engine(settings)
    def t1_minute(context: dg.AssetExecutionContext, store: Lake, db: Warehouse, engine: Engine):
        """Minute table: recomputes only the minutes whose files changed, each from all of its
        files, and replaces those minutes in every t1 table in one transaction; a backfill range
        is one computation. Keeps the minute aggregates in the lake so t2 can be rebuilt after
        t1 rows expire."""
        db.ensure(all_tables(settings.events, settings.dimensions))
        reports = [recompute_minutes(store, db, settings, chunk, engine)
                   for chunk in hour_chunks(partition_hours(context), engine)]
        beyond = [m for r in reports for m in r.skipped_beyond_t2]
        if beyond:
            context.log.warning(f"{len(beyond)} minute(s) older than the t2 window were archived only: {beyond[:5]}")
        return dg.MaterializeResult(metadata=t1_metadata(reports), check_results=checks.t1_checks(db, settings, reports))

    @dg.asset(
        partitions_def=hourly,
        backfill_policy=single_run,
        deps=[t1_minute],
        group_name=GROUP,
        key_prefix=[GROUP],
        owners=OWNERS,
        kinds={"postgres", settings.engine},
        pool="events_ingest",
        check_specs=checks.t2_check_specs(),
        metadata={"dagster/table_name": t2_names[0], **_table_metadata(t2_names)},
    )
    @on_engine(settings)
    def t2_hour(context: dg.AssetExecutionContext, store: Lake, db: Warehouse, engine: Engine):
        """Hour table: each hour is the merge of its minute aggregates from the lake, so it stays
        right for hours whose t1 rows have already expired; a backfill range is one merge."""
        hours = partition_hours(context)
        reports = [rebuild_hours(store, db, settings, chunk, engine) for chunk in hour_chunks(hours, engine)]
        rows, rounds = sum(r.rows for r in reports), 0
        if picks_up(context):
            rounds, picked = pick_up_landed(context, store, db, engine, hours[0])
            if picked is not None:
                reports, rows = [picked], picked.rows
        results = checks.t2_checks(db, settings, hours, reports)
        if all(r.passed for r in results):
            # raw -> t1 -> t2 complete: the hours are no longer pending
            with db.advisory_lock(*(layout.hour_lock_name(hour) for hour in hours)):
                for hour in hours:
                    clear_pending_if_current(store, db, settings, hour)
        return dg.MaterializeResult(
            metadata={"dagster/row_count": rows, "hours": len(hours), "rounds_picked_up": rounds},
            check_results=results,
        )

    def pick_up_landed(context: dg.AssetExecutionContext, store: Lake, db: Warehouse, engine: Engine,
                       hour: pd.Timestamp) -> tuple[int, HourReport | None]:
        """Before a live run ends, it claims what landed for its hour while it worked, recomputes t1
        and t2, and looks again, until ``linger_seconds`` pass without a new file (or
        ``PICK_UP_SECONDS`` are spent): the next files need no run of their own, nor its process
        start. Each round is recorded as a materialization of raw_files and t1_minute with their
        checks. At the end the run tags when it last listed the hour: what landed after that is
        left to one follow-up run. Returns the rounds and the t2 report of the last one."""
        tag, key = ListingTag(context), layout.partition_key(hour)
        linger = linger_seconds(context.run, settings)
        deadline, rounds, last, claimed_from = time.monotonic() + PICK_UP_SECONDS, 0, None, None
        quiet_until = time.monotonic() + linger
        while True:
            looked = time.time()
            waiting = any(_parses(o.name) for o in store.list(layout.landing_prefix(hour)))
            if waiting and time.monotonic() > deadline:
                if claimed_from is not None:
                    tag.record(hour, claimed_from)  # the files waiting now are left to a follow-up
                return rounds, last
            if not waiting:
                if time.monotonic() >= quiet_until:
                    tag.record(hour, looked)  # every file landed before this look is claimed
                    return rounds, last
                _pause()
                continue

            def began(at: float) -> None:
                nonlocal claimed_from
                claimed_from = at

            with db.advisory_lock(layout.hour_lock_name(hour)):
                claim = claim_hour(store, hour, engine, settings.landing_page_size, on_listed=began)
            log_claim(context, claim)
            _log_results(context, keys.RAW_FILES, key, claim_metadata(claim), checks.raw_checks(claim.extra_columns))
            report = recompute_minutes(store, db, settings, [hour], engine)
            _log_results(context, keys.T1_MINUTE, key, t1_metadata([report]), checks.t1_checks(db, settings, [report]))
            last = rebuild_hours(store, db, settings, [hour], engine)
            rounds += 1
            quiet_until = time.monotonic() + linger

    @dg.asset(
        deps=[t1_minute],
        group_name=GROUP,
        key_prefix=[GROUP],
        owners=OWNERS,
        kinds={"postgres"},  # merged and ranked in SQL, whatever the engine
        automation_condition=rankings_condition(),
        metadata={"dagster/table_name": rank_names[0], **_table_metadata(rank_names)},
    )
    def rankings(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        """Every key of the 60 minutes ending at the newest t1 minute, ranked by GMV (purchases)
        or views; the rank tables are replaced as a whole. Refreshed whenever t1 changes."""
        db = warehouse.get()
        db.ensure(all_tables(settings.events, settings.dimensions))
        written, newest = rebuild_rankings(db, settings)
        preview = checks.top_preview(db, settings)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": written,
            "window_end": str(newest) if newest is not None else "no data yet",
            "top": dg.MetadataValue.md(preview),
        })

    @dg.asset(
        partitions_def=archive_partitions(settings),
        deps=[dg.AssetDep(raw_files, partition_mapping=dg.TimeWindowPartitionMapping())],
        group_name=GROUP,
        key_prefix=[GROUP],
        owners=OWNERS,
        kinds={"csv", settings.engine, *(["s3"] if settings.lake_url.startswith("s3://") else [])},
        pool="events_housekeeping",
        tags={LANE_TAG: HOUSEKEEPING},
    )
    @on_engine(settings)
    def archive(context: dg.AssetExecutionContext, store: Lake, db: Warehouse, engine: Engine):
        """One gzipped CSV per block holding every accepted file's rows once (with its file name).
        Written, read back and verified per file (rows and checksum) before the raw files are
        deleted; a late file re-archives its block."""
        window = context.partition_time_window
        report = archive_block(store, db, pd.Timestamp(window.start).tz_convert("UTC"),
                                          pd.Timestamp(window.end).tz_convert("UTC"), engine)
        if report.note:
            context.log.warning(report.note)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": report.rows,
            "archive_key": report.key,
            "files": report.files,
            "raw_files_deleted": report.raw_deleted,
            "bytes": report.bytes,
            "written_by": report.written_by or "nothing to do",
        })

    @dg.asset(
        deps=[t1_minute],
        group_name=GROUP,
        key_prefix=[GROUP],
        owners=OWNERS,
        kinds={"postgres"},
        pool="events_housekeeping",
    )
    def t1_retention(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        """Deletes t1 minutes older than PIPELINE_T1_RETENTION_HOURS before the newest t1 minute."""
        give_way_if_background(context.run)
        deleted, cutoff = apply_t1_retention(warehouse.get(), settings)
        return dg.MaterializeResult(metadata={"dagster/row_count": deleted, "deleted_rows": deleted,
                                              "cutoff": str(cutoff)})

    @dg.asset(
        deps=[t2_hour],
        group_name=GROUP,
        key_prefix=[GROUP],
        owners=OWNERS,
        kinds={"postgres"},
        pool="events_housekeeping",
    )
    def t2_retention(context: dg.AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource):
        """Deletes t2 hours (and staged rows) older than PIPELINE_T2_RETENTION_DAYS; archives and
        minute aggregates are kept."""
        give_way_if_background(context.run)
        deleted, cutoff = apply_t2_retention(lake.get(), warehouse.get(), settings)
        return dg.MaterializeResult(metadata={"dagster/row_count": deleted, "deleted_rows": deleted,
                                              "cutoff": str(cutoff)})

    return [raw_files, t1_minute, t2_hour, rankings, archive, t1_retention, t2_retention,
            build_dashboard_asset(settings)]


def on_engine(settings: Settings):
    """Give a step body (context, lake, warehouse, engine) the asset signature of the engine.

    With PIPELINE_ENGINE=spark the asset takes the ``spark`` resource (a lazy session: nothing
    starts until there are rows to compute); otherwise it takes no Spark resource at all, so a
    pandas deployment neither needs nor configures one. Name and docstring stay the body's.
    """

    def wrap(body):
        if settings.engine == "spark":
            from dagster_pyspark import LazyPySparkResource

            def step(context: dg.AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource,
                     spark: LazyPySparkResource):
                give_way_if_background(context.run)
                return body(context, lake.get(), warehouse.get(), get_engine("spark", spark=spark))
        else:

            def step(context: dg.AssetExecutionContext, lake: LakeResource, warehouse: WarehouseResource):
                give_way_if_background(context.run)
                return body(context, lake.get(), warehouse.get(), get_engine(settings.engine))

        # Not functools.wraps: its __wrapped__ would show Dagster the body's signature.
        step.__name__, step.__qualname__, step.__doc__ = body.__name__, body.__qualname__, body.__doc__
        return step

    return wrap


def rankings_condition() -> dg.AutomationCondition:
    """Refresh when any t1 hour was updated since the last refresh, once nothing upstream runs.

    ``eager()`` would wait for every upstream hour since the start to exist; this does not.
    """
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("t1 changed")
