"""Asset checks of the event tables, evaluated inside the run that wrote the data.

They are emitted by the assets themselves (``check_specs``) so a blocking failure stops the
downstream steps of the same run: a t1 that does not reconcile with its raw rows never feeds t2.
"""

from __future__ import annotations

import math

import dagster as dg
import pandas as pd
from psycopg import sql

from pipeline.events import clock, keys
from pipeline.events.aggregates import from_long, read_aggregates
from pipeline.events.minutes import MinuteReport
from pipeline.events.tables import metric_names, pairs, rank_table, t1_table, t2_table
from pipeline.resources.lake import Lake
from pipeline.resources.warehouse import TableSpec, Warehouse
from pipeline.settings import Settings

RAW_KNOWN_COLUMNS = "raw_files_have_known_columns"
T1_RECONCILES = "t1_reconciles_with_raw"
T1_UNIQUE = "t1_unique_keys"
T1_SCHEMA = "t1_schema"
T2_MATCHES = "t2_matches_minutes"
T2_UNIQUE = "t2_unique_keys"


def raw_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(RAW_KNOWN_COLUMNS, asset=keys.RAW_FILES,
                          description="The files claimed in this run have only the columns of the event "
                                      "contract (warning: files with extra columns are accepted, their extra "
                                      "columns kept in raw/ and the archive but not in the tables)."),
    ]


def raw_checks(extra_columns: dict[str, list[str]]) -> list[dg.AssetCheckResult]:
    """Warns (never blocks) when the servers started sending columns the tables do not use."""
    names = sorted({c for columns in extra_columns.values() for c in columns})
    return [dg.AssetCheckResult(
        check_name=RAW_KNOWN_COLUMNS, passed=not extra_columns, severity=dg.AssetCheckSeverity.WARN,
        description=(f"{len(extra_columns)} file(s) with extra column(s) {names}: accepted, the extra columns "
                     "are ignored by the tables and kept in raw/ and the archive") if extra_columns else None,
        metadata={"files_with_extra_columns": len(extra_columns), "extra_columns": dg.MetadataValue.json(names)},
    )]


def t1_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(T1_RECONCILES, asset=keys.T1_MINUTE, blocking=True,
                          description="Purchase count, GMV and deduplicated views of the recomputed minutes "
                                      "equal the totals of their accepted raw rows, in every t1 table."),
        dg.AssetCheckSpec(T1_UNIQUE, asset=keys.T1_MINUTE, blocking=True,
                          description="One row per (minute, key) in every t1 table for this partition."),
        dg.AssetCheckSpec(T1_SCHEMA, asset=keys.T1_MINUTE, blocking=True,
                          description="Every t1, t2 and rank table has exactly the columns of DESIGN section 4."),
    ]


def t2_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(T2_MATCHES, asset=keys.T2_HOUR, blocking=True,
                          description="Each t2 hour's totals equal the sum of its minute aggregates "
                                      "(and of its t1 rows while they are inside the t1 window)."),
        dg.AssetCheckSpec(T2_UNIQUE, asset=keys.T2_HOUR, description="One row per (hour, key) in every t2 table."),
    ]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def _sums(conn, spec: TableSpec, time_col: str, times: list, event: str) -> tuple[int, float]:
    count_col = "view_count" if event == "view" else "purchase_count"
    gmv = sql.SQL("coalesce(sum(gmv), 0)") if event == "purchase" else sql.SQL("0")
    query = sql.SQL("SELECT coalesce(sum({}), 0), {} FROM {} WHERE {} = ANY(%s)").format(
        sql.Identifier(count_col), gmv, spec.table, spec.column(time_col))
    count, total = conn.execute(query, ([t.to_pydatetime() for t in times],)).fetchone()
    return int(count), float(total)


def _duplicates(conn, spec: TableSpec, time_col: str, times: list, dimension: str) -> int:
    query = sql.SQL("SELECT count(*) - count(DISTINCT ({}, {})) FROM {} WHERE {} = ANY(%s)").format(
        spec.column(time_col), spec.column(dimension), spec.table, spec.column(time_col))
    return int(conn.execute(query, ([t.to_pydatetime() for t in times],)).fetchone()[0])


