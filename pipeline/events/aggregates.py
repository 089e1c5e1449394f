"""The durable minute aggregates of an hour in the lake (``aggregates/<hour>.parquet``), with the
file set each minute was computed from: t1's record of what is current, t2's input.

One Parquet file per hour holds every (event, dimension) aggregate as exact sums (count and money
units, see :mod:`aggregation`), keys typed (``key_int`` or ``key_text``). Files written before
this format (long rows with float metrics and text keys) are still read: their exact sums are
recovered from the floats, as t2 always did.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.events import layout
from pipeline.events.aggregation import INT_DIMENSIONS, SUMS, count_column, metric_columns, units_of
from pipeline.resources.lake import Lake

Sums = dict[tuple[str, str], pa.Table]  # (event, dimension) -> sums: time, key, count, units
State = dict[str, list[str]]  # minute (ISO) -> the "name:sha256" of the files it was computed from

_STATE_KEY = b"clickflow.minute_inputs"
_FORMAT_KEY = b"clickflow.aggregates_format"
FORMAT = b"2"


def key_type(dimension: str) -> pa.DataType:
    return pa.int64() if dimension in INT_DIMENSIONS else pa.string()


def read_aggregates(lake: Lake, hour) -> tuple[Sums, State]:
    """The hour's minute aggregates (one sums table per (event, dimension) present) and the file
    set each minute was computed from."""
    key = layout.aggregates_key(hour)
    if not lake.exists(key):
        return {}, {}
    return parse_aggregates(lake.read_bytes(key))


def parse_aggregates(data: bytes) -> tuple[Sums, State]:
    """``read_aggregates`` of a file's bytes (also on Spark's executors)."""
    table = pq.read_table(io.BytesIO(data))
    metadata = table.schema.metadata or {}
    state = json.loads(metadata.get(_STATE_KEY, b"{}"))
    if metadata.get(_FORMAT_KEY) == FORMAT:
        return _split(table), state
    return _from_long(table), state


def read_state(lake: Lake, hour) -> State:
    """Only the file set each minute was computed from (the Parquet footer, no rows decoded)."""
    key = layout.aggregates_key(hour)
    if not lake.exists(key):
        return {}
    metadata = pq.read_schema(io.BytesIO(lake.read_bytes(key))).metadata or {}
    return json.loads(metadata.get(_STATE_KEY, b"{}"))


def write_aggregates(lake: Lake, hour, sums: Sums | Iterable[tuple[tuple[str, str], pa.Table]],
                     state: State) -> None:
    """Write the hour's aggregates: ``sums``, or (pair, sums) pieces in file order (pairs sorted,
    each pair's pieces in (time, key) order), encoded as they come: the hour's rows are never in
    memory at once, only the compressed file."""
    pieces = sorted(sums.items()) if isinstance(sums, dict) else sums
    schema = _SCHEMA.with_metadata({_STATE_KEY: json.dumps(state).encode(), _FORMAT_KEY: FORMAT})
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, schema, compression="zstd") as writer:
        pending, rows, written = [], 0, False
        for pair, table in pieces:
            if table.num_rows:
                pending.append(_long(pair, table))
                rows += table.num_rows
            if rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(pending))
                pending, rows, written = [], 0, True
        if pending or not written:
            writer.write_table(pa.concat_tables(pending) if pending else _SCHEMA.empty_table())
    lake.write_bytes(layout.aggregates_key(hour), buffer.getvalue())


ROW_GROUP_ROWS = 256 * 1024
_SCHEMA = pa.schema([
    ("minute", SUMS.field("time").type), ("event", pa.string()), ("dimension", pa.string()),
    ("key_int", pa.int64()), ("key_text", pa.string()), ("count", pa.int64()), ("units", pa.int64()),
])


def _long(pair: tuple[str, str], table: pa.Table) -> pa.Table:
    """One (event, dimension)'s sums as rows of the file."""
    (event, dimension), n = pair, table.num_rows
    is_int = dimension in INT_DIMENSIONS
    return pa.table({
        "minute": table["time"].cast(SUMS.field("time").type),
        "event": pa.array([event] * n, pa.string()),
        "dimension": pa.array([dimension] * n, pa.string()),
        "key_int": pc.cast(table["key"], pa.int64()) if is_int else pa.nulls(n, pa.int64()),
        "key_text": pa.nulls(n, pa.string()) if is_int else pc.cast(table["key"], pa.string()),
        "count": table["count"],
        "units": table["units"],
    }, schema=_SCHEMA)


def _split(table: pa.Table) -> Sums:
    out = {}
    events, dimensions = _text(table["event"]), _text(table["dimension"])
    for event, dimension in _pairs(events, dimensions):
        at = pc.and_(pc.equal(events, event), pc.equal(dimensions, dimension))
        part = table.filter(at)
        key = part["key_int"] if dimension in INT_DIMENSIONS else part["key_text"]
        out[(event, dimension)] = pa.table({"time": part["minute"].cast(SUMS.field("time").type), "key": key,
                                            "count": part["count"], "units": part["units"]})
    return out


def _from_long(table: pa.Table) -> Sums:
    """Sums from the earlier long format (float metrics, text keys)."""
    out = {}
    events, dimensions = _text(table["event"]), _text(table["dimension"])
    for event, dimension in _pairs(events, dimensions):
        part = table.filter(pc.and_(pc.equal(events, event), pc.equal(dimensions, dimension)))
        values = {name: part[name].to_numpy(zero_copy_only=False) for name in metric_columns(event, dimension)}
        count = np.asarray(values[count_column(event)]).astype(np.int64)
        out[(event, dimension)] = pa.table({
            "time": part["minute"].cast(SUMS.field("time").type),
            "key": pc.cast(part["key"], key_type(dimension)),
            "count": pa.array(count),
            "units": pa.array(units_of(values, event, dimension)),
        })
    return out


def _pairs(events: pa.ChunkedArray, dimensions: pa.ChunkedArray) -> set[tuple[str, str]]:
    if not len(events):
        return set()
    pairs = pa.table({"e": events, "d": dimensions}).group_by(["e", "d"]).aggregate([])
    return set(zip(pairs["e"].to_pylist(), pairs["d"].to_pylist()))


def _text(column) -> pa.ChunkedArray:
    return column if not pa.types.is_dictionary(column.type) else column.cast(pa.string())
