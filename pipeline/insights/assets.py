"""Insights assets: a month's dump -> events and the seed's count tables -> monthly tops, and
the all-time tops over every month.

Thin wrappers: the rules are in :mod:`pipeline.insights.transform`, the SQL in
:mod:`pipeline.insights.tables`; these declare partitions, dependencies, automation, checks and
metadata, and take the warehouse and the lake by injection.
"""

from collections.abc import Iterator, Sequence

import dagster as dg
import pandas as pd

from pipeline.insights import checks, transform
from pipeline.insights.partitions import FORMATS, Month
from pipeline.insights.tables import (
    ALL_TABLES, ALL_TIME_LOCK, ANALYSES, EVENTS, RECORD_INGESTION, all_time_top_query, month_counts_query,
    month_lock, months_loaded_query, read, replace_month,
)
from pipeline.resources.lake import Lake, LakeResource, sha256_hex
from pipeline.resources.warehouse import TableSpec, Warehouse, WarehouseResource

GROUP = "insights"
OWNERS = ["team:analytics"]


def asset_key(spec: TableSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.schema, spec.name])


def _spec(table: TableSpec, description: str, deps: Sequence[TableSpec] = (), **kwargs) -> dg.AssetSpec:
    return dg.AssetSpec(
        asset_key(table), description=description, deps=[asset_key(d) for d in deps], group_name=GROUP,
        owners=OWNERS, kinds={"pandas", "postgres"}, metadata={"dagster/table_name": table.qualified},
        **kwargs,
    )


def _table_md(frame: pd.DataFrame) -> dg.MetadataValue:
    header = "| " + " | ".join(frame.columns) + " |\n|" + "---|" * len(frame.columns) + "\n"
    rows = "".join("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |\n"
                   for row in frame.itertuples(index=False))
    return dg.MetadataValue.md(header + rows)


def _first(top: pd.DataFrame, column: str) -> str:
    return str(top.iloc[0][column]) if len(top) else "none"


def find_dump(lake: Lake, month: Month) -> tuple[str, str]:
    """The month's dump key and format; a clear error when there is none or two."""
    found = [(month.dump_key(fmt), fmt) for fmt in FORMATS if lake.exists(month.dump_key(fmt))]
    if not found:
        raise dg.Failure(description=f"no dump for {month.label}: expected {month.dump_key('csv')} "
                                     f"or {month.dump_key('parquet')} in the lake {lake.url}")
    if len(found) > 1:
        raise dg.Failure(description=f"two dumps for {month.label} ({', '.join(k for k, _ in found)}): "
                                     "remove the one that should not be loaded")
    return found[0]


def quarantine_file(lake: Lake, month: Month, source_key: str, checksum: str, data: bytes,
                    reason: str) -> str:
    """A copy of a dump that cannot be loaded at all, beside a reason.txt naming the problem."""
    prefix = month.quarantine_prefix(checksum)
    lake.write_bytes(prefix + source_key.rsplit("/", 1)[-1], data)
    lake.write_text(prefix + "reason.txt",
                    f"source: {source_key}\nsha256: {checksum}\nwhole file rejected: {reason}\n")
    return lake.uri(prefix + "reason.txt")


def quarantine_rows(lake: Lake, month: Month, source_key: str, checksum: str, rejected: pd.DataFrame) -> str:
    """The rejected rows as read (plus ``_row`` and ``_reason``), ready to fix and send again."""
    prefix = month.quarantine_prefix(checksum)
    lake.write_text(prefix + "rejected_rows.csv", rejected.to_csv(index=False))
    reasons = rejected["_reason"].value_counts().sort_index()
    summary = "".join(f"  {count} row(s): {reason}\n" for reason, count in reasons.items())
    lake.write_text(prefix + "reason.txt",
                    f"source: {source_key}\nsha256: {checksum}\n"
                    f"rows rejected (see rejected_rows.csv; _row is the row number in the dump):\n{summary}")
    return lake.uri(prefix + "rejected_rows.csv")


