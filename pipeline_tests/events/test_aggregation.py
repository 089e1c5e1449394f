"""The Arrow aggregate arithmetic against brute-force Python oracles written from the contract.

The oracles loop over rows with plain dicts and Python's own sorting, so they share nothing with
the vectorised code but the rules of DESIGN section 3.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.events import aggregation, layout, staging
from pipeline.events.aggregates import read_aggregates, read_state, write_aggregates

COLUMNS = ["event_time", "event_type", "product_id", "category_id", "category_code", "brand", "price",
           "user_id", "user_session", "minute", "category_l1", "category_l2", "category_l3"]
NS = 1_000_000_000


def random_rows(seed: int, n: int) -> pa.Table:
    """Cleaned-looking rows crowded into few minutes, products, sessions, seconds and prices, so
    duplicate views and ties on time and price are frequent."""
    rng = random.Random(seed)
    base = pd.Timestamp("2019-10-01 00:00", tz="UTC").value
    rows = []
    for _ in range(n):
        minute = base + rng.randrange(3) * 60 * NS
        rows.append({
            "event_time": minute + rng.randrange(4) * NS,
            "event_type": rng.choice(["view", "view", "view", "purchase", "cart"]),
            "product_id": rng.randrange(1, 5),
            "category_id": rng.randrange(1, 3),
            "category_code": rng.choice(["a.b", "a.c", None]),
            "brand": rng.choice(["x", "y", "Ü", None]),
            "price": rng.choice([0.1, 0.2, 0.3, 1.05, 2.5, 999999.9999]),
            "user_id": rng.randrange(1, 4),
            "user_session": rng.choice(["s1", "s2", None]),
            "minute": minute,
            "category_l1": "a", "category_l2": rng.choice(["b", "c"]), "category_l3": rng.choice(["b", "c"]),
        })
    table = pa.Table.from_pylist(rows)
    for name in ("event_time", "minute"):
        table = table.set_column(table.schema.get_field_index(name), name,
                                 table[name].cast(pa.timestamp("ns", tz="UTC")))
    return table.select(COLUMNS)


def _sort_key(row: dict) -> tuple:
    """Earliest time, then price, then every other column in table order; missing values last."""
    others = [c for c in COLUMNS if c not in ("event_time", "price")]
    return (row["event_time"], row["price"], *[(row[c] is None, row[c] if row[c] is not None else 0)
                                               for c in others])


def oracle_kept(table: pa.Table) -> list[bool]:
    rows = table.to_pylist()
    for i, row in enumerate(rows):
        row["_i"] = i
        for name in ("event_time", "minute"):
            row[name] = pd.Timestamp(row[name]).value
    winners = {}
    for row in rows:
        if row["event_type"] != "view":
            continue
        group = (row["minute"], row["product_id"], row["user_session"])
        if group not in winners or _sort_key(row) < _sort_key(winners[group]):
            winners[group] = row
    kept = {row["_i"] for row in winners.values()}
    return [row["event_type"] != "view" or row["_i"] in kept for row in rows]


@pytest.mark.parametrize("seed", range(12))
def test_dedupe_keeps_exactly_the_views_the_contract_keeps(seed):
    table = random_rows(seed, 400)
    expected = oracle_kept(table)
    assert 0 < sum(not k for k in expected)  # the data has duplicates to drop
    assert aggregation.kept_by_dedupe(table).tolist() == expected
    shuffled = table.take(pa.array(np.random.default_rng(seed).permutation(table.num_rows)))
    kept = aggregation.kept_by_dedupe(shuffled)
    assert sorted(map(str, shuffled.filter(pa.array(kept)).to_pylist())) == sorted(
        map(str, table.filter(pa.array(expected)).to_pylist()))


@pytest.mark.parametrize("seed", range(6))
def test_minute_sums_equal_row_by_row_sums(seed):
    table = random_rows(seed, 500)
    kept = oracle_kept(table)
    sums = aggregation.minute_sums(table, ("purchase", "view"), ("product_id", "brand", "category_l3"))
    for (event, dimension), result in sums.items():
        expected: dict[tuple, list[int]] = {}
        for row, keep in zip(table.to_pylist(), kept):
            if row["event_type"] == event and keep:
                acc = expected.setdefault((pd.Timestamp(row["minute"]).value, row[dimension]), [0, 0])
                acc[0] += 1
                acc[1] += round(row["price"] * 10_000)  # every price here is exact at 1/10,000
        got = {(pd.Timestamp(t).value, k): [c, u] for t, k, c, u in zip(
            *(result[c].to_pylist() for c in ("time", "key", "count", "units")))}
        assert got == expected, (event, dimension)
        order = [(pd.Timestamp(t).value, (k is None, k or "")) for t, k in zip(result["time"].to_pylist(),
                                                                             result["key"].to_pylist())]
        assert order == sorted(order)  # sorted by time, then key (missing last)


def test_money_is_exact_in_any_order():
    table = pa.table({"time": pa.array([0, 0, 0], pa.timestamp("ns", tz="UTC")), "key": pa.array([1, 1, 1]),
                      "units": pa.array(aggregation.price_units(np.array([0.1, 0.2, 0.3])))})
    sums = aggregation.sum_by_key(table)
    gmv = aggregation.metrics(sums["count"].to_numpy(), sums["units"].to_numpy(), "purchase", "product_id")
    assert gmv["gmv"].tolist() == [0.6] and gmv["avg_price"].tolist() == [0.6 / 3]  # 0.1+0.2+0.3 is 0.6000000000000001


def test_hours_merged_from_minutes_equal_hours_summed_from_rows():
    table = random_rows(3, 600)
    minutes = aggregation.minute_sums(table, ("purchase",), ("brand",))[("purchase", "brand")]
    halves = [minutes.slice(0, 5), minutes.slice(5)]
    hourly = aggregation.merge_sums(halves, pa.string(), hourly=True)
    rows = table.filter(pa.array([t == "purchase" for t in table["event_type"].to_pylist()]))
    expected = {}
    for brand, price in zip(rows["brand"].to_pylist(), rows["price"].to_pylist()):
        acc = expected.setdefault(brand, [0, 0])
        acc[0] += 1
        acc[1] += round(price * 10_000)
    assert set(hourly["time"].to_pylist()) == {pd.Timestamp("2019-10-01 00:00", tz="UTC")}
    assert {k: [c, u] for k, c, u in zip(*(hourly[c].to_pylist() for c in ("key", "count", "units")))} == expected


def test_rows_staged_as_parquet_give_the_sums_of_rows_staged_as_arrow_ipc():
    """The Spark engine stages Parquet with microsecond timestamps, the pandas engine Arrow IPC: a
    lake holding both (the engine changed between runs) gives either engine the same sums."""
    rows = random_rows(7, 400)
    events, dimensions = ("view", "purchase"), ("product_id", "brand", "category_l3")
    ipc = staging.staged_table(staging.staged_bytes(rows))
    parquet = staging.staged_table(staging.staged_bytes(rows, parquet=True), parquet=True)
    assert parquet.schema == staging.PARQUET
    want = aggregation.sums_and_totals(ipc, events, dimensions)
    got = aggregation.sums_and_totals(parquet, events, dimensions)
    assert got[1] == want[1] and set(got[0]) == set(want[0])
    for pair, table in want[0].items():
        assert got[0][pair].equals(table), pair


def test_aggregates_round_trip_and_files_of_the_earlier_format_still_read(lake):
    hour = pd.Timestamp("2019-10-01 05:00", tz="UTC")
    time = pa.array([hour.value + 60 * NS], pa.timestamp("ns", tz="UTC"))
    sums = {("view", "product_id"): pa.table({"time": time, "key": pa.array([7], pa.int64()),
                                              "count": pa.array([3], pa.int64()), "units": pa.array([15000])}),
            ("purchase", "brand"): pa.table({"time": time, "key": pa.array(["sony"]),
                                             "count": pa.array([2], pa.int64()), "units": pa.array([30000])})}
    state = {"2019-10-01T05:01:00+00:00": ["a.csv:1"]}
    write_aggregates(lake, hour, sums, state)
    read, read_back_state = read_aggregates(lake, hour)
    assert read_back_state == state == read_state(lake, hour)
    assert {k: v.to_pylist() for k, v in read.items()} == {k: v.to_pylist() for k, v in sums.items()}

    old = pa.table({  # the long format of earlier versions: float metrics, keys as text
        "minute": time, "event": ["view"], "dimension": ["product_id"], "key": ["7"],
        "view_count": [3.0], "gmv": [None], "purchase_count": [None], "avg_price": [0.5],
    }).replace_schema_metadata({b"clickflow.minute_inputs": json.dumps(state).encode()})
    buffer = io.BytesIO()
    pq.write_table(old, buffer)
    lake.write_bytes(layout.aggregates_key(hour), buffer.getvalue())
    read, read_back_state = read_aggregates(lake, hour)
    assert read_back_state == state
    assert read[("view", "product_id")].to_pylist() == sums[("view", "product_id")].to_pylist()


@pytest.mark.parametrize("seed", range(5))
def test_an_hour_written_a_chunk_at_a_time_is_the_hour_written_at_once(lake, seed, tmp_path):
    """t1 keeps an hour's kept minutes and spills its recomputed ones a chunk at a time; the file
    written from those pieces holds exactly the sorted sums a one-shot write of the hour holds."""
    from pipeline.events.minutes import _in_time_order, _Spill

    rng = random.Random(seed)
    hour = pd.Timestamp("2019-10-01 05:00", tz="UTC")
    minutes = sorted(rng.sample(range(60), 20))
    rows = [(hour.value + m * 60 * NS, key, rng.randint(1, 9), rng.randint(0, 10**6))
            for m in minutes for key in rng.sample(range(1000), rng.randint(1, 30))]
    full = pa.table({name: [r[i] for r in rows] for i, name in enumerate(("time", "key", "count", "units"))},
                    schema=pa.schema([("time", pa.timestamp("ns", tz="UTC")), ("key", pa.int64()),
                                      ("count", pa.int64()), ("units", pa.int64())]))
    full = full.sort_by([("time", "ascending"), ("key", "ascending")])
    recomputed = sorted(rng.sample(minutes, rng.randint(1, len(minutes))))
    ns = full["time"].cast(pa.int64()).to_numpy()
    in_fresh = np.isin(ns, [hour.value + m * 60 * NS for m in recomputed])
    old = full.filter(pa.array(~in_fresh))
    fresh = full.filter(pa.array(in_fresh))
    spill = _Spill(str(tmp_path))
    bounds = sorted(rng.sample(recomputed[1:], rng.randint(0, len(recomputed) - 1)))  # chunks of whole minutes
    fresh_ns = fresh["time"].cast(pa.int64()).to_numpy()
    cuts = [0, *(int(np.searchsorted(fresh_ns, hour.value + m * 60 * NS)) for m in bounds), fresh.num_rows]
    for start, end in zip(cuts, cuts[1:]):
        # shuffled inside a chunk, as an engine may return it
        part = fresh.slice(start, end - start)
        spill.add({("view", "product_id"): part.take(rng.sample(range(part.num_rows), part.num_rows))})
    pieces = list(_in_time_order(old, spill.read(hour, ("view", "product_id"))))
    assert pa.concat_tables(pieces).equals(full)

    write_aggregates(lake, hour, [(("view", "product_id"), p) for p in pieces], {"m": ["a:1"]})
    assert read_aggregates(lake, hour)[0][("view", "product_id")].equals(full)


def test_a_spill_folder_left_by_a_killed_t1_is_removed_by_the_next(tmp_path):
    """Only a folder whose process is gone and that has not changed for an hour: a running t1's
    (this process) and a recent one (maybe another container's) stay."""
    import os
    import subprocess
    import time

    from pipeline.events.minutes import SPILL_PREFIX, spill_folder

    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid is free now
    hour_ago = time.time() - 3700
    folders = {
        "killed": tmp_path / f"{SPILL_PREFIX}{gone.pid}-a",
        "running": tmp_path / f"{SPILL_PREFIX}{os.getpid()}-b",
        "recent": tmp_path / f"{SPILL_PREFIX}{gone.pid}-c",
    }
    for name, folder in folders.items():
        folder.mkdir()
        (folder / "0.arrow").write_bytes(b"x")
        if name != "recent":
            os.utime(folder, (hour_ago, hour_ago))
    with spill_folder(str(tmp_path)) as mine:
        assert Path(mine).name.startswith(f"{SPILL_PREFIX}{os.getpid()}-") and Path(mine).is_dir()
        assert not folders["killed"].exists() and folders["running"].exists() and folders["recent"].exists()
    assert not Path(mine).exists()
