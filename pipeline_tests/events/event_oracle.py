"""An independent batch oracle: DuckDB SQL over all accepted files, no platform code involved.

It re-implements the data contract of DESIGN section 3 in SQL so the platform's tables can be
compared with a from-scratch computation over every accepted file.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

KEY_TYPES = {"product_id": "BIGINT", "category_id": "BIGINT"}

_TYPED = r"""
CREATE OR REPLACE TABLE typed AS
WITH raw AS (
    SELECT *, strptime(regexp_extract(filename, '(\d{4}-\d{2}-\d{2}-\d{2}-\d{2})-\d{2}-[^/]*$', 1),
                       '%Y-%m-%d-%H-%M') AS file_minute
    FROM read_csv(?, header = true, all_varchar = true, filename = true, union_by_name = true)
), parsed AS (
    SELECT *, TRY_CAST(replace(replace(event_time, ' UTC', ''), 'T', ' ') AS TIMESTAMP) AS ts,
           TRY_CAST(price AS DOUBLE) AS p, TRY_CAST(product_id AS BIGINT) AS pid,
           TRY_CAST(category_id AS BIGINT) AS cid, TRY_CAST(user_id AS BIGINT) AS uid
    FROM raw
)
SELECT ts, date_trunc('minute', ts) AS minute, event_type, pid AS product_id, cid AS category_id,
       coalesce(nullif(brand, ''), CAST(pid AS VARCHAR)) AS brand,
       coalesce(nullif(category_code, ''), CAST(cid AS VARCHAR)) AS code, p AS price, uid AS user_id,
       user_session
FROM parsed
WHERE ts IS NOT NULL AND pid IS NOT NULL AND cid IS NOT NULL AND uid IS NOT NULL AND p IS NOT NULL
  AND p >= 0 AND isfinite(p) AND event_type IN ('view', 'cart', 'remove_from_cart', 'purchase')
  AND date_trunc('minute', ts) = file_minute
"""

_CLEAN = r"""
CREATE OR REPLACE TABLE clean AS
WITH levels AS (
    SELECT *, split_part(code, '.', 1) AS category_l1, nullif(split_part(code, '.', 2), '') AS l2,
           nullif(split_part(code, '.', 3), '') AS l3
    FROM typed
), padded AS (
    SELECT * EXCLUDE (l2, l3), coalesce(l2, category_l1) AS category_l2, coalesce(l3, l2, category_l1) AS category_l3,
           row_number() OVER (PARTITION BY minute, user_session, product_id, event_type ORDER BY ts, price) AS n
    FROM levels
)
SELECT * EXCLUDE (n) FROM padded WHERE event_type = 'purchase' OR (event_type = 'view' AND n = 1)
"""


def batch_oracle(files: list[Path], events, dimensions) -> dict[tuple[str, str], pd.DataFrame]:
    """Minute aggregates per (event, dimension) over all given files."""
    con = duckdb.connect()
    con.execute(_TYPED, [[str(f) for f in files]])
    con.execute(_CLEAN)
    out = {}
    for event in events:
        for dimension in dimensions:
            key = f"CAST({dimension} AS {KEY_TYPES.get(dimension, 'VARCHAR')}) AS {dimension}"
            if event == "view":
                metrics = "count(*) AS view_count" + (", avg(price) AS avg_price" if dimension == "product_id" else "")
            else:
                metrics = "sum(price) AS gmv, count(*) AS purchase_count, sum(price) / count(*) AS avg_price"
            frame = con.execute(
                f"SELECT minute, {key}, {metrics} FROM clean WHERE event_type = '{event}' "
                f"GROUP BY ALL ORDER BY 1, 2").df()
            frame["minute"] = pd.to_datetime(frame["minute"]).dt.tz_localize("UTC")
            out[(event, dimension)] = frame
    return out


def to_hours(minutes: pd.DataFrame, event: str, dimension: str) -> pd.DataFrame:
    frame = minutes.copy()
    frame["hour"] = frame.pop("minute").dt.floor("h")
    count = "view_count" if event == "view" else "purchase_count"
    if "avg_price" in frame:
        frame["weighted"] = frame["avg_price"] * frame[count]
    grouped = frame.groupby(["hour", dimension], as_index=False).sum(numeric_only=True)
    if "avg_price" in frame:
        grouped["avg_price"] = grouped.pop("weighted") / grouped[count]
    cols = ["hour", dimension] + [c for c in ("view_count", "gmv", "purchase_count", "avg_price") if c in grouped]
    return grouped[cols].sort_values(["hour", dimension]).reset_index(drop=True)


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str], label: str) -> None:
    actual = actual.sort_values(keys).reset_index(drop=True)
    expected = expected[list(actual.columns)].sort_values(keys).reset_index(drop=True)
    for column in actual.columns:
        if column in ("minute", "hour"):
            actual[column] = pd.to_datetime(actual[column], utc=True).astype("datetime64[ns, UTC]")
            expected[column] = pd.to_datetime(expected[column], utc=True).astype("datetime64[ns, UTC]")
        elif actual[column].dtype.kind in "iuf" or expected[column].dtype.kind in "iuf":
            actual[column] = actual[column].astype("float64")
            expected[column] = expected[column].astype("float64")
        else:
            actual[column] = actual[column].astype(str)
            expected[column] = expected[column].astype(str)
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-9, atol=1e-6, obj=label)