def t1_checks(db: Warehouse, settings: Settings, reports: list[MinuteReport]) -> list[dg.AssetCheckResult]:
    minutes = [m for r in reports for m in r.in_window]
    expected: dict[str, list[float]] = {}
    for report in reports:
        for event, (count, gmv) in report.expected.items():
            acc = expected.setdefault(event, [0, 0.0])
            acc[0] += count
            acc[1] += gmv
    mismatches, duplicates = [], {}
    with db.connect() as conn:
        for event, dimension in pairs(settings.events, settings.dimensions):
            spec = t1_table(event, dimension)
            if minutes and event in expected:
                count, gmv = _sums(conn, spec, "minute", minutes, event)
                want_count, want_gmv = expected[event]
                if count != want_count or not _close(gmv, want_gmv):
                    mismatches.append({"table": spec.qualified, "count": count, "expected_count": want_count,
                                       "gmv": gmv, "expected_gmv": want_gmv})
            dup = _duplicates(conn, spec, "minute", minutes, dimension) if minutes else 0
            if dup:
                duplicates[spec.qualified] = dup
        schema_errors = schema_mismatches(conn, settings)
    return [
        dg.AssetCheckResult(check_name=T1_RECONCILES, passed=not mismatches, metadata={
            "minutes_checked": len(minutes),
            "expected": dg.MetadataValue.json({k: list(v) for k, v in expected.items()}),
            "mismatches": dg.MetadataValue.json(mismatches),
        }),
        dg.AssetCheckResult(check_name=T1_UNIQUE, passed=not duplicates,
                            metadata={"duplicate_rows": dg.MetadataValue.json(duplicates)}),
        dg.AssetCheckResult(check_name=T1_SCHEMA, passed=not schema_errors,
                            metadata={"problems": dg.MetadataValue.json(schema_errors)}),
    ]


def schema_mismatches(conn, settings: Settings) -> list[str]:
    problems = []
    for event, dimension in pairs(settings.events, settings.dimensions):
        for spec in (t1_table(event, dimension), t2_table(event, dimension), rank_table(event, dimension)):
            rows = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "ORDER BY ordinal_position", (spec.schema, spec.name)).fetchall()
            actual = tuple(r[0] for r in rows)
            if actual != spec.column_names:
                problems.append(f"{spec.qualified}: columns {list(actual)}, expected {list(spec.column_names)}")
    return problems


def t2_checks(lake: Lake, db: Warehouse, settings: Settings, hours: list[pd.Timestamp]) -> list[dg.AssetCheckResult]:
    newest = clock.newest_t1_minute(db, settings)
    mismatches, duplicates = [], {}
    with db.connect() as conn:
        for hour in hours:
            long, _ = read_aggregates(lake, hour)
            t2_in_window = newest is None or hour > clock.t2_cutoff(newest, settings)
            t1_in_window = newest is not None and hour > clock.t1_cutoff(newest, settings)
            for event, dimension in pairs(settings.events, settings.dimensions):
                spec = t2_table(event, dimension)
                got = _sums(conn, spec, "hour", [hour], event)
                minutes = from_long(long, event, dimension)
                want = _frame_sums(minutes, event) if t2_in_window else (0, 0.0)
                sources = {"minute aggregates": want}
                if t1_in_window and t2_in_window:
                    t1_minutes = list(pd.date_range(hour, periods=60, freq="min"))
                    sources["t1 rows"] = _sums(conn, t1_table(event, dimension), "minute", t1_minutes, event)
                for source, (count, gmv) in sources.items():
                    if got[0] != count or not _close(got[1], gmv):
                        mismatches.append({"table": spec.qualified, "hour": str(hour), "t2": list(got),
                                           source: [count, gmv]})
                dup = _duplicates(conn, spec, "hour", [hour], dimension)
                if dup:
                    duplicates[spec.qualified] = dup
    return [
        dg.AssetCheckResult(check_name=T2_MATCHES, passed=not mismatches,
                            metadata={"hours_checked": len(hours), "mismatches": dg.MetadataValue.json(mismatches)}),
        dg.AssetCheckResult(check_name=T2_UNIQUE, passed=not duplicates,
                            metadata={"duplicate_rows": dg.MetadataValue.json(duplicates)}),
    ]


def _frame_sums(frame: pd.DataFrame, event: str) -> tuple[int, float]:
    if event == "view":
        return int(frame["view_count"].sum()), 0.0
    return int(frame["purchase_count"].sum()), float(frame["gmv"].sum())


def top_preview(db: Warehouse, settings: Settings, limit: int = 10) -> str:
    """A markdown top-N of each rank table, for the rankings materialization."""
    sections = []
    for event, dimension in pairs(settings.events, settings.dimensions):
        spec = rank_table(event, dimension)
        frame = db.read_frame(sql.SQL("SELECT * FROM {} WHERE rank <= %s ORDER BY rank").format(spec.table), (limit,))
        if frame.empty:
            continue
        columns = ["rank", dimension, *metric_names(event, dimension)]
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in frame[columns].itertuples(index=False):
            lines.append("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row) + " |")
        sections.append(f"**{spec.name}**\n\n" + "\n".join(lines))
    return "\n\n".join(sections) or "no data yet"
