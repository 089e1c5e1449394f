"""The Spark engine on a real standalone cluster (``spark_cluster``: a master and two workers, each
its own JVM): the same tables as pandas, the work done by the executors of both workers, which
read the lake themselves (folder and S3), and no event row through the driver.

What the executors read comes from the application's REST API on a folder lake (Spark's own
``binaryFile`` and Parquet readers read it, so its input metrics count the bytes), and from the
engine's accumulator on an S3 lake (Python tasks read it; they do not feed Spark's input metrics);
where the tasks ran comes from the REST API too; what the driver process read comes from the
kernel (``/proc/self/io``).
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest
from pipeline_tests.events.platform_fixture import sample_files
from pipeline_tests.events.test_convergence import _converge
from pipeline_tests.spark_cluster import get_json

from pipeline.events import schema
from pipeline.events.archive import archive_block
from pipeline.events.claim import claim_hour
from pipeline.events.engine import PandasEngine, SparkEngine
from pipeline.events.layout import Manifest
from pipeline.resources.lake import Lake, LocalLake
from pipeline.resources.warehouse import Warehouse

pytestmark = [pytest.mark.slow, pytest.mark.spark]

EVENTS = ("purchase", "view")
DIMENSIONS = ("product_id", "brand", "category_l3")


@pytest.fixture(scope="module")
def cluster_session(spark_cluster):
    """The session of this module's tests, on the cluster, with its UI (REST API) on."""
    from pyspark.sql import SparkSession

    from pipeline.resources.spark import local_session

    active = SparkSession.getActiveSession()
    if active is not None:  # one SparkContext per process: another module's local session
        active.stop()
    saved = {k: os.environ.get(k) for k in ("SPARK_LOCAL_IP", "PIPELINE_SPARK_UI")}
    os.environ.update(SPARK_LOCAL_IP="127.0.0.1", PIPELINE_SPARK_UI="1")
    session = local_session(spark_cluster.master)
    assert session.sparkContext.master == spark_cluster.master
    yield session
    session.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _api(session, path: str):
    context = session.sparkContext
    return get_json(f"{context.uiWebUrl}/api/v1/applications/{context.applicationId}/{path}")


def _executors(session) -> dict[str, tuple[int, int]]:
    """Executor id -> (tasks it completed, bytes its tasks read as input) (the driver excluded),
    from the REST API (its listener runs behind the jobs: read until two reads a second apart agree)."""
    last = None
    while True:
        now = {e["id"]: (e["completedTasks"], e["totalInputBytes"]) for e in _api(session, "executors")
               if e["id"] != "driver"}
        if now == last:
            return now
        last = now
        time.sleep(1)


def _executor_tasks(session) -> dict[str, int]:
    """Executor id -> tasks it completed (``_executors``)."""
    return {executor: tasks for executor, (tasks, _) in _executors(session).items()}


def _stages(session) -> dict[int, dict]:
    """Completed stages by id, read as ``_executor_tasks`` reads the executors."""
    last = None
    while True:
        now = {s["stageId"]: s for s in _api(session, "stages?status=complete")}
        if last is not None and now.keys() == last.keys():
            return now
        last = now
        time.sleep(1)


def _land(lake: Lake, files) -> int:
    for name, data in files:
        lake.write_bytes(f"landing/{name}", data)
    return sum(len(data) for _, data in files)


def _claim_and_sum(lake: Lake, engine, files):
    """Claim the files' hours with ``engine``, then its minute sums of every accepted file."""
    hours = sorted({schema.parse_file_name(name).minute.floor("h") for name, _ in files})
    keys = []
    for hour in hours:
        report = claim_hour(lake, hour, engine)
        assert not report.quarantined, report.quarantined
        keys += [entry.staged(hour) for entry in Manifest.load(lake, hour).accepted()]
    after = pd.Timestamp(min(hours))
    ((sums, totals),) = engine.minute_sums(lake, [sorted(keys)], EVENTS, DIMENSIONS, after)
    return sums, totals


