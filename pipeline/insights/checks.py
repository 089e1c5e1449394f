"""Asset checks of the insights tables.

``month_reconciles`` blocks the monthly tops when the loaded month does not add up;
``few_rejected_rows`` is evaluated by the ingestion itself (only it knows what it rejected).
"""

import dagster as dg
import psycopg
from psycopg import sql

from pipeline.insights.partitions import Month
from pipeline.insights.tables import ANALYSES, EVENTS, RECORD_INGESTION
from pipeline.resources.warehouse import TableSpec, WarehouseResource

EVENTS_KEY = dg.AssetKey(["insights", EVENTS.name])
MAX_REJECTED_SHARE = 0.05

FEW_REJECTED_ROWS = dg.AssetCheckSpec(
    "few_rejected_rows", asset=EVENTS_KEY,
    description=f"At most {MAX_REJECTED_SHARE:.0%} of the dump's rows were quarantined. A warning, not "
                "a stop: the good rows are loaded, the bad ones wait in quarantine/insights/ with a reason.",
)


def rejected_rows_result(rejected: int, total: int) -> dg.AssetCheckResult:
    share = rejected / total if total else 0.0
    return dg.AssetCheckResult(
        check_name=FEW_REJECTED_ROWS.name, asset_key=EVENTS_KEY, passed=share <= MAX_REJECTED_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected_rows": rejected, "dump_rows": total, "rejected_share": round(share, 6)},
    )


def _month_filter(spec: TableSpec) -> sql.Composed:
    return sql.SQL(" WHERE {} = %s AND {} = %s").format(spec.column("_year"), spec.column("_month"))


def _non_null(column: str) -> sql.Composed:
    query = sql.SQL("SELECT count({}) FROM {}").format(EVENTS.column(column), EVENTS.table)
    return query + _month_filter(EVENTS)


def _total(spec: TableSpec) -> sql.Composed:
    query = sql.SQL("SELECT coalesce(sum({}), 0) FROM {}").format(spec.column("_count"), spec.table)
    return query + _month_filter(spec)


def _recorded_rows() -> sql.Composed:
    spec = RECORD_INGESTION
    return (sql.SQL("SELECT {} FROM {}").format(spec.column("rows"), spec.table) + _month_filter(spec)
            + sql.SQL(" ORDER BY {} DESC LIMIT 1").format(spec.column("ingested_at")))


def month_totals(conn: psycopg.Connection, month: Month) -> dict[str, int]:
    """Row and count totals of one month across the tables that must agree."""
    queries = {
        "events_rows": _non_null("timestamp"),
        "recorded_rows": _recorded_rows(),
        "dateevent_total": _total(ANALYSES["dateevent"].counts),
        "companies_total": _total(ANALYSES["companies"].counts),
        "events_with_country": _non_null("country"),
        "country_total": _total(ANALYSES["country"].counts),
        "events_with_email": _non_null("email"),
        "userbase_total": _total(ANALYSES["userbase"].counts),
    }
    totals = {}
    for name, query in queries.items():
        row = conn.execute(query, (month.year, month.month)).fetchone()
        totals[name] = int(row[0]) if row else 0
    return totals


def build_checks() -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(asset=EVENTS_KEY, blocking=True, name="month_reconciles")
    def month_reconciles(context: dg.AssetCheckExecutionContext,
                         warehouse: WarehouseResource) -> dg.AssetCheckResult:
        """The month's event rows equal the row count recorded for its ingestion and the totals of
        its day and company counts (every event has both); its country and user counts add up
        to the events that have a country and an email. Blocks the monthly tops when not."""
        op = context.op_execution_context
        with warehouse.get().connect() as conn:
            if op.has_partition_key:
                month = Month.from_partition_key(op.partition_key)
            else:  # run alone from the UI: check the latest ingestion
                spec = RECORD_INGESTION
                latest = sql.SQL("SELECT {}, {} FROM {} ORDER BY {} DESC LIMIT 1").format(
                    spec.column("_year"), spec.column("_month"), spec.table, spec.column("ingested_at"))
                last = conn.execute(latest).fetchone()
                if last is None:
                    return dg.AssetCheckResult(passed=False, description="no month has been ingested yet")
                month = Month(*last)
            totals = month_totals(conn, month)
        rows = totals["events_rows"]
        passed = (
            rows > 0
            and rows == totals["recorded_rows"] == totals["dateevent_total"] == totals["companies_total"]
            and totals["country_total"] == totals["events_with_country"]
            and totals["userbase_total"] == totals["events_with_email"]
        )
        return dg.AssetCheckResult(passed=passed, metadata={"month": month.label, **totals})

    return [month_reconciles]
