"""End to end: the real dagster-daemon and webserver on a temporary instance (embedded PostgreSQL),
files landed, sensor-triggered runs observed through the GraphQL API, tables checked by SQL."""

from __future__ import annotations

import pytest
from psycopg import sql

from pipeline.events.tables import t1_table
from pipeline.resources.warehouse import Warehouse, embedded_server_url
from pipeline_tests.events.event_oracle import assert_same, batch_oracle
from pipeline_tests.events.platform_fixture import sample_files, write_sources
from pipeline_tests.live_dagster import live_dagster

RUNS_QUERY = """
query Runs($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) {
    ... on Runs { results { runId status jobName tags { key value } } }
  }
}"""
MATERIALIZED = """
query Asset($path: [String!]!) {
  assetOrError(assetKey: {path: $path}) { ... on Asset { assetMaterializations(limit: 1) { runId } } }
}"""


@pytest.mark.e2e
@pytest.mark.slow
def test_daemon_and_webserver_process_landed_files(tmp_path):
    with live_dagster(tmp_path / "lake", tmp_path / "logs") as live:
        files = sample_files("2019-10-01 00:00", 3, events_per_minute=40)
        for name, data in files:
            live.lake.write_bytes(f"landing/{name}", data)

        def sensor_runs_done():
            runs = live.graphql(RUNS_QUERY, {"tags": [{"key": "dagster/sensor_name", "value": "landing_sensor"}]})
            results = runs["runsOrError"]["results"]
            finished = [r for r in results if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            return results if results and len(finished) == len(results) else None

        runs = live.wait(sensor_runs_done, 300, "sensor-triggered runs to finish")
        assert [r["status"] for r in runs] == ["SUCCESS"], runs
        assert runs[0]["jobName"] == "events_ingest"
        tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
        assert tags["dagster/partition"] == "2019-10-01-00:00" and tags["clickflow/hour"] == "2019-10-01-00:00"

        warehouse = Warehouse(embedded_server_url(live.settings.pg_dir))
        oracle = batch_oracle(write_sources(tmp_path, files), ["purchase"], ["brand"])
        t1 = warehouse.read_frame(sql.SQL("SELECT * FROM {}").format(t1_table("purchase", "brand").table))
        assert_same(t1, oracle[("purchase", "brand")], ["minute", "brand"], "t1 purchase/brand via daemon")

        live.wait(lambda: live.graphql(MATERIALIZED, {"path": ["events", "rankings"]})["assetOrError"].get(
            "assetMaterializations"), 180, "the automation sensor to refresh the rankings")

        # The daemon's freshness sensor records the checks on t1 and the rankings, shown in the UI.
        def fresh(path: list[str], name: str):
            evaluation = live.latest_check(path, name)
            return evaluation if evaluation and evaluation["metadata"].get("newest_minute") == \
                "2019-10-01 00:02:00+00:00" else None

        for path, name, what in ((["events", "t1_minute"], "t1_freshness", "t1"),
                                 (["events", "rankings"], "rankings_freshness", "the rankings")):
            evaluation = live.wait(lambda: fresh(path, name), 120, f"the {name} check of the daemon")
            assert evaluation["success"] is True
            assert evaluation["description"].startswith(
                f"{what}: newest minute 2019-10-01 00:02, 0 s behind the newest landed file")
