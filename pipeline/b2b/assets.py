"""Assets of the b2b group: thin steps that move data between the lake, the pure transforms
and the warehouse. Built by :func:`build_assets` because the partitions depend on settings.

Graph (daily partitions except ``init``)::

    init -> raw_files -> companies -> orders (and the previous day's orders) --> final_tables -> reports
                     \\-> weblog_hits --------------------------------------/
"""

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from pipeline.b2b import generate, queries, storage
from pipeline.b2b.partitions import daily_partitions, init_day
from pipeline.b2b.tables import (
    ALL_TABLES,
    COMPANIES,
    CORE,
    CUSTOMERS,
    ORDERS,
    PRODUCTS,
    REPORTS,
    SNAPSHOTS,
    WEBLOG_HITS,
    arrow_schema,
)
from pipeline.b2b.transform import (
    COMPANY_CHANGE_FIELDS,
    INIT_FIELDS,
    LEAD_FIELDS,
    QUOTE_FIELDS,
    Engine,
    assemble_day_orders,
    build_reports,
    clean_company_names,
    init_orders,
    missing_ids,
    parse_rows,
    plan_company_upsert,
    reject_duplicates,
)
from pipeline.b2b.weblog import parse_weblog
from pipeline.resources.lake import Lake, LakeResource, fingerprint
from pipeline.resources.warehouse import Warehouse, WarehouseResource

GROUP = "b2b"
OWNERS = ["team:analytics"]
INIT = dg.AssetKey(["b2b", "init"])
RAW_FILES = dg.AssetKey(["b2b", "raw_files"])
COMPANIES_KEY = dg.AssetKey(["b2b", "companies"])
ORDERS_KEY = dg.AssetKey(["b2b", "orders"])
WEBLOG_HITS_KEY = dg.AssetKey(["b2b", "weblog_hits"])
FINAL_TABLES = dg.AssetKey(["b2b", "final_tables"])
REPORT_KEYS = {name: dg.AssetKey(["b2b", name]) for name in REPORTS}
FILE_SET_METADATA = "file_set"


class InitConfig(dg.Config):
    rows: int = 5000
    seed: int = 0
    regenerate: bool = False  # rewrite b2b/init/ even when the files are there


class RawFilesConfig(dg.Config):
    rows: int = 2000
    seed: int = 0
    bad_lines: int = 0  # corrupt this many lines per raw file, to see quarantine at work
    regenerate: bool = False  # overwrite the day's files even when they are there


def _day(context: dg.AssetExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)


def read_init_tables(lake: Lake, day: dt.date) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """The init files as warehouse-ready frames, and the rejected rows per file."""
    frames, rejects = {}, {}
    for name, fields in INIT_FIELDS.items():
        text = storage.read_required(lake, storage.init_key(name), "materialize b2b/init")
        rows, rejects[name] = parse_rows(text, fields, source=f"{name}.csv")
        frames[name] = rows
    frames["companies"] = frames["companies"].assign(
        company_name=clean_company_names(frames["companies"]["company_name"]), updated_on=day
    )
    frames["orders"] = init_orders(frames["orders"]).assign(batch_date=day)
    for spec in CORE:
        frames[spec.name], duplicates = reject_duplicates(frames[spec.name], spec.key)
        rejects[spec.name] = pd.concat([rejects[spec.name], duplicates], ignore_index=True)
    return frames, rejects


def write_snapshots(warehouse: Warehouse, lake: Lake, day: dt.date) -> dict[str, int]:
    """Parquet snapshots of every table as of ``day``: the growing tables (orders, web logs)
    up to that day, the others as they stand. Returns rows per snapshot."""
    counts = {}
    for name, spec in SNAPSHOTS.items():
        if spec is ORDERS:
            frame = warehouse.read_frame(queries.select_up_to(ORDERS, "batch_date"), (day,))
        elif spec is WEBLOG_HITS:
            frame = warehouse.read_frame(queries.select_up_to(WEBLOG_HITS, "log_date"), (day,))
        else:
            frame = warehouse.read_frame(queries.select_all(spec))
        if frame.empty:
            frame = pd.DataFrame(columns=list(spec.column_names))
        storage.write_parquet(lake, storage.snapshot_key(name, day), frame, arrow_schema(spec))
        counts[name] = len(frame)
    return counts


