"""The practical single-machine floor: DuckDB reads every file at once, applies the same data
contract in SQL (validation, cleaning, view dedupe, aggregation) and COPYs the t1 tables into
PostgreSQL. No bookkeeping, no lake, no Dagster: what any platform must at least spend."""

from __future__ import annotations

import io
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from pipeline.events.tables import metric_names, pairs, t1_table
from pipeline.resources.warehouse import Warehouse

# The contract of DESIGN section 3 in SQL. Money is DECIMAL(18,4), the platform's exact 1/10,000
# units, so sums do not depend on the order of rows.
_CLEAN = r"""
CREATE TABLE clean AS
WITH raw AS (
    SELECT *, strptime(regexp_extract(filename, '(\d{4}-\d{2}-\d{2}-\d{2}-\d{2})-\d{2}-[^/]*$', 1),
                       '%Y-%m-%d-%H-%M') AS file_minute
    FROM read_csv(?, header = true, all_varchar = true, filename = true)
), typed AS (
    SELECT TRY_CAST(replace(replace(event_time, ' UTC', ''), 'T', ' ') AS TIMESTAMP) AS ts, event_type,
           TRY_CAST(product_id AS BIGINT) AS product_id, TRY_CAST(category_id AS BIGINT) AS category_id,
           category_code, brand, TRY_CAST(price AS DECIMAL(18, 4)) AS price,
           TRY_CAST(user_id AS BIGINT) AS user_id, user_session, file_minute
    FROM raw
), accepted AS (
    SELECT ts, date_trunc('minute', ts) AS minute, event_type, product_id, price, user_session,
           coalesce(brand, CAST(product_id AS VARCHAR)) AS brand,
           coalesce(category_code, CAST(category_id AS VARCHAR)) AS code
    FROM typed
    WHERE ts IS NOT NULL AND product_id >= 0 AND category_id >= 0 AND user_id >= 0
      AND price BETWEEN 0 AND 1000000000 AND event_type IN ('purchase', 'view')
      AND date_trunc('minute', ts) = file_minute
)
SELECT minute, event_type, product_id, brand, price,
       coalesce(nullif(split_part(code, '.', 3), ''), nullif(split_part(code, '.', 2), ''),
                split_part(code, '.', 1)) AS category_l3
FROM accepted
QUALIFY event_type = 'purchase'
     OR row_number() OVER (PARTITION BY event_type, minute, user_session, product_id ORDER BY ts, price) = 1
"""

# One pass for the three dimensions; GROUPING() tells which set a row belongs to.
_AGGREGATE = """
SELECT strftime(minute, '%Y-%m-%d %H:%M:%S+00') AS minute_text, event_type, product_id, brand, category_l3,
       GROUPING(product_id, brand, category_l3) AS grouping_set, count(*) AS n,
       CAST(sum(price) AS DOUBLE) AS money
FROM clean
GROUP BY GROUPING SETS ((minute, event_type, product_id), (minute, event_type, brand),
                        (minute, event_type, category_l3))
"""
_GROUPING_SET = {"product_id": 0b011, "brand": 0b101, "category_l3": 0b110}
EVENTS, DIMENSIONS = ("purchase", "view"), tuple(_GROUPING_SET)


def _table_for(aggregates: pa.Table, event: str, dimension: str) -> pa.Table:
    mask = pc.and_(
        pc.equal(aggregates["event_type"], event),
        pc.equal(aggregates["grouping_set"], _GROUPING_SET[dimension]),
    )
    part = aggregates.filter(mask)
    n, money = part["n"], part["money"]
    metrics = {
        "view_count": n,
        "purchase_count": n,
        "gmv": money,
        "avg_price": pc.divide(money, pc.cast(n, pa.float64())),
    }
    columns = {"minute": part["minute_text"], dimension: part[dimension]}
    columns.update({name: metrics[name] for name in metric_names(event, dimension)})
    return pa.table(columns)


def run_floor(files: list[Path], pg_url: str) -> dict:
    """Read, clean, aggregate and COPY the default t1 tables (DuckDB uses every core); returns the timings."""
    warehouse = Warehouse(pg_url)
    specs = {pair: t1_table(*pair) for pair in pairs(EVENTS, DIMENSIONS)}
    warehouse.ensure(specs.values())
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(_CLEAN, [[str(f) for f in files]])
    aggregates = con.sql(_AGGREGATE).to_arrow_table()
    read_s = time.perf_counter() - started
    rows = 0
    with warehouse.connect() as conn, conn.transaction():
        for (event, dimension), spec in specs.items():
            table = _table_for(aggregates, event, dimension)
            buffer = io.BytesIO()
            pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
            copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
                spec.table, sql.SQL(", ").join(map(spec.column, table.column_names))
            )
            with conn.cursor() as cur, cur.copy(copy) as stream:
                stream.write(buffer.getvalue())
            rows += table.num_rows
    con.close()
    return {"wall_s": time.perf_counter() - started, "duckdb_s": read_s, "t1_rows": rows}
