"""The durable minute aggregates of an hour in the lake (``aggregates/<hour>.parquet``), with the
file set each minute was computed from: t1's record of what is current, t2's input."""

from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.events import layout
from pipeline.events.tables import metric_names
from pipeline.resources.lake import Lake

AGG_COLUMNS = ("minute", "event", "dimension", "key", "view_count", "gmv", "purchase_count", "avg_price")
_STATE_KEY = b"clickflow.minute_inputs"


def read_aggregates(lake: Lake, hour: pd.Timestamp) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The hour's minute aggregates (long form) and the file set each minute was computed from."""
    key = layout.aggregates_key(hour)
    if not lake.exists(key):
        return empty_long(), {}
    table = pq.read_table(io.BytesIO(lake.read_bytes(key)))
    state = json.loads((table.schema.metadata or {}).get(_STATE_KEY, b"{}"))
    return table.to_pandas(), state


def write_aggregates(lake: Lake, hour: pd.Timestamp, frame: pd.DataFrame, state: dict[str, list[str]]) -> None:
    table = pa.Table.from_pandas(frame[list(AGG_COLUMNS)], preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _STATE_KEY: json.dumps(state).encode()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    lake.write_bytes(layout.aggregates_key(hour), buffer.getvalue())


def empty_long() -> pd.DataFrame:
    return pd.DataFrame({
        "minute": pd.Series(dtype="datetime64[ns, UTC]"), "event": pd.Series(dtype=str),
        "dimension": pd.Series(dtype=str), "key": pd.Series(dtype=str),
        "view_count": pd.Series(dtype="float64"), "gmv": pd.Series(dtype="float64"),
        "purchase_count": pd.Series(dtype="float64"), "avg_price": pd.Series(dtype="float64"),
    })


def to_long(aggregates: dict[tuple[str, str], pd.DataFrame]) -> pd.DataFrame:
    parts = []
    for (event, dimension), frame in aggregates.items():
        if frame.empty:
            continue
        part = frame.rename(columns={dimension: "key"}).copy()
        part["key"] = part["key"].astype(str)
        part["event"], part["dimension"] = event, dimension
        parts.append(part.reindex(columns=AGG_COLUMNS))
    if not parts:
        return empty_long()
    return pd.concat(parts, ignore_index=True)


def from_long(long: pd.DataFrame, event: str, dimension: str, time_col: str = "minute") -> pd.DataFrame:
    part = long[(long["event"] == event) & (long["dimension"] == dimension)]
    columns = [time_col, dimension, *metric_names(event, dimension)]
    frame = part.rename(columns={"key": dimension, "minute": time_col})
    frame = frame.reindex(columns=columns).copy()
    if dimension in ("product_id", "category_id"):
        frame[dimension] = frame[dimension].astype("int64")
    for column in ("view_count", "purchase_count"):
        if column in frame:
            frame[column] = frame[column].astype("int64")
    return frame.reset_index(drop=True)
