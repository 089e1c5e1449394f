"""The real dagster-daemon and webserver on a temporary instance (embedded PostgreSQL, folder lake)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.instance import prepare_instance
from pipeline.resources.lake import LocalLake
from pipeline.settings import Settings
from pipeline_tests import processes

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


CHECK_EXECUTIONS = """
query Checks($path: [String!]!, $name: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $name, limit: 1) {
    status evaluation { success severity description metadataEntries { label ... on TextMetadataEntry { text } } }
  }
}"""


@dataclass
class LiveDagster:
    settings: Settings
    lake: LocalLake
    port: int
    procs: list[subprocess.Popen]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(f"{self.url}/graphql",
                                         data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["data"]

    def latest_check(self, path: list[str], name: str) -> dict | None:
        """The newest evaluation of an asset check (as the UI shows it), with its text metadata."""
        executions = self.graphql(CHECK_EXECUTIONS, {"path": path, "name": name})["assetCheckExecutions"]
        evaluation = (executions[0].get("evaluation") if executions else None) or None
        if evaluation is None:
            return None
        meta = {m["label"]: m.get("text") for m in evaluation.get("metadataEntries", [])}
        return {**evaluation, "metadata": meta}

    def wait(self, predicate: Callable[[], object], timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                assert proc.poll() is None, f"{proc.args[0]} exited with {proc.returncode} while waiting for {what}"
            value = predicate()
            if value:
                return value
            time.sleep(1)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _stop_postgres(pg_dir: Path, timeout: float = 30) -> None:
    """Fast shutdown of the embedded server. pgserver stops it only with its last registered user,
    and this process, the daemon and the webserver all registered, so stop it by its postmaster pid."""
    pid_file = pg_dir / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    deadline = time.monotonic() + timeout
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.2)


@contextlib.contextmanager
def live_dagster(lake_dir: Path, logs: Path, before_start: Callable[[Settings], object] | None = None,
                 **env: str) -> Iterator[LiveDagster]:
    """Daemon + webserver on a fresh instance; stopped, and the embedded server deleted, on exit.
    ``before_start`` runs on the prepared instance (DAGSTER_HOME set) before they start.

    Each runs in a session of its own (``processes.popen``) and is stopped with its whole session:
    the ``dagster api grpc`` code servers and run workers they start survive a terminate() of
    their parent alone. The instance lives under a short /tmp path (unix socket paths are
    limited to ~100 bytes).
    """
    # A new folder each time: pgserver remembers the servers this process started by their path.
    home = Path(tempfile.mkdtemp(prefix="cf-ui-", dir="/tmp"))
    values = {"PIPELINE_HOME": str(home), "PIPELINE_LAKE_URL": str(lake_dir),
              "PIPELINE_PARTITIONS_START": "2019-10-01", "PIPELINE_PARTITIONS_END": "2019-10-03",
              "PIPELINE_SENSOR_INTERVAL_SECONDS": "5", **env}
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    with pytest.MonkeyPatch.context() as patch, contextlib.ExitStack() as files:
        for key, value in values.items():
            patch.setenv(key, value)
        for key in ("DAGSTER_HOME", "CLICKFLOW_DAGSTER_PG_URL", "PIPELINE_PG_URL"):
            patch.delenv(key, raising=False)
        settings = Settings.from_env()
        try:
            prepare_instance(settings)  # embedded server + dagster.yaml; sets DAGSTER_HOME
            if before_start:
                before_start(settings)
            port = _free_port()
            workspace = str(ROOT / "workspace.yaml")
            for name, args in [("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace]),
                               ("webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
                                              "-w", workspace])]:
                log = files.enter_context(open(logs / f"{name}.log", "wb"))
                procs.append(processes.popen(args, cwd=ROOT, env=dict(os.environ), stdout=log,
                                             stderr=subprocess.STDOUT))
            live = LiveDagster(settings, LocalLake(lake_dir), port, procs)
            live.wait(lambda: _up(live.url), 120, "the webserver")
            yield live
        finally:
            for proc in procs:  # both sessions asked to stop at once, then waited for
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            try:
                for proc in procs:
                    processes.stop(proc)
            finally:
                _stop_postgres(home / "pg")
                shutil.rmtree(home, ignore_errors=True)