def _quarantine(lake: Lake, batch: str, names: tuple[str, ...], rejects: pd.DataFrame, log) -> int:
    """Quarantine each file's rejected lines (clearing an earlier run's when clean); returns the count."""
    unexpected = set(rejects["source"]) - set(names)
    if unexpected:  # pragma: no cover - programming error
        raise ValueError(f"rejects of files {sorted(unexpected)} have no quarantine place")
    for name in names:
        part = rejects[rejects["source"] == name]
        key = storage.write_quarantine(lake, batch, name, part)
        if key:
            log.warning(f"{len(part)} rejected lines of {name} quarantined to {lake.uri(key)}")
    return len(rejects)


def build_assets(start: dt.date, engine: Engine) -> list[dg.AssetsDefinition]:
    partitions = daily_partitions(start)
    first_day = init_day(start)

    @dg.asset(key=INIT, group_name=GROUP, owners=OWNERS, kinds={"python", "postgres", "parquet"})
    def init(
        context: dg.AssetExecutionContext,
        config: InitConfig,
        warehouse: WarehouseResource,
        lake: LakeResource,
    ) -> dg.MaterializeResult:
        """Initial load: companies, customers, products and orders from ``b2b/init/`` (generated
        there first, 5,000 rows each, unless the files exist), replacing the four tables and
        emptying the web-log hits; then the snapshot of the day before the first partition, web
        logs included, so the first daily run has one to build on."""
        store, wh = lake.get(), warehouse.get()
        if config.regenerate or not all(store.exists(storage.init_key(name)) for name in INIT_FIELDS):
            tables = generate.init_tables(until=first_day, rows=config.rows, seed=config.seed)
            for key, text in generate.init_files(tables).items():
                store.write_text(key, text)
        frames, rejects = read_init_tables(store, first_day)
        rejected = _quarantine(
            store,
            "init",
            tuple(f"{name}.csv" for name in INIT_FIELDS),
            pd.concat(list(rejects.values()), ignore_index=True),
            context.log,
        )
        wh.ensure(ALL_TABLES)
        with wh.connect() as conn, conn.transaction():
            loaded = {spec.name: wh.replace_all(spec, frames[spec.name], conn) for spec in CORE}
            wh.replace_all(WEBLOG_HITS, pd.DataFrame(columns=list(WEBLOG_HITS.column_names)), conn)
        snapshots = write_snapshots(wh, store, first_day)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(loaded.values()),
                "rows_per_table": loaded,
                "rejected_rows": rejected,
                "snapshot_day": first_day.isoformat(),
                "snapshot_rows": snapshots,
            }
        )

    @dg.asset(
        key=RAW_FILES,
        deps=[INIT],
        partitions_def=partitions,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"python"},
    )
    def raw_files(
        context: dg.AssetExecutionContext, config: RawFilesConfig, lake: LakeResource
    ) -> dg.MaterializeResult:
        """The day's input: company quotes, CRM leads and web logs under ``b2b/raw/<day>/`` and
        the company ``insert/``/``update/`` files. Files landed by the user are used as they are;
        when none of the three raw files is there, the day is generated as the seed's daily job
        did (referring to the init tables in the lake; same day, same seed: same bytes), never
        replacing a file that is there. Some raw files but not all: the run fails, naming them."""
        store, day = lake.get(), _day(context)
        present = [name for name in storage.RAW_FILES if store.exists(storage.raw_key(day, name))]
        if present and len(present) < len(storage.RAW_FILES) and not config.regenerate:
            missing = [name for name in storage.RAW_FILES if name not in present]
            folder = store.uri(storage.raw_key(day, present[0])).rsplit("/", 1)[0]
            raise dg.Failure(
                description=f"{day}: {', '.join(present)} {'is' if len(present) == 1 else 'are'} in "
                f"{folder}/ but {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} missing: land the missing file(s), or remove the "
                "present one(s) to have the day generated (or run with regenerate: true to replace them)",
                metadata={"present": present, "missing": missing},
            )
        written = {}
        if config.regenerate or not present:
            frames, _ = read_init_tables(store, first_day)
            generated = generate.day_files(day, frames, rows=config.rows, seed=config.seed, bad_lines=config.bad_lines)
            written = {key: text for key, text in generated.items() if config.regenerate or not store.exists(key)}
            for key, text in written.items():
                store.write_text(key, text)
        day_keys = [storage.raw_key(day, name) for name in storage.RAW_FILES]
        day_keys += [storage.change_key(kind, day) for kind in storage.CHANGE_KINDS]
        kept = [key for key in day_keys if key not in written and store.exists(key)]
        if kept:
            context.log.info(f"using the day's files already in the lake: {kept}")
        lines = sum(text.count("\n") for text in written.values())
        lines += sum(store.read_text(key).count("\n") for key in kept)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": lines,
                "generated": [store.uri(key) for key in written],
                "kept": [store.uri(key) for key in kept],
                # b2b_day_sensor leaves alone a day whose files are still the ones this run used and loaded
                FILE_SET_METADATA: fingerprint(storage.day_input(store, day)),
            }
        )

    @dg.asset(
        key=COMPANIES_KEY,
        deps=[RAW_FILES],
        partitions_def=partitions,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"pandas", "postgres"},
    )
    def companies(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, lake: LakeResource
    ) -> dg.MaterializeResult:
        """Incremental upsert of ``b2b.companies`` from the day's ``insert/`` and ``update/``
        files: new ids inserted, changed names updated, nothing duplicated; applying a day again
        changes nothing, and an older day never overwrites a newer name."""
        store, wh, day = lake.get(), warehouse.get(), _day(context)
        changes, rejects, missing = {}, [], []
        for kind in storage.CHANGE_KINDS:
            key = storage.change_key(kind, day)
            text = store.read_text(key) if store.exists(key) else None
            if text is None:  # a day without new or renamed companies is normal
                missing.append(kind)
                context.log.info(f"no {kind} file for {day} ({store.uri(key)}): no {kind}s that day")
            changes[kind], rejected = parse_rows(
                text or "", COMPANY_CHANGE_FIELDS, source=f"{kind}-companies.csv", rest_in_last=True
            )
            rejects.append(rejected)
        ids = pd.concat([changes["insert"]["company_id"], changes["update"]["company_id"]]).astype("int64")
        wh.ensure(ALL_TABLES)
        with wh.connect() as conn, conn.transaction():
            queries.lock(conn, COMPANIES)
            current = queries.fetch(
                conn, queries.select_in(COMPANIES, "company_id"), (ids.unique().tolist(),)
            )
            plan = plan_company_upsert(current, changes["insert"], changes["update"], day)
            wh.replace_slice(COMPANIES, "company_id", plan.rows["company_id"].tolist(), plan.rows, conn)
        rejected = _quarantine(
            store,
            day.isoformat(),
            ("insert-companies.csv", "update-companies.csv"),
            pd.concat([*rejects, plan.rejects], ignore_index=True),
            context.log,
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": wh.row_count(COMPANIES),
                "dagster/table_name": COMPANIES.qualified,
                "inserted": plan.inserted,
                "updated": plan.updated,
                "unchanged": plan.unchanged,
                "kept_newer_name": plan.stale,
                "rejected_rows": rejected,
                "missing_files": missing,
            }
        )

    @dg.asset(
        key=ORDERS_KEY,
        partitions_def=partitions,
        group_name=GROUP,
        owners=OWNERS,
        kinds={engine.name, "postgres"},
        deps=[
            RAW_FILES,
            COMPANIES_KEY,
            dg.AssetDep(
                ORDERS_KEY, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
            ),
        ],
    )
    def orders(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, lake: LakeResource
    ) -> dg.MaterializeResult:
        """The day's orders: every company quote (``is_lead_sale`` false, ``crm_lead_id`` -1) and
        every CRM lead that became a sale, replacing the day's slice of ``b2b.orders``. Customers
        and companies not known yet become inferred members (id only, filled by later loads);
        rows with bad fields, unknown products or order ids seen twice are quarantined. A day
        is validated against the days before it, hence the dependency on the previous day."""
        store, wh, day = lake.get(), warehouse.get(), _day(context)
        hint = f"materialize b2b/raw_files for {day}"
        quotes, quote_rejects = parse_rows(
            storage.read_required(store, storage.raw_key(day, storage.QUOTES_FILE), hint),
            QUOTE_FIELDS,
            source=storage.QUOTES_FILE,
        )
        leads, lead_rejects = parse_rows(
            storage.read_required(store, storage.raw_key(day, storage.LEADS_FILE), hint),
            LEAD_FIELDS,
            source=storage.LEADS_FILE,
        )
        lead_orders, contradictions = engine.orders_from_leads(leads)
        candidates = pd.concat([engine.orders_from_quotes(quotes), lead_orders], ignore_index=True)
        order_ids = candidates["order_id"].astype("int64").unique().tolist()
        wh.ensure(ALL_TABLES)
        with wh.connect() as conn, conn.transaction():
            queries.lock(conn, ORDERS, CUSTOMERS, COMPANIES)
            products = queries.fetch(conn, queries.select_all(PRODUCTS, ["prod_id"]))
            if products.empty:
                raise RuntimeError("b2b.products is empty: materialize b2b/init before the daily partitions")
            elsewhere = queries.fetch(
                conn,
                queries.select_in_other_batch(ORDERS, "order_id", "batch_date", ["order_id", "batch_date"]),
                (order_ids, day),
            )
            day_orders, order_rejects = assemble_day_orders(candidates, products["prod_id"], elsewhere, day)
            inferred = {}
            for spec, column in ((CUSTOMERS, "customer_id"), (COMPANIES, "company_id")):
                referenced = day_orders[column].unique().tolist()
                known = queries.fetch(conn, queries.select_in(spec, column, [column]), (referenced,))
                new = missing_ids(day_orders[column], known[column])
                inferred[spec.name] = wh.copy_frame(conn, spec, pd.DataFrame({column: new}))
            written = wh.replace_slice(ORDERS, "batch_date", [day], day_orders, conn)
        rejects = pd.concat([quote_rejects, lead_rejects, contradictions, order_rejects], ignore_index=True)
        rejected = _quarantine(
            store, day.isoformat(), (storage.QUOTES_FILE, storage.LEADS_FILE), rejects, context.log
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": written,
                "dagster/table_name": ORDERS.qualified,
                "from_quotes": int((~day_orders["is_lead_sale"]).sum()),
                "from_leads": int(day_orders["is_lead_sale"].sum()),
                "leads_without_sale": int((~leads["is_lead_sale"].astype(bool)).sum()),
                "inferred_customers": inferred["customers"],
                "inferred_companies": inferred["companies"],
                "rejected_rows": rejected,
            }
        )

    @dg.asset(
        key=WEBLOG_HITS_KEY,
        deps=[RAW_FILES],
        partitions_def=partitions,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"pandas", "postgres"},
    )
    def weblog_hits(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, lake: LakeResource
    ) -> dg.MaterializeResult:
        """The day's web log parsed into ``(user_name, country, device, prod_id, created_date)``
        hits, replacing the day's slice of ``b2b.weblog_hits``; lines that do not parse are
        quarantined with their reasons."""
        store, wh, day = lake.get(), warehouse.get(), _day(context)
        text = storage.read_required(
            store, storage.raw_key(day, storage.WEBLOG_FILE), f"materialize b2b/raw_files for {day}"
        )
        hits, rejects = parse_weblog(text)
        wh.ensure(ALL_TABLES)
        written = wh.replace_slice(WEBLOG_HITS, "log_date", [day], hits.assign(log_date=day))
        rejected = _quarantine(
            store,
            day.isoformat(),
            (storage.WEBLOG_FILE,),
            rejects.assign(source=storage.WEBLOG_FILE),
            context.log,
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": written,
                "dagster/table_name": WEBLOG_HITS.qualified,
                "rejected_lines": rejected,
                "without_country": int(hits["country"].isna().sum()),
                "anonymous": int(hits["user_name"].isna().sum()),
            }
        )

    @dg.asset(
        key=FINAL_TABLES,
        deps=[ORDERS_KEY, WEBLOG_HITS_KEY, COMPANIES_KEY],
        partitions_def=partitions,
        group_name=GROUP,
        owners=OWNERS,
        kinds={"parquet"},
    )
    def final_tables(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, lake: LakeResource
    ) -> dg.MaterializeResult:
        """Parquet snapshots of the five tables as of the day under
        ``b2b/final/table=<table>/<day>/part-0.parquet``: the input of the reports."""
        store, day = lake.get(), _day(context)
        counts = write_snapshots(warehouse.get(), store, day)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": counts["orders"],
                "rows_per_table": counts,
                "path": store.uri(f"b2b/final/table=orders/{day.isoformat()}"),
            }
        )

    @dg.multi_asset(
        name="b2b_reports",
        partitions_def=partitions,
        specs=[
            dg.AssetSpec(
                key,
                deps=[FINAL_TABLES],
                group_name=GROUP,
                owners=OWNERS,
                kinds={engine.name, "csv", "postgres"},
                description=REPORT_DESCRIPTIONS[name],
            )
            for name, key in REPORT_KEYS.items()
        ],
    )
    def reports(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, lake: LakeResource
    ) -> Iterator[dg.MaterializeResult]:
        """Every report of the day from the day's snapshots: CSV under
        ``b2b/final/report=<report>/<day>/part-0.csv`` and the day's slice of ``b2b.<report>``."""
        store, wh, day = lake.get(), warehouse.get(), _day(context)
        snapshot = {name: storage.read_parquet(store, storage.snapshot_key(name, day)) for name in SNAPSHOTS}
        frames = build_reports(engine, snapshot, day)
        wh.ensure(ALL_TABLES)
        with wh.connect() as conn, conn.transaction():
            for name, frame in frames.items():
                wh.replace_slice(REPORTS[name], "report_date", [day], frame.assign(report_date=day), conn)
        for name, frame in frames.items():
            storage.write_csv(store, storage.report_key(name, day), frame)
            yield dg.MaterializeResult(
                asset_key=REPORT_KEYS[name],
                metadata={
                    "dagster/row_count": len(frame),
                    "dagster/table_name": REPORTS[name].qualified,
                    "path": store.uri(storage.report_key(name, day)),
                },
            )

    return [init, raw_files, companies, orders, weblog_hits, final_tables, reports]


REPORT_DESCRIPTIONS = {
    "monthly_sales": "Sales and profit per month (seed formula, rounded half up), best profit first.",
    "most_popular_products": "Products bought by users of the country with most distinct users in the logs.",
    "most_used_devices": "The 5 devices with the most web-log hits.",
    "total_leads": "Orders that came from a CRM lead, per customer.",
    "daily_sales": "Revenue, orders and units per day over the 30 days ending on the partition's day.",
    "top_companies": "The 10 companies with the most revenue.",
    "product_conversion": "Product page views versus orders per product, since the first web log.",
}
