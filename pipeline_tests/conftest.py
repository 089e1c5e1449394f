"""Shared fixtures: one real embedded PostgreSQL for the session, a fresh database per test,
a folder lake per test, a moto S3 server over HTTP and a local webhook over HTTP; and a guard that
no process the tests started outlives them."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import socket
import tempfile
import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pipeline.clickstream import notify
from pipeline.resources.lake import LocalLake, S3Lake
from pipeline.resources.warehouse import Warehouse, embedded_server_url, with_database
from pipeline_tests import processes


# What may outlive its test until pytest exits: PySpark keeps one JVM per Python process (it ends
# when this process does; the spark fixture stops the session, not the JVM), and Python's own
# multiprocessing resource tracker and fork server, started with the pandas engine's worker
# processes, likewise.
LIVES_WITH_PYTEST = ("org.apache.spark.deploy.SparkSubmit", "multiprocessing.resource_tracker",
                     "multiprocessing.forkserver")


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind():
    """Fails the test run when a process the tests started is still alive after its teardown:
    any session started through ``pipeline_tests.processes`` (a daemon, a webserver and what
    they started, however deep), and any child of pytest still running. Kills what it finds.
    The pandas engine's worker processes live as long as the process that uses them: stopped first."""
    yield
    from pipeline.events import workers

    workers.shutdown()
    left = processes.leftovers()
    children = {pid: command for pid, command in processes.descendants(os.getpid()).items()
                if not any(marker in command for marker in LIVES_WITH_PYTEST)}
    if left or children:
        processes.kill_leftovers()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pytest.fail(f"processes started by the tests outlived them (killed now): {left | children}",
                    pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of a real PostgreSQL for the tests: ``CLICKFLOW_TEST_PG_URL`` or an embedded server.

    The embedded server lives in a short temporary folder (unix socket paths are limited).
    """
    external = os.environ.get("CLICKFLOW_TEST_PG_URL")
    if external:
        return external
    root = Path(tempfile.mkdtemp(prefix="cfpg-", dir="/tmp"))
    # "delete": the server stops and its folder goes when the test session ends.
    return with_database(embedded_server_url(root / "pg", cleanup_mode="delete"), "postgres")


@pytest.fixture
def new_database(pg_admin_url: str):
    """A factory of fresh, empty databases on the test server, all dropped after the test."""
    names = []

    def create() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        names.append(name)
        return with_database(pg_admin_url, name)

    yield create
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_url(new_database) -> str:
    """A fresh, empty database on the test server, dropped after the test."""
    return new_database()



@pytest.fixture
def warehouse(pg_url: str) -> Warehouse:
    return Warehouse(pg_url)


@pytest.fixture
def lake(tmp_path: Path) -> LocalLake:
    return LocalLake(tmp_path / "lake")


def _dummy_aws_credentials() -> None:
    """What boto3 needs to sign requests to the moto server (a real AWS account is never used)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def s3_endpoint():
    """A moto S3 server over real HTTP on loopback, with dummy credentials."""
    from moto.server import ThreadedMotoServer

    _dummy_aws_credentials()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_lake(s3_endpoint: str) -> S3Lake:
    """A lake on a fresh bucket (names longer than ``events``: moto routes that one elsewhere)."""
    import boto3

    bucket = f"clickflow-test-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return S3Lake(f"s3://{bucket}/lake", client=client)


@pytest.fixture(scope="module")
def spark():
    """A local Spark session for a test module (Spark tests only ask for it)."""
    from pipeline.resources.spark import local_session

    _dummy_aws_credentials()  # its Python workers inherit the JVM's environment, set now
    session = local_session("local[2]")
    # A conversion that falls back from Arrow to row-by-row Python must fail the test, not hide.
    session.conf.set("spark.sql.execution.arrow.pyspark.fallback.enabled", "false")
    session.conf.set("spark.sql.shuffle.partitions", "2")  # small data: fewer, cheaper tasks
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """A Spark standalone cluster (a master and two workers of one core and 1 GiB, separate JVMs
    from the pyspark package) for the session; stopped, executors included, at its end. Its
    executors get the moto server's dummy credentials (``s3_endpoint``) in their environment."""
    from pipeline_tests.spark_cluster import start_cluster

    cluster = start_cluster(2, log_dir=tmp_path_factory.mktemp("spark-cluster"), env={
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"})
    yield cluster
    cluster.stop()


class Hook(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: records (Content-Type, JSON body) of every POST, answers ``status``."""

    received: list = []
    status = 204

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(monkeypatch):
    """A local HTTP server as PIPELINE_NOTIFY_WEBHOOK; ``received`` holds (content type, JSON body)."""
    Hook.received, Hook.status = [], 204
    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(notify.WEBHOOK_ENV, f"http://127.0.0.1:{server.server_port}/hooks/clickflow")
    yield Hook
    server.shutdown()
    server.server_close()
    thread.join()
