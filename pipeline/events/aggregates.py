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
    table = pq.read_table(io.BytesIO(lake.read_bytes(key)))
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


def write_aggregates(lake: Lake, hour, sums: Sums, state: State) -> None:
    parts = []
    for (event, dimension), table in sorted(sums.items()):
        if not table.num_rows:
            continue
        n = table.num_rows
        is_int = dimension in INT_DIMENSIONS
        parts.append(pa.table({
            "minute": table["time"].cast(SUMS.field("time").type),
            "event": pa.array([event] * n, pa.string()).dictionary_encode(),
            "dimension": pa.array([dimension] * n, pa.string()).dictionary_encode(),
            "key_int": pc.cast(table["key"], pa.int64()) if is_int else pa.nulls(n, pa.int64()),
            "key_text": pa.nulls(n, pa.string()) if is_int else pc.cast(table["key"], pa.string()),
            "count": table["count"],
            "units": table["units"],
        }))
    frame = pa.concat_tables(parts, promote_options="permissive") if parts else _EMPTY
    frame = frame.replace_schema_metadata({_STATE_KEY: json.dumps(state).encode(), _FORMAT_KEY: FORMAT})
    buffer = io.BytesIO()
    pq.write_table(frame, buffer, compression="zstd")
    lake.write_bytes(layout.aggregates_key(hour), buffer.getvalue())


_EMPTY = pa.table({
    "minute": pa.array([], SUMS.field("time").type), "event": pa.array([], pa.string()).dictionary_encode(),
    "dimension": pa.array([], pa.string()).dictionary_encode(), "key_int": pa.array([], pa.int64()),
    "key_text": pa.array([], pa.string()), "count": pa.array([], pa.int64()), "units": pa.array([], pa.int64()),
})


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