def _assert_same(actual, expected) -> None:
    sums, totals = actual
    want_sums, want_totals = expected
    assert set(sums) == set(want_sums)
    for pair, table in want_sums.items():
        assert table.num_rows, pair
        assert sums[pair].equals(table), pair
    assert set(totals) == set(want_totals)
    for event, (count, gmv) in want_totals.items():
        assert totals[event][0] == count and totals[event][1] == pytest.approx(gmv, rel=1e-12), event


def _pandas(tmp_path: Path, files):
    return _claim_and_sum(LocalLake(tmp_path / "pandas-lake"), PandasEngine(), files) if _land(
        LocalLake(tmp_path / "pandas-lake"), files) else None


def test_the_executors_of_both_workers_stage_and_sum_the_files(cluster_session, tmp_path):
    files = sample_files("2019-10-01 05:58", 4, events_per_minute=300, servers=3, seed=21)
    before = _executors(cluster_session)
    engine = SparkEngine(lambda: cluster_session)
    lake = LocalLake(tmp_path / "lake")
    raw_bytes = _land(lake, files)

    actual = _claim_and_sum(lake, engine, files)

    _assert_same(actual, _pandas(tmp_path, files))
    staged = list(lake.list("staged/"))
    assert staged and all(obj.key.endswith(".parquet") for obj in staged)
    staged_bytes = sum(obj.size for obj in staged)
    # Every raw file was read by Spark's binaryFile source and every staged file by its Parquet
    # reader, on the executors: Spark's own input metrics count them, no Python read does.
    after = _executors(cluster_session)
    assert len(after) == 2, after  # one executor per worker
    ran = {executor: after[executor][0] - before.get(executor, (0, 0))[0] for executor in after}
    assert all(n > 0 for n in ran.values()), f"tasks per executor: {ran}"
    read = sum(after[executor][1] - before.get(executor, (0, 0))[1] for executor in after)
    assert read >= raw_bytes + staged_bytes, f"executors read {read:,} bytes of {raw_bytes + staged_bytes:,}"
    assert engine.bytes_read == 0  # no Python task read the lake


