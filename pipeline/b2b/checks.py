"""Asset checks of the b2b group.

Referential integrity is enforced here, not by foreign keys: the foundation's ``TableSpec``
declares unique keys only. The checks are blocking, so a load that leaves an order pointing at
no product, customer or company stops the run before snapshots and reports are built on it.
"""

import datetime as dt
import io

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq

from pipeline.b2b import queries, storage
from pipeline.b2b.assets import FINAL_TABLES, INIT, ORDERS_KEY, REPORT_KEYS, WEBLOG_HITS_KEY
from pipeline.b2b.tables import FOREIGN_KEYS, ORDERS, SNAPSHOTS, WEBLOG_HITS
from pipeline.b2b.transform import to_units
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import Warehouse, WarehouseResource

MAX_REJECTED_SHARE = 0.01


def orphan_counts(warehouse: Warehouse) -> dict[str, int]:
    """Rows per foreign key (``child.column -> parent.column``) whose parent row is missing."""
    return {
        f"{child.name}.{column} -> {parent.name}.{parent_column}": int(
            warehouse.scalar(queries.orphans(child, column, parent, parent_column))
        )
        for child, column, parent, parent_column in FOREIGN_KEYS
    }


def _integrity(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    orphans = orphan_counts(warehouse.get())
    return dg.AssetCheckResult(passed=not any(orphans.values()), metadata={"orphan_rows": orphans})


def build_checks() -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(asset=INIT, blocking=True, name="referential_integrity")
    def init_integrity(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        """Every product's supplier and every order's product, customer and company exist."""
        return _integrity(warehouse)

    @dg.asset_check(asset=ORDERS_KEY, blocking=True, name="referential_integrity")
    def orders_integrity(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        """Every product's supplier and every order's product, customer and company exist."""
        return _integrity(warehouse)

    @dg.asset_check(asset=WEBLOG_HITS_KEY, name="rejected_lines_below_1_percent")
    def weblog_rejects(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, lake: LakeResource
    ) -> dg.AssetCheckResult:
        """Warns when more than 1 % of the day's log lines were quarantined (a format change?)."""
        day = dt.date.fromisoformat(context.partition_key)
        hits = int(warehouse.get().scalar(queries.count_where(WEBLOG_HITS, "log_date"), (day,)))
        _, reasons_key = storage.quarantine_keys(day.isoformat(), storage.WEBLOG_FILE)
        store = lake.get()
        rejected = (
            len(pd.read_csv(io.StringIO(store.read_text(reasons_key)))) if store.exists(reasons_key) else 0
        )
        share = rejected / max(hits + rejected, 1)
        return dg.AssetCheckResult(
            passed=share <= MAX_REJECTED_SHARE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"hits": hits, "rejected": rejected, "rejected_share": share},
        )

    @dg.asset_check(asset=FINAL_TABLES, blocking=True, name="snapshots_match_warehouse")
    def snapshots_complete(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource, lake: LakeResource
    ) -> dg.AssetCheckResult:
        """Each Parquet snapshot of the day holds as many rows as its table as of that day."""
        day, store, wh = dt.date.fromisoformat(context.partition_key), lake.get(), warehouse.get()
        mismatches = {}
        for name, spec in SNAPSHOTS.items():
            if spec is ORDERS:
                expected = wh.scalar(queries.count_up_to(ORDERS, "batch_date"), (day,))
            elif spec is WEBLOG_HITS:
                expected = wh.scalar(queries.count_up_to(WEBLOG_HITS, "log_date"), (day,))
            else:
                expected = wh.row_count(spec)
            found = pq.read_metadata(io.BytesIO(store.read_bytes(storage.snapshot_key(name, day)))).num_rows
            if found != expected:
                mismatches[name] = {"parquet": found, "warehouse": int(expected)}
        return dg.AssetCheckResult(passed=not mismatches, metadata={"mismatches": mismatches})

    @dg.asset_check(asset=REPORT_KEYS["monthly_sales"], name="reconciles_with_orders")
    def monthly_sales_reconcile(
        context: dg.AssetCheckExecutionContext, lake: LakeResource
    ) -> dg.AssetCheckResult:
        """The report's sales add up to the day's orders of known products (within rounding)."""
        day, store = dt.date.fromisoformat(context.partition_key), lake.get()
        report = pd.read_csv(io.StringIO(store.read_text(storage.report_key("monthly_sales", day))))
        orders = storage.read_parquet(store, storage.snapshot_key("orders", day))
        products = storage.read_parquet(store, storage.snapshot_key("products", day))
        priced = orders[orders["prod_id"].isin(products["prod_id"])]
        expected = int(to_units(priced["prod_quote_price"]).sum()) / 10_000
        reported = float(report["monthly_sales"].sum())
        tolerance = 0.005 * len(report) + 1e-6
        return dg.AssetCheckResult(
            passed=abs(reported - expected) <= tolerance,
            metadata={"report_total": reported, "orders_total": expected, "tolerance": tolerance},
        )

    return [init_integrity, orders_integrity, weblog_rejects, snapshots_complete, monthly_sales_reconcile]
