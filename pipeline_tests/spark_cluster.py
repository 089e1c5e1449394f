"""A real Spark standalone cluster for the tests and the bench: a master and workers, each its
own JVM started from the installed pyspark package (``SPARK_HOME`` is the package folder: pyspark
4 ships ``bin/spark-class`` and ``jars/``), on loopback with free ports.

Each process runs in a session of its own (``processes.popen``), so ``stop`` ends it with the
executors its worker started, and the end-of-run guard in ``conftest.py`` checks they are gone.
Executors run this interpreter (``PYSPARK_PYTHON``), where the ``pipeline`` package is installed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pipeline_tests import processes


def spark_home() -> Path:
    import pyspark

    home = Path(pyspark.__file__).parent
    if not (home / "bin" / "spark-class").exists() or not (home / "jars").is_dir():
        raise RuntimeError(f"the pyspark package at {home} has no bin/spark-class or jars/: "
                           "a standalone cluster needs pyspark 3.4+ from PyPI")
    return home


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 60) -> object:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Cluster:
    """A running standalone cluster; ``master`` is its ``spark://`` URL."""

    master: str
    master_ui: str
    log_dir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def alive_workers(self) -> list[dict]:
        state = get_json(f"{self.master_ui}/json/")
        return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]

    def registered_workers(self) -> int:
        """Workers whose log says the master accepted them: the readiness signal when the master's
        UI answers ``/json/`` with its HTML page (seen with Spark 4.3 on a slow machine)."""
        return sum("Successfully registered with master" in log.read_text(errors="replace")
                   for log in self.log_dir.glob("worker*.log"))

    def stop(self) -> None:
        errors = []
        for proc in reversed(self.procs):  # workers (and their executors) first, then the master
            try:
                processes.stop(proc, grace=20)
            except AssertionError as error:
                errors.append(str(error))
        self.procs.clear()
        if errors:
            raise AssertionError("; ".join(errors))


def cluster_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the cluster's JVMs (and so of its executors and their Python workers)."""
    from pipeline.resources.spark import ensure_java

    env = dict(os.environ)
    env.update(SPARK_HOME=str(spark_home()), SPARK_LOCAL_IP="127.0.0.1", JAVA_HOME=ensure_java(),
               PYSPARK_PYTHON=sys.executable, SPARK_NO_DAEMONIZE="1", **(extra or {}))
    return env


def start_cluster(workers: int = 2, log_dir: Path | None = None, env: dict[str, str] | None = None,
                  cores: int = 1, memory: str = "1g", timeout: float = 90) -> Cluster:
    """Start a master and ``workers`` workers (``cores`` and ``memory`` each) and wait until the
    master lists them all ALIVE; stops what it started if they do not come up."""
    home = spark_home()
    log_dir = Path(log_dir or Path(os.environ.get("TMPDIR", "/tmp")) / f"spark-cluster-{os.getpid()}")
    log_dir.mkdir(parents=True, exist_ok=True)
    env = cluster_env(env)
    port, ui = free_port(), free_port()
    cluster = Cluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}", log_dir)
    spark_class = str(home / "bin" / "spark-class")

    def launch(name: str, args: list[str]) -> None:
        with open(log_dir / f"{name}.log", "wb") as log:
            cluster.procs.append(processes.popen([spark_class, *args], env=env, stdin=subprocess.DEVNULL,
                                                 stdout=log, stderr=subprocess.STDOUT))

    try:
        launch("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                          "--webui-port", str(ui)])
        for n in range(workers):
            work = log_dir / f"worker{n}"
            launch(f"worker{n}", ["org.apache.spark.deploy.worker.Worker", cluster.master, "--cores", str(cores),
                                  "--memory", memory, "--host", "127.0.0.1", "--webui-port", str(free_port()),
                                  "--work-dir", str(work)])
        deadline = time.monotonic() + timeout
        while True:
            try:
                if len(cluster.alive_workers()) >= workers:
                    return cluster
            except ValueError:  # HTML where JSON was asked for
                if cluster.registered_workers() >= workers:
                    return cluster
            except OSError:
                pass  # the master's UI is not up yet
            dead = [p.args for p in cluster.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"the Spark cluster did not come up ({'exited: ' + str(dead) if dead else 'timeout'}); "
                                   f"see the logs in {log_dir}")
            time.sleep(0.5)
    except BaseException:
        cluster.stop()
        raise