def _driver_read() -> int:
    """Bytes this process has read with read() calls (files, pipes; not socket receives)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_no_event_row_passes_through_the_driver(cluster_session, tmp_path, pg_url):
    """An 18,000-row input (2.4 MB), claimed, summed and archived: what the driver process reads
    from files (the kernel's count) and what Spark's tasks send it (the stages' result sizes) are
    small fractions of its bytes: reports, aggregates, digests. Staging, t1 or the archive reading
    rows in the driver reads them all."""
    engine = SparkEngine(lambda: cluster_session)
    warm = sample_files("2019-10-01 07:00", 1, events_per_minute=50, servers=2, seed=1)
    warm_lake = LocalLake(tmp_path / "warm")
    _land(warm_lake, warm)
    _claim_and_sum(warm_lake, engine, warm)  # imports and first-use work, outside the measure

    files = sample_files("2019-10-01 08:00", 6, events_per_minute=3000, servers=2, seed=22)
    lake = LocalLake(tmp_path / "lake")
    raw_bytes = _land(lake, files)
    assert raw_bytes > 2_000_000
    stages_before = _stages(cluster_session)
    start = _driver_read()
    sums, totals = _claim_and_sum(lake, engine, files)
    day = pd.Timestamp("2019-10-01", tz="UTC")
    report = archive_block(lake, Warehouse(pg_url), day, day + pd.Timedelta(days=1), engine)
    read = _driver_read() - start
    assert report.written_by == "spark" and report.rows == 18_000, report
    stages = {i: s for i, s in _stages(cluster_session).items() if i not in stages_before}
    # What the tasks sent back to the driver (Spark's task metrics): reports, aggregates, digests
    # and the archive sort's sample of keys (a few hundred per range, whatever the rows).
    results = sum(s["resultSize"] for s in stages.values())
    assert stages and results < raw_bytes / 5, f"tasks sent {results:,} bytes to the driver for {raw_bytes:,}"
    rows = sum(entry.rows for entry in Manifest.load(lake, pd.Timestamp("2019-10-01 08:00", tz="UTC")).accepted())
    assert rows == 18_000 and totals["purchase"][0] + totals["view"][0] > 0
    print(f"driver read {read:,} bytes, tasks sent it {results:,} bytes, for {raw_bytes:,} bytes of files")
    assert read < raw_bytes / 5, f"the driver read {read:,} bytes for {raw_bytes:,} bytes of files"


def test_executors_read_an_s3_lake_themselves(cluster_session, s3_lake, tmp_path, pg_url):
    from pipeline.resources.lake import S3Lake

    # First-use work outside the measure (pyspark reads its own sources for call sites once).
    warm = sample_files("2019-10-01 07:00", 1, events_per_minute=50, servers=2, seed=1)
    warm_lake = S3Lake(s3_lake.url + "-warm", client=s3_lake.client)
    _land(warm_lake, warm)
    _claim_and_sum(warm_lake, SparkEngine(lambda: cluster_session), warm)

    files = sample_files("2019-10-01 09:00", 3, events_per_minute=200, servers=2, seed=23)
    engine = SparkEngine(lambda: cluster_session)
    raw_bytes = _land(s3_lake, files)
    start = _driver_read()
    actual = _claim_and_sum(s3_lake, engine, files)
    driver = _driver_read() - start
    _assert_same(actual, _pandas(tmp_path, files))
    staged_bytes = sum(obj.size for obj in s3_lake.list("staged/"))
    assert staged_bytes and engine.bytes_read == raw_bytes + staged_bytes
    # The moto server runs in this process: what it received is read here too, so this bounds
    # only the traffic the driver itself would add by reading the objects.
    assert driver < 2 * raw_bytes + staged_bytes, driver

    # The day's archive on the cluster: executors read the raw files (once for the reference
    # digests, once for the rows), stream the archive into the lake and read it back.
    day = pd.Timestamp("2019-10-01", tz="UTC")
    read_before = engine.bytes_read
    report = archive_block(s3_lake, Warehouse(pg_url), day, day + pd.Timedelta(days=1), engine)
    assert report.written_by == "spark", report.note
    archived = pd.read_csv(io.BytesIO(s3_lake.read_bytes(report.key)), dtype=str, compression="gzip")
    assert archived.groupby("source_file").size().to_dict() == {
        name: len(pd.read_csv(io.BytesIO(data), dtype=str)) for name, data in files}
    assert report.rows == len(archived) and not list(s3_lake.list("raw/"))
    assert engine.bytes_read - read_before == 2 * raw_bytes + report.bytes


def test_the_platform_converges_on_the_cluster(cluster_session, spark_cluster, tmp_path, pg_url, monkeypatch):
    """The convergence property (random order, late files, duplicates, bad files; tables equal to
    the DuckDB oracle, archives complete) with PIPELINE_ENGINE=spark on the cluster; the archives
    written by Spark there (a folder lake: the executors see its paths)."""
    before = _executor_tasks(cluster_session)
    platform = _converge(3, tmp_path, pg_url, monkeypatch, PIPELINE_ENGINE="spark",
                         PIPELINE_SPARK_MASTER=spark_cluster.master)
    assert platform.settings.engine == "spark"
    archives = platform.instance.fetch_materializations(dg.AssetKey(["events", "archive"]), limit=1000).records
    written = {r.asset_materialization.metadata["written_by"].value for r in archives}
    assert "spark" in written and written <= {"spark", "nothing to do"}, written  # by Spark, not the driver
    after = _executor_tasks(cluster_session)
    ran = {executor: after[executor] - before.get(executor, 0) for executor in after}
    assert len(ran) == 2 and all(n > 0 for n in ran.values()), f"tasks per executor: {ran}"
