"""Smoke test of the benchmark harness: its DuckDB floor, ``clickflow process`` run as a command
and the platform's in-process batch agree on t1, and the command's wall time is taken apart from
what its Dagster instance recorded.

No timing assertion: timings are only ever compared within one benchmark run (``make bench``).
"""

from __future__ import annotations

import pytest

from bench.data import dataset
from bench.duckdb_floor import run_floor
from bench.pg import drop_database, fresh_database, t1_totals
from bench.platform_batch import run_batch, run_command
from bench.report import STEPS, time_split

EVENTS, DIMENSIONS = ("purchase", "view"), ("product_id", "brand", "category_l3")


@pytest.mark.integration
def test_duckdb_floor_the_command_and_the_batch_write_the_same_t1_totals(tmp_path, pg_admin_url, pg_url):
    data = dataset(tmp_path / "data", 5_000, 5)
    purchases = sum(path.read_bytes().count(b" UTC,purchase,") for path in data.files)

    floor = run_floor(data.files, pg_url)
    urls = {name: fresh_database(pg_admin_url, f"bench_{name}") for name in ("command", "dagster", "batch")}
    try:
        command = run_command(data.files, tmp_path / "command", urls["command"], urls["dagster"])
        batch = run_batch(data.files, tmp_path / "batch", urls["batch"])
        floor_totals = t1_totals(pg_url, EVENTS, DIMENSIONS)
        command_totals = t1_totals(urls["command"], EVENTS, DIMENSIONS)
        batch_totals = t1_totals(urls["batch"], EVENTS, DIMENSIONS)
    finally:
        for url in urls.values():
            drop_database(pg_admin_url, url)

    assert command["exit_code"] == 0 and command["failed_runs"] == [] and batch["failed_runs"] == []
    assert floor["t1_rows"] == sum(rows for rows, _, _ in floor_totals.values())
    assert floor_totals.keys() == command_totals.keys() == batch_totals.keys() and len(floor_totals) == 6
    for table, (rows, count, money) in floor_totals.items():
        for totals in (command_totals, batch_totals):
            assert totals[table][:2] == (rows, count), table
            assert totals[table][2] == pytest.approx(money, rel=1e-9), table
    # Every purchase in the files is counted once per dimension (no purchase is invalid or deduped).
    for dimension in DIMENSIONS:
        assert floor_totals[f"events.purchase_{dimension}_minute"][1] == purchases


@pytest.mark.integration
def test_the_commands_wall_time_is_taken_apart_from_its_runs_and_steps(tmp_path, pg_admin_url):
    data = dataset(tmp_path / "data", 2_000, 2)
    urls = {name: fresh_database(pg_admin_url, f"bench_{name}") for name in ("command", "dagster")}
    try:
        command = run_command(data.files, tmp_path / "command", urls["command"], urls["dagster"])
    finally:
        for url in urls.values():
            drop_database(pg_admin_url, url)

    # One hour of files: one ingest run, then the automation conditions' run of rankings and
    # dashboard (named __ASSET_JOB, as the daemon names it), then retention.
    assert [run["job"] for run in command["runs"]] == ["events_ingest", "__ASSET_JOB", "events_retention"]
    assert command["runs"][0]["partition"] == "2019-10-01-00:00"
    assert all(run["status"] == "SUCCESS" for run in command["runs"])
    assert set(command["steps"]) == set(STEPS) and all(seconds > 0 for seconds in command["steps"].values())
    split = time_split({"wall_s": command["wall_s"], "result": command})
    assert sum(split["steps"].values()) == pytest.approx(split["steps_s"])
    assert 0 < split["before_first_run_s"] and split["after_last_run_s"] >= 0
    assert 0 < split["steps_s"] <= split["runs_s"] <= split["first_to_last_run_s"] < command["wall_s"]
    assert command["peak_bytes"] > 100 * 2**20  # a Python process with Dagster and pandas loaded