def build_assets(partitions: dg.MonthlyPartitionsDefinition, top_n: int) -> list[dg.AssetsDefinition]:
    counts = [a.counts for a in ANALYSES.values()]

    @dg.multi_asset(
        name="insights_ingest_month",
        partitions_def=partitions,
        can_subset=False,
        specs=[
            _spec(EVENTS, "The month's dump as read: timestamp, email, country and tags typed, every other "
                          "column in `extra` (jsonb); rows with an unusable timestamp are in quarantine."),
            *(_spec(spec, f"Events per `{spec.columns[0].name}` and month (the seed's `{spec.name}` table).",
                    deps=[EVENTS]) for spec in counts),
        ],
        check_specs=[checks.FEW_REJECTED_ROWS],
    )
    def insights_ingest_month(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                              lake: LakeResource) -> Iterator:
        """Loads one month's dump into `insights.events` and its count tables, replacing the month's
        rows in every table in one transaction and recording the ingestion, so a replaced dump
        corrects the month and nothing doubles."""
        month, store, db = Month.from_partition_key(context.partition_key), lake.get(), warehouse.get()
        source_key, fmt = find_dump(store, month)
        data = store.read_bytes(source_key)
        checksum = sha256_hex(data)
        try:
            prepared = transform.prepare_events(transform.read_dump(data, fmt), month.year, month.month)
            if prepared.events.empty:
                raise transform.DumpError(f"no row has a timestamp inside {month.label}")
        except transform.DumpError as error:
            where = quarantine_file(store, month, source_key, checksum, data, str(error))
            raise dg.Failure(description=f"{source_key} cannot be loaded: {error}. The file is quarantined "
                                         f"at {where}; the month's tables were left as they were.") from error
        quarantined = None
        if len(prepared.rejected):
            quarantined = quarantine_rows(store, month, source_key, checksum, prepared.rejected)
            context.log.warning(f"{len(prepared.rejected)} row(s) of {source_key} quarantined: {quarantined}")

        ingested_at = pd.Timestamp.now(tz="UTC").isoformat()
        stamp = {"_year": month.year, "_month": month.month, "ingested_at": ingested_at}
        frames = {EVENTS: prepared.events.assign(**stamp)}
        for name, frame in transform.aggregate_month(prepared.events).items():
            frames[ANALYSES[name].counts] = frame.assign(**stamp)
        record = pd.DataFrame([{**stamp, "rows": len(prepared.events), "source_key": source_key,
                                "rejected_rows": len(prepared.rejected), "checksum": checksum}])

        db.ensure(ALL_TABLES)
        with db.advisory_lock(month_lock(month.year, month.month)), db.connect() as conn, conn.transaction():
            written = {spec: replace_month(conn, spec, month.year, month.month, frame)
                       for spec, frame in frames.items()}
            Warehouse.copy_frame(conn, RECORD_INGESTION, record)

        yield dg.MaterializeResult(asset_key=asset_key(EVENTS), metadata={
            "dagster/row_count": written[EVENTS], "dagster/table_name": EVENTS.qualified,
            "month": month.label, "source": store.uri(source_key), "format": fmt, "sha256": checksum,
            "rejected_rows": len(prepared.rejected), "quarantine": quarantined or "none",
            "extra_columns": dg.MetadataValue.json(list(prepared.extra_columns)), "ingested_at": ingested_at,
        })
        for spec in counts:
            yield dg.MaterializeResult(asset_key=asset_key(spec), metadata={
                "dagster/row_count": written[spec], "dagster/table_name": spec.qualified,
                "month": month.label})
        yield checks.rejected_rows_result(len(prepared.rejected), prepared.total)

    @dg.multi_asset(
        name="insights_month_top",
        partitions_def=partitions,
        can_subset=False,
        specs=[_spec(a.month_top, f"The month's top {top_n} `{a.value}` values by events, ties by value.",
                     deps=[a.counts]) for a in ANALYSES.values()],
    )
    def insights_month_top(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Iterator:
        """Ranks the month's countries, users, days, companies and tags (top N by events, ties
        broken by value) and replaces the month's rows of the five top tables at once."""
        month, db = Month.from_partition_key(context.partition_key), warehouse.get()
        db.ensure(ALL_TABLES)
        stamp = {"_year": month.year, "_month": month.month}
        with db.advisory_lock(month_lock(month.year, month.month)), db.connect() as conn, conn.transaction():
            tops = {a: transform.top_n(read(conn, month_counts_query(a.counts), (month.year, month.month)),
                                       a.value, top_n)
                    for a in ANALYSES.values()}
            for a, top in tops.items():
                replace_month(conn, a.month_top, month.year, month.month, top.assign(**stamp))
        for a, top in tops.items():
            yield dg.MaterializeResult(asset_key=asset_key(a.month_top), metadata={
                "dagster/row_count": len(top), "dagster/table_name": a.month_top.qualified,
                "month": month.label, "first": _first(top, a.value), "top": _table_md(top)})

    @dg.multi_asset(
        name="insights_all_time",
        can_subset=False,
        specs=[_spec(a.all_time, f"Top {top_n} `{a.value}` values by events over every loaded month "
                                 "(SUM of the monthly counts), ties by value.",
                     deps=[a.counts], automation_condition=any_month_changed()) for a in ANALYSES.values()],
    )
    def insights_all_time(warehouse: WarehouseResource) -> Iterator:
        """The same questions over every month in the warehouse; refreshed by automation whenever
        any month is (re)loaded, and replaced as a whole."""
        db = warehouse.get()
        db.ensure(ALL_TABLES)
        with db.advisory_lock(ALL_TIME_LOCK), db.connect() as conn, conn.transaction():
            months = read(conn, months_loaded_query())
            tops = {a: transform.top_n(read(conn, all_time_top_query(a), (top_n,)), a.value, top_n)
                    for a in ANALYSES.values()}
            for a, top in tops.items():
                db.replace_all(a.all_time, top, conn)
        labels = [f"{y:04d}-{m:02d}" for y, m in months.itertuples(index=False)]
        for a, top in tops.items():
            yield dg.MaterializeResult(asset_key=asset_key(a.all_time), metadata={
                "dagster/row_count": len(top), "dagster/table_name": a.all_time.qualified,
                "months": len(labels), "first_month": labels[0] if labels else "none",
                "last_month": labels[-1] if labels else "none",
                "first": _first(top, a.value), "top": _table_md(top)})

    return [insights_ingest_month, insights_month_top, insights_all_time]


def any_month_changed() -> dg.AutomationCondition:
    """Refresh once any month was (re)loaded since the last refresh and nothing upstream runs.

    ``eager()`` would wait for every month since the start to exist, which never happens for
    months without a dump; the all-time tables must follow whichever months are loaded.
    """
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("any month changed")
