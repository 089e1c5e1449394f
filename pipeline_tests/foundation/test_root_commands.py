"""Dagster's own commands, as the README and the group READMEs give them, work in a fresh clone of
the project without DAGSTER_HOME or any PIPELINE_* variable, on the same instance as `clickflow`:
the checkout's dagster.yaml finds the embedded PostgreSQL under ./.clickflow like `clickflow` does."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from pipeline_tests.live_dagster import _free_port, _stop_postgres, _up

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RUNS = '{"query": "{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }"}'
CLICKFLOW_RUNS = """
import dagster as dg
from pipeline.instance import prepare_instance
from pipeline.settings import Settings
prepare_instance(Settings.from_env())
print(" ".join(sorted(run.run_id for run in dg.DagsterInstance.get().get_runs())))
"""

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def clone():
    """A fresh clone of this checkout's commit (short path: the embedded server's socket lives in it),
    and the environment of a new shell with the project's virtualenv on PATH."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    base = Path(tempfile.mkdtemp(prefix="cf-clone-", dir="/tmp"))
    target = base / "c"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIPELINE_", "DAGSTER_", "CLICKFLOW_", "PYTEST_", "MONGODB_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    try:
        yield target, env
    finally:
        _stop_postgres(target / ".clickflow" / "pg")
        shutil.rmtree(base, ignore_errors=True)


def run(clone, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    path, env = clone
    result = subprocess.run(list(args), cwd=path, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result


def graphql_runs(port: int) -> dict[str, str]:
    """Status by run id of the runs the webserver shows, but those of schedules (they follow the clock:
    the hourly retention may start while the test runs)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=RUNS.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        results = json.loads(response.read())["data"]["runsOrError"]["results"]
    return {r["runId"]: r["status"] for r in results
            if not any(tag["key"] == "dagster/schedule_name" for tag in r["tags"])}


def serve(clone, *args: str) -> dict[str, str]:
    """Start a dev server command, wait for its webserver, read the runs it shows, stop its process group."""
    path, env = clone
    port = _free_port()
    with open(path / f"{args[0]}-{port}.log", "wb") as log:
        proc = subprocess.Popen([*args, "-p", str(port)], cwd=path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while not _up(f"http://127.0.0.1:{port}"):
            assert proc.poll() is None, (path / f"{args[0]}-{port}.log").read_text()[-4000:]
            assert time.monotonic() < deadline, f"{' '.join(args)}: no webserver after 240 s"
            time.sleep(1)
        return graphql_runs(port)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        stop_group(proc.pid)


def stop_group(pgid: int, grace: float = 60) -> None:
    """Wait for the rest of the process group (a code server leaves once its heartbeat stops), then
    fail, after killing them, if some are still there: the command must leave nothing behind."""
    deadline = time.monotonic() + grace
    while (left := subprocess.run(["pgrep", "-a", "-g", str(pgid)], capture_output=True, text=True).stdout):
        if time.monotonic() > deadline:
            os.killpg(pgid, signal.SIGKILL)
            raise AssertionError(f"still running {grace:.0f} s after the command stopped:\n{left}")
        time.sleep(1)


def test_validate_and_list(clone):
    validated = run(clone, "dagster", "definitions", "validate", "-w", "workspace.yaml")
    assert "All code locations passed validation" in validated.stdout + validated.stderr
    run(clone, "dg", "check", "defs")
    listed = json.loads(run(clone, "dg", "list", "defs", "--json").stdout)
    assert "landing_sensor" in json.dumps(listed) and "events/t1_minute" in json.dumps(listed)


def test_materialize_launch_and_dev_share_clickflows_instance(clone):
    # the README's commands in the checkout (nothing landed: the daemons below have nothing to do)
    run(clone, "dagster", "asset", "materialize", "-m", "pipeline.definitions", "--select", "events/rankings")
    run(clone, "dg", "launch", "--assets", "events/dashboard")

    # `clickflow` sees both runs on its instance (DAGSTER_HOME=.clickflow/dagster) ...
    shared = run(clone, sys.executable, "-c", CLICKFLOW_RUNS).stdout.split()
    assert len(shared) == 2
    # ... and so do `dagster dev` and `dg dev` started in the checkout, both finished
    assert serve(clone, "dagster", "dev") == {run_id: "SUCCESS" for run_id in shared}
    assert serve(clone, "dg", "dev") == {run_id: "SUCCESS" for run_id in shared}
    assert not list(clone[0].glob(".tmp_dagster_home_*")), "a temporary instance was left behind"


def test_the_group_readmes_commands(clone):
    """basket/README.md and b2b/README.md, "Run it" / "How to run it", by hand."""
    run(clone, "clickflow", "generate", "basket")
    for day in ("2024-01-01", "2024-01-02"):
        run(clone, "dagster", "asset", "materialize", "-m", "pipeline.definitions",
            "--select", "basket/reference,basket/orders", "--partition", day)
    run(clone, "dagster", "asset", "materialize", "-m", "pipeline.definitions", "--select", "group:basket",
        "--partition", "2024-01-03")
    run(clone, "dagster", "asset", "materialize", "-m", "pipeline.definitions", "--select", "b2b/init")
    run(clone, "dagster", "asset", "materialize", "-m", "pipeline.definitions", "--select", "b2b/raw_files*",
        "--partition", "2024-01-01")
    lake = clone[0] / ".clickflow" / "lake"
    assert (lake / "basket" / "final" / "2024-01-03" / "basket_features.csv").is_file()
    assert (lake / "b2b" / "final" / "report=monthly_sales" / "2024-01-01" / "part-0.csv").is_file()
