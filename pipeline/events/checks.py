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
from pipeline.events.aggregation import PRICE_SCALE
from pipeline.events.hours import HourReport
from pipeline.events.minutes import MinuteReport
from pipeline.events.tables import metric_names, pairs, rank_table, t1_table, t2_table
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
                          description="One row per (minute, key) in every t1 table: each has a valid unique "
                                      "index on (minute, key), so PostgreSQL refuses any duplicate."),
        dg.AssetCheckSpec(T1_SCHEMA, asset=keys.T1_MINUTE, blocking=True,
                          description="Every t1, t2 and rank table has exactly the columns of DESIGN section 4."),
    ]


def t2_check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(T2_MATCHES, asset=keys.T2_HOUR, blocking=True,
                          description="Each t2 hour's totals equal the sum of its minute aggregates "
                                      "(and of its t1 rows while they are inside the t1 window)."),
        dg.AssetCheckSpec(T2_UNIQUE, asset=keys.T2_HOUR,
                          description="One row per (hour, key) in every t2 table: each has a valid unique "
                                      "index on (hour, key)."),
    ]


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def _totals_by_time(conn, spec: TableSpec, time_col: str, event: str, times: list[pd.Timestamp],
                    per_hour: bool = False) -> dict[pd.Timestamp, tuple[int, float]]:
    """(count, gmv) per time (or per hour of ``time_col``) over the given times, read from the table."""
    count_col = "view_count" if event == "view" else "purchase_count"
    gmv = sql.SQL("sum(gmv)") if event == "purchase" else sql.SQL("0")
    bucket = (sql.SQL("date_trunc('hour', {})").format(spec.column(time_col)) if per_hour
              else spec.column(time_col))
    query = sql.SQL("SELECT {bucket}, sum({count}), {gmv} FROM {table} WHERE {time} = ANY(%s) GROUP BY 1").format(
        bucket=bucket, count=sql.Identifier(count_col), gmv=gmv, table=spec.table, time=spec.column(time_col))
    rows = conn.execute(query, ([t.to_pydatetime() for t in times],)).fetchall()
    return {pd.Timestamp(when).tz_convert("UTC"): (int(count), float(money)) for when, count, money in rows}


def unique_index_problems(conn, specs: list[TableSpec]) -> dict[str, str]:
    """Tables without a valid unique index on exactly their key: with one, PostgreSQL itself makes
    a duplicate (time, key) row impossible, whatever wrote the table."""
    problems = {}
    for spec in specs:
        rows = conn.execute(
            "SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i "
            "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND i.indisvalid GROUP BY i.indexrelid",
            (spec.qualified,)).fetchall()
        if not any(list(columns) == list(spec.key) for (columns,) in rows):
            problems[spec.qualified] = f"no valid unique index on ({', '.join(spec.key)})"
    return problems


def t1_checks(db: Warehouse, settings: Settings, reports: list[MinuteReport]) -> list[dg.AssetCheckResult]:
    minutes = [m for r in reports for m in r.in_window]
    expected: dict[str, list[float]] = {}
    for report in reports:
        for event, (count, gmv) in report.expected.items():
            acc = expected.setdefault(event, [0, 0.0])
            acc[0] += count
            acc[1] += gmv
    mismatches = []
    specs = [t1_table(e, d) for e, d in pairs(settings.events, settings.dimensions)]
    with db.connect() as conn:
        for spec, (event, dimension) in zip(specs, pairs(settings.events, settings.dimensions)):
            if minutes and event in expected:
                found = _totals_by_time(conn, spec, "minute", event, minutes).values()
                count, gmv = sum(c for c, _ in found), sum(g for _, g in found)
                want_count, want_gmv = expected[event]
                if count != want_count or not _close(gmv, want_gmv):
                    mismatches.append({"table": spec.qualified, "count": count, "expected_count": want_count,
                                       "gmv": gmv, "expected_gmv": want_gmv})
        unique = unique_index_problems(conn, specs)
        schema_errors = schema_mismatches(conn, settings)
    return [
        dg.AssetCheckResult(check_name=T1_RECONCILES, passed=not mismatches, metadata={
            "minutes_checked": len(minutes),
            "expected": dg.MetadataValue.json({k: list(v) for k, v in expected.items()}),
            "mismatches": dg.MetadataValue.json(mismatches),
        }),
        dg.AssetCheckResult(check_name=T1_UNIQUE, passed=not unique,
                            metadata={"problems": dg.MetadataValue.json(unique)}),
        dg.AssetCheckResult(check_name=T1_SCHEMA, passed=not schema_errors,
                            metadata={"problems": dg.MetadataValue.json(schema_errors)}),
    ]


def schema_mismatches(conn, settings: Settings) -> list[str]:
    specs = [make(e, d) for e, d in pairs(settings.events, settings.dimensions) for make in (t1_table, t2_table, rank_table)]
    rows = conn.execute(
        "SELECT table_schema || '.' || table_name, array_agg(column_name::text ORDER BY ordinal_position) "
        "FROM information_schema.columns WHERE table_schema = ANY(%s) GROUP BY 1",
        (sorted({spec.schema for spec in specs}),)).fetchall()
    actual = {name: tuple(columns) for name, columns in rows}
    return [f"{spec.qualified}: columns {list(actual.get(spec.qualified, ()))}, expected {list(spec.column_names)}"
            for spec in specs if actual.get(spec.qualified, ()) != spec.column_names]


def t2_checks(db: Warehouse, settings: Settings, hours: list[pd.Timestamp],
              reports: list[HourReport]) -> list[dg.AssetCheckResult]:
    """t2 against the minute aggregates it was merged from and, inside the t1 window, against t1."""
    newest = clock.newest_t1_minute(db, settings)
    minute_totals = {k: v for r in reports for k, v in r.minute_totals.items()}
    t1_hours = [h for h in hours if newest is not None and h > clock.t1_cutoff(newest, settings)]
    t1_minutes = [m for h in t1_hours for m in pd.date_range(h, periods=60, freq="min")]
    mismatches = []
    specs = [t2_table(e, d) for e, d in pairs(settings.events, settings.dimensions)]
    with db.connect() as conn:
        for spec, (event, dimension) in zip(specs, pairs(settings.events, settings.dimensions)):
            got = _totals_by_time(conn, spec, "hour", event, hours)
            from_t1 = _totals_by_time(conn, t1_table(event, dimension), "minute", event, t1_minutes, per_hour=True)
            for hour in hours:
                count, units = minute_totals.get((hour, event, dimension), (0, 0))
                sources = {"minute aggregates": (count, units / PRICE_SCALE if event == "purchase" else 0.0)}
                if hour in t1_hours and (hour, event, dimension) in minute_totals:
                    sources["t1 rows"] = from_t1.get(hour, (0, 0.0))
                have = got.get(hour, (0, 0.0))
                for source, (want_count, want_gmv) in sources.items():
                    if have[0] != want_count or not _close(have[1], want_gmv):
                        mismatches.append({"table": spec.qualified, "hour": str(hour), "t2": list(have),
                                           source: [want_count, want_gmv]})
        unique = unique_index_problems(conn, specs)
    return [
        dg.AssetCheckResult(check_name=T2_MATCHES, passed=not mismatches,
                            metadata={"hours_checked": len(hours), "mismatches": dg.MetadataValue.json(mismatches)}),
        dg.AssetCheckResult(check_name=T2_UNIQUE, passed=not unique,
                            metadata={"problems": dg.MetadataValue.json(unique)}),
    ]


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
