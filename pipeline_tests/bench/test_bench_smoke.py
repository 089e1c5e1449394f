"""Smoke test of the benchmark harness: its DuckDB floor and the platform's batch agree on t1.

No timing assertion: timings are only ever compared within one benchmark run (``make bench``).
"""

from __future__ import annotations

import pytest

from bench.data import dataset
from bench.duckdb_floor import run_floor
from bench.pg import drop_database, fresh_database, t1_totals
from bench.platform_batch import run_batch

EVENTS, DIMENSIONS = ("purchase", "view"), ("product_id", "brand", "category_l3")


@pytest.mark.integration
def test_duckdb_floor_and_pandas_batch_write_the_same_t1_totals(tmp_path, pg_admin_url, pg_url):
    data = dataset(tmp_path / "data", 5_000, 5)
    purchases = sum(path.read_bytes().count(b" UTC,purchase,") for path in data.files)

    floor = run_floor(data.files, pg_url)
    batch_url = fresh_database(pg_admin_url, "bench_batch")
    try:
        batch = run_batch(data.files, tmp_path / "platform", batch_url)
        floor_totals = t1_totals(pg_url, EVENTS, DIMENSIONS)
        batch_totals = t1_totals(batch_url, EVENTS, DIMENSIONS)
    finally:
        drop_database(pg_admin_url, batch_url)

    assert batch["failed_runs"] == []
    assert floor["t1_rows"] == sum(rows for rows, _, _ in floor_totals.values())
    assert floor_totals.keys() == batch_totals.keys() and len(floor_totals) == 6
    for table, (rows, count, money) in floor_totals.items():
        assert batch_totals[table][:2] == (rows, count), table
        assert batch_totals[table][2] == pytest.approx(money, rel=1e-9), table
    # Every purchase in the files is counted once per dimension (no purchase is invalid or deduped).
    for dimension in DIMENSIONS:
        assert floor_totals[f"events.purchase_{dimension}_minute"][1] == purchases
