"""Minute and hour aggregates of cleaned event rows, on Arrow tables: the arithmetic of t1 and t2.

An aggregate is kept as *sums*: one row per (time, key) with ``count`` and ``units``, money in
int64 units of 1/10,000 (``PRICE_SCALE``, the scale of ``numeric(15,4)``). Integer sums do not
depend on the order of their terms, so a minute computed from its files in any order, and an hour
merged from its minutes, are bit-identical; ``gmv`` and ``avg_price`` are derived from the sums by
two correctly rounded divisions (``metrics``), the same on every engine.

Duplicate views are resolved by content, never by position (``kept_by_dedupe``). Grouping runs in
Arrow's hash aggregation; only the rare views tied on time need a sort of their rows.

No Dagster, no pandas in the hot path (pandas only for the rare tie-break, to keep its order).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

PRICE_SCALE = 10_000
AGGREGATED_EVENTS = ("purchase", "view")
INT_DIMENSIONS = frozenset({"product_id", "category_id", "user_id"})
SUMS = pa.schema([("time", pa.timestamp("ns", tz="UTC")), ("count", pa.int64()), ("units", pa.int64())])
_NS_PER_MINUTE = 60 * 1_000_000_000


def metric_columns(event: str, dimension: str) -> tuple[str, ...]:
    if event == "view":
        return ("view_count", "avg_price") if dimension == "product_id" else ("view_count",)
    if event == "purchase":
        return ("gmv", "purchase_count", "avg_price")
    expected = ", ".join(AGGREGATED_EVENTS)
    raise ValueError(f"no aggregates for event type {event!r}; expected one of {expected}")


def count_column(event: str) -> str:
    return "view_count" if event == "view" else "purchase_count"


def price_units(amounts: np.ndarray) -> np.ndarray:
    """Money as exact int64 units: ``rint(amount * PRICE_SCALE)`` (half to even, as Java's rint)."""
    return np.rint(np.asarray(amounts, np.float64) * PRICE_SCALE).astype(np.int64)


def units_of(metrics: dict[str, np.ndarray], event: str, dimension: str) -> np.ndarray:
    """The exact money units behind stored float metrics (gmv, or avg_price x count)."""
    names = metric_columns(event, dimension)
    if "gmv" in names:
        return price_units(metrics["gmv"])
    if "avg_price" in names:
        return price_units(np.asarray(metrics["avg_price"], np.float64) * np.asarray(metrics[count_column(event)]))
    return np.zeros(len(metrics[count_column(event)]), np.int64)


def metrics(count: np.ndarray, units: np.ndarray, event: str, dimension: str) -> dict[str, np.ndarray]:
    """The table's metric columns from exact sums (int64 / int is a double division, as in Spark)."""
    count = np.asarray(count, np.int64)
    gmv = np.asarray(units, np.int64) / PRICE_SCALE
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {"view_count": count, "purchase_count": count, "gmv": gmv, "avg_price": gmv / count}
    return {name: values[name] for name in metric_columns(event, dimension)}


# ------------------------------------------------------------------------------------------ dedupe


def kept_by_dedupe(table: pa.Table) -> np.ndarray:
    """True for every row but the duplicate views: one view per (minute, user_session, product_id)
    is kept, the earliest.

    Views without a user_session count as one session. When several views share the earliest
    time, the one first in a sort on price, then every other column in table order (missing
    values last) is kept, so the survivors depend only on the rows' content, never on file or row
    order (price first: it is the only column an aggregate reads).
    """
    is_view = _numpy_bool(pc.equal(table["event_type"], "view"))
    keep = ~is_view
    views = np.flatnonzero(is_view)
    if not len(views):
        return keep
    minute = _ns(table["minute"])[views]
    if len(minute) and not (minute % _NS_PER_MINUTE).any():
        minute = minute // _NS_PER_MINUTE  # minute numbers: a small range, no hashing
    product = table["product_id"].to_numpy()[views] if table["product_id"].null_count == 0 else None
    if product is None:  # a hand-made frame with missing ids: they are one more product
        product = pd.factorize(table["product_id"].to_pandas().to_numpy()[views], use_na_sentinel=False)[0]
    coarse, sizes = _groups(_codes(minute), _codes(product))
    alone = sizes[coarse] == 1  # most views, when minutes are short: no session needed
    keep[views[alone]] = True
    views, coarse = views[~alone], coarse[~alone]
    if not len(views):
        return keep
    group, sizes = _groups(coarse, _session_codes(table["user_session"])[views])
    alone = sizes[group] == 1
    keep[views[alone]] = True
    views, group = views[~alone], group[~alone]
    if not len(views):
        return keep

    times = _ns(table["event_time"])[views]
    order = np.lexsort((times, group))
    group, times, rows = group[order], times[order], views[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    first_time = np.repeat(times[starts], np.diff(np.r_[starts, len(group)]))
    earliest = times == first_time
    ranks = np.cumsum(np.r_[True, group[1:] != group[:-1]]) - 1
    tied = np.bincount(ranks[earliest], minlength=len(starts))[ranks] > 1
    keep[rows[earliest & ~tied]] = True
    at = rows[earliest & tied]
    if len(at):  # same session, product, minute and time: rare; order on content in pandas
        ties = table.take(pa.array(at)).to_pandas().assign(_group=ranks[earliest & tied], _position=at)
        columns = [c for c in table.column_names if c != "price"]
        ordered = ties.sort_values(["_group", "price", *columns], kind="mergesort", na_position="last")
        keep[ordered.drop_duplicates("_group")["_position"].to_numpy()] = True
    return keep


def _session_codes(column) -> np.ndarray:
    """Dense codes of the sessions; a missing session is one more code (one session)."""
    encoded = pc.dictionary_encode(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    codes = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
    return codes.astype(np.int64)


def _codes(values: np.ndarray) -> np.ndarray:
    """Dense int64 codes of int64 values; without hashing when they span a small range."""
    if not len(values):
        return values.astype(np.int64)
    low, high = int(values.min()), int(values.max())
    if high - low < 4 * len(values) + 1024:
        return (values - low).astype(np.int64)
    return pd.factorize(values)[0].astype(np.int64)


def _groups(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group number of each (first, second) pair of non-negative codes, and each group's size."""
    width = int(second.max()) + 1 if len(second) else 1
    pair = first * width + second  # codes are below the row count n: pair < n**2, no overflow
    group = _codes(pair)
    return group, np.bincount(group)


# ------------------------------------------------------------------------------------- aggregates


def minute_sums(table: pa.Table, events: Iterable[str], dimensions: Iterable[str],
                kept: np.ndarray | None = None) -> dict[tuple[str, str], pa.Table]:
    """Every (event, dimension) minute aggregate of cleaned rows, as sums sorted by (time, key).

    ``kept`` is ``kept_by_dedupe(table)`` when the caller has it already.
    """
    events, dimensions = tuple(events), tuple(dimensions)
    for event in events:
        metric_columns(event, "")
    kinds = table["event_type"]
    units = pa.array(price_units(_floats(table["price"])))
    out = {}
    for event in events:
        mask = _numpy_bool(pc.equal(kinds, event))
        if event == "view":
            mask &= kept if kept is not None else kept_by_dedupe(table)
        rows = table.filter(pa.array(mask)) if not mask.all() else table
        rows_units = units.filter(pa.array(mask)) if not mask.all() else units
        for dimension in dimensions:
            part = pa.table({"time": rows["minute"], "key": rows[dimension], "units": rows_units})
            out[(event, dimension)] = sum_by_key(part)
    return out


def sum_by_key(part: pa.Table, counts: pa.Array | None = None) -> pa.Table:
    """(time, key, units[, count]) rows -> one row per (time, key): count and units added; sorted."""
    if counts is None:
        aggregations = [("units", "sum"), ("units", "count", pc.CountOptions(mode="all"))]
    else:
        part = part.append_column("count", counts)
        aggregations = [("units", "sum"), ("count", "sum")]
    key_type = part.schema.field("key").type
    if part.num_rows == 0:
        return _empty_sums(key_type)
    grouped = part.group_by(["time", "key"], use_threads=False).aggregate(aggregations)
    count_name = "units_count" if counts is None else "count_sum"
    sums = pa.table({
        "time": grouped["time"].cast(SUMS.field("time").type),
        "key": grouped["key"],
        "count": grouped[count_name].cast(pa.int64()),
        "units": grouped["units_sum"].cast(pa.int64()),
    })
    return sums.sort_by([("time", "ascending", "at_end"), ("key", "ascending", "at_end")])


def merge_sums(parts: Sequence[pa.Table], key_type: pa.DataType, hourly: bool = False) -> pa.Table:
    """Partial sums sharing a key merged into one row per (time, key); ``hourly`` relabels each row
    with the start of its hour first (an hour of t2 from its minutes)."""
    parts = [p for p in parts if p.num_rows]
    if not parts:
        return _empty_sums(key_type)
    table = pa.concat_tables(parts, promote_options="permissive")
    times = table["time"]
    if hourly:
        times = pc.floor_temporal(times, unit="hour")
    part = pa.table({"time": times, "key": table["key"], "units": table["units"]})
    return sum_by_key(part, table["count"])


def _empty_sums(key_type: pa.DataType) -> pa.Table:
    return pa.table({"time": pa.array([], SUMS.field("time").type), "key": pa.array([], key_type),
                     "count": pa.array([], pa.int64()), "units": pa.array([], pa.int64())})


def sums_and_totals(table: pa.Table, events: Iterable[str], dimensions: Iterable[str],
                    after: pd.Timestamp | None = None) -> tuple[dict[tuple[str, str], pa.Table], dict[str, tuple[int, float]]]:
    """``minute_sums`` and ``row_totals`` of the same rows, deduplicated once for both."""
    events = tuple(events)
    kept = kept_by_dedupe(table) if "view" in events else None
    return minute_sums(table, events, dimensions, kept), row_totals(table, events, kept, after)


def row_totals(table: pa.Table, events: Iterable[str], kept: np.ndarray | None = None,
               after: pd.Timestamp | None = None) -> dict[str, tuple[int, float]]:
    """Per event, (rows, sum of prices) of the rows of minutes after ``after``, counted from rows,
    not from aggregates (views deduplicated): the reference of the raw -> t1 reconciliation."""
    events = tuple(events)
    kinds = table["event_type"]
    rows = np.ones(table.num_rows, bool)
    if after is not None:
        rows = _numpy_bool(pc.greater(table["minute"], pa.scalar(after.value, pa.timestamp("ns", tz="UTC"))))
    out = {}
    if "purchase" in events:
        purchases = rows & _numpy_bool(pc.equal(kinds, "purchase"))
        out["purchase"] = (int(purchases.sum()), float(_floats(table["price"])[purchases].sum()))
    if "view" in events:
        kept = kept_by_dedupe(table) if kept is None else kept
        out["view"] = (int((rows & _numpy_bool(pc.equal(kinds, "view")) & kept).sum()), 0.0)
    return out


def totals(sums: pa.Table) -> tuple[int, int]:
    """(count, units) over every row of an aggregate."""
    if not sums.num_rows:
        return 0, 0
    return int(pc.sum(sums["count"]).as_py()), int(pc.sum(sums["units"]).as_py())


# ---------------------------------------------------------------------------------------- helpers


def _numpy_bool(mask) -> np.ndarray:
    return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _floats(column) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False), np.float64)


def _ns(column) -> np.ndarray:
    """Nanoseconds since the epoch of a timestamp column (any unit)."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return pc.cast(column, pa.timestamp("ns", tz=getattr(column.type, "tz", None))).cast(pa.int64()).to_numpy(
        zero_copy_only=False)
