"""PIPELINE_ENGINE=spark gives exactly the tables of the pandas engine: values, dtypes, row order.

Exact means ``==`` on floats too: both engines sum money as int64 units of 1/10,000 and derive
gmv and avg_price from the exact sums by the same IEEE operations, so there is no tolerance to
allow. The pandas engine is the reference (its own tests compare it with hand-computed values and
with the DuckDB oracle); one local Spark session serves the whole module.
"""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pipeline_tests.events.platform_fixture import make_platform, sample_files

from pipeline.events import aggregation, schema, spark_archive, spark_transform, transform
from pipeline.events.aggregates import read_aggregates
from pipeline.events.archive import archive_block
from pipeline.events.claim import claim_hour
from pipeline.events.staging import staged_bytes, staged_table
from pipeline.events.engine import SparkEngine, get_engine
from pipeline.events.jobs import ARCHIVE_JOB
from pipeline.events.tables import pairs, rank_table, t1_table, t2_table
from pipeline.resources.lake import LocalLake

pytestmark = [pytest.mark.slow, pytest.mark.spark]

EVENTS = ("purchase", "view")
DIMENSIONS = ("product_id", "brand", "category_l3", "category_id")
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
# Views of one (minute, session, product) at the same second: the kept row is decided by price,
# then by the other columns in order (category_id here), so the brand and category that get the
# view depend on the tie-break. Views without a session are one session. Prices whose float sums
# drift (0.1 + 0.2) test the exact money arithmetic.
TIES = HEADER + "".join(f"2019-10-01 01:05:{row}\n" for row in [
    "10 UTC,view,7,20,shop.a.zeta,zeta,5.00,1,s1",
    "10 UTC,view,7,31,shop.b.beta,beta,4.99,2,s1",
    "10 UTC,view,7,30,shop.b.alpha,alpha,4.99,3,s1",  # cheapest, then lowest category_id: kept
    "12 UTC,view,7,10,shop.c.early,early,1.00,4,s1",  # later: dropped
    "20 UTC,view,8,40,,,3.10,5,",
    "15 UTC,view,8,41,,nosession,3.20,6,",  # earliest of the session-less views of product 8: kept
    "20 UTC,view,8,42,,,3.30,7,s2",
    "30 UTC,purchase,9,50,shop.a.zeta,zeta,0.10,8,s3",
    "31 UTC,purchase,9,50,shop.a.zeta,zeta,0.20,8,s3",
    "32 UTC,purchase,9,50,shop.a.zeta,zeta,0.70,8,s3",
    "33 UTC,purchase,7,20,shop.a.zeta,zeta,999999.9999,9,s3",
])
TIES_NAME = "2019-10-01-01-05-00-ties.csv"


def _cleaned(files: list[tuple[str, bytes]], via_lake: bool = True) -> pd.DataFrame:
    """Accepted rows as t1 reads them: parsed, validated, cleaned and (by default) staged and read
    back as in the lake."""
    frames = []
    for name, data in files:
        if via_lake:
            staged = transform.stage(data, name, schema.parse_file_name(name).minute)
            frame = transform.as_frame(staged_table(staged_bytes(staged.cleaned)))
        else:
            good, _ = transform.validate(transform.read_events(data, name), schema.parse_file_name(name).minute)
            frame = transform.clean(good)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _assert_identical(actual: pd.DataFrame, expected: pd.DataFrame, label: str) -> None:
    assert list(actual.columns) == list(expected.columns), label
    assert dict(actual.dtypes) == dict(expected.dtypes), label
    pd.testing.assert_frame_equal(actual, expected, check_exact=True, obj=label)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    files = sample_files("2019-10-01 01:00", 8, events_per_minute=400, servers=3, seed=3)
    return _cleaned(files + [(TIES_NAME, TIES.encode())])


def test_minute_aggregates_are_identical_whatever_the_row_order(spark, rows):
    expected = transform.aggregate_minutes(rows, EVENTS, DIMENSIONS)
    shuffled = rows.sample(frac=1.0, random_state=7)
    actual = spark_transform.aggregate_minutes(spark, shuffled, EVENTS, DIMENSIONS)
    assert set(actual) == set(expected)
    for pair, frame in expected.items():
        assert len(frame), pair
        _assert_identical(actual[pair], frame, f"minute aggregates {pair}")


def test_the_dedupe_tie_break_is_the_pandas_one(spark):
    cleaned = _cleaned([(TIES_NAME, TIES.encode())], via_lake=False)  # arrow-backed text columns
    expected = transform.aggregate_minutes(cleaned, EVENTS, ("brand", "product_id"))
    actual = spark_transform.aggregate_minutes(spark, cleaned, EVENTS, ("brand", "product_id"))
    for pair, frame in expected.items():
        _assert_identical(actual[pair], frame, f"ties {pair}")
    views = actual[("view", "brand")]
    # alpha wins the three-way tie; the session-less views of product 8 are one view (brand
    # "nosession", the earliest); the view of product 8 in session s2 falls back to its product id.
    assert dict(zip(views["brand"], views["view_count"])) == {"alpha": 1, "nosession": 1, "8": 1}
    assert views["brand"].dtype == transform.TEXT
    by_product = actual[("view", "product_id")].set_index("product_id")
    assert by_product["avg_price"].to_dict() == {7: 4.99, 8: 3.25}
    purchases = actual[("purchase", "product_id")].set_index("product_id")
    assert purchases.loc[9, "gmv"] == 1.0 and purchases.loc[9, "purchase_count"] == 3  # not 0.1+0.2+0.7
    assert purchases.loc[7, "gmv"] == 999999.9999


def test_hour_sums_are_identical(spark, rows):
    table = transform.as_table(rows)
    for (event, dimension), minutes in aggregation.minute_sums(table, EVENTS, DIMENSIONS).items():
        key_type = minutes.schema.field("key").type
        halves = [minutes.slice(0, minutes.num_rows // 2), minutes.slice(minutes.num_rows // 2)]
        expected = aggregation.merge_sums(halves, key_type, hourly=True)
        assert spark_transform.hour_sums(spark, halves, key_type).equals(expected), f"{event}/{dimension}"


def test_hours_of_many_random_sums_merge_identically(spark):
    rng = np.random.default_rng(11)
    n = 2000
    times = pd.Timestamp("2019-10-01 05:00", tz="UTC").value + rng.integers(0, 180, n) * 60 * 10**9
    parts = [pa.table({"time": pa.array(times[i::3], pa.timestamp("ns", tz="UTC")),
                       "key": pa.array(rng.integers(1, 50, len(times[i::3])), pa.int64()),
                       "count": pa.array(rng.integers(1, 40, len(times[i::3])), pa.int64()),
                       "units": pa.array(rng.integers(1, 10**12, len(times[i::3])), pa.int64())}) for i in range(3)]
    expected = aggregation.merge_sums(parts, pa.int64(), hourly=True)
    assert expected.num_rows > 100
    assert spark_transform.hour_sums(spark, parts, pa.int64()).equals(expected)


def test_empty_input_gives_the_empty_frames_of_pandas(spark, rows):
    empty = rows.iloc[0:0]
    expected = transform.aggregate_minutes(empty, EVENTS, DIMENSIONS)
    for pair, frame in spark_transform.aggregate_minutes(spark, empty, EVENTS, DIMENSIONS).items():
        _assert_identical(frame, expected[pair], f"empty {pair}")


def test_the_engine_starts_no_session_for_nothing(tmp_path):
    def no_session():
        raise AssertionError("a Spark session was asked for with nothing to compute")

    engine = SparkEngine(no_session)
    lake = LocalLake(tmp_path / "lake")
    assert list(engine.stage(lake, [])) == []
    ((sums, totals),) = engine.minute_sums(lake, [[]], EVENTS, DIMENSIONS)
    assert all(table.num_rows == 0 for table in sums.values()) and totals == {"purchase": (0, 0.0), "view": (0, 0)}
    hourly, totals = engine.hour_sums(lake, [pd.Timestamp("2019-10-01 05:00", tz="UTC")], EVENTS, DIMENSIONS)
    assert all(table.num_rows == 0 for table in hourly.values()) and set(totals.values()) == {(0, 0)}
    with pytest.raises(ValueError, match="PIPELINE_ENGINE='dask'"):
        get_engine("dask")


# ------------------------------------------------------------------------------ whole platform


@pytest.fixture
def second_pg_url(new_database) -> str:
    return new_database()


def _batches() -> list[list[tuple[str, bytes]]]:
    """Live files of two hours, then late files of both hours (one backlog range run), duplicates,
    the tie file, and a live file of the next hour."""
    files = sample_files("2019-10-01 00:40", 30, events_per_minute=120, servers=2, seed=5)
    # Every third minute of server2, up to 01:06: older than the newest t1 minute (01:09) once
    # the rest has landed, so they are backlog.
    late = [f for f in files
            if f[0].endswith("server2.csv") and int(f[0][14:16]) % 3 == 0 and f[0] < "2019-10-01-01-09"]
    on_time = [f for f in files if f not in late]
    duplicates = [f for f in on_time if f[0] < "2019-10-01-01-09"][::7]
    next_hour = sample_files("2019-10-01 02:00", 2, events_per_minute=120, servers=1, seed=6)
    return [on_time, late + duplicates + [(TIES_NAME, TIES.encode())] + next_hour]


def _run(tmp_path, pg_url, monkeypatch, engine: str):
    # t1 keeps one hour so the backlog reaches minutes outside its window (t2 only).
    platform = make_platform(tmp_path / engine, pg_url, monkeypatch, PIPELINE_ENGINE=engine,
                             PIPELINE_SPARK_MASTER="local[2]", PIPELINE_T1_RETENTION_HOURS="1")
    for batch in _batches():
        for name, data in batch:
            platform.land(name, data)
        summary = platform.process()
        assert summary.runs and not summary.failed, (engine, summary.runs)
    tables = {}
    for event, dimension in pairs(platform.settings.events, platform.settings.dimensions):
        for spec, keys in ((t1_table(event, dimension), ["minute", dimension]),
                           (t2_table(event, dimension), ["hour", dimension]),
                           (rank_table(event, dimension), ["rank"])):
            tables[spec.qualified] = platform.table(spec).sort_values(keys).reset_index(drop=True)
    hours = pd.date_range("2019-10-01 00:00", periods=3, freq="h", tz="UTC")
    for hour in hours:
        for pair, sums in read_aggregates(platform.lake, hour)[0].items():
            tables[f"aggregates {hour} {pair}"] = sums.to_pandas()
    # The archive asset through the job the archive sensor requests (the engine's resources included).
    archive = platform.defs.resolve_job_def(ARCHIVE_JOB).execute_in_process(
        partition_key="2019-10-01", instance=platform.instance)
    assert archive.success and not list(platform.lake.list("raw/")), engine
    tables["archive"] = platform.archived_rows()
    return tables


def test_the_spark_platform_writes_the_tables_of_the_pandas_platform(
        spark, tmp_path, pg_url, second_pg_url, monkeypatch):
    calls = []
    aggregate = spark_transform.sums_and_totals

    def spy(session, cleaned, events, dimensions, after=None):
        sums, totals = aggregate(session, cleaned, events, dimensions, after)
        calls.append(sorted({hour for table in sums.values() for hour in table["time"].to_pandas().dt.floor("h")}))
        return sums, totals

    monkeypatch.setattr(spark_transform, "sums_and_totals", spy)
    archived = []
    monkeypatch.setattr(spark_archive, "write_folder",
                        lambda *args, real=spark_archive.write_folder: archived.append(1) or real(*args))
    # One after the other: the platforms read their database URL from the environment.
    expected = _run(tmp_path, pg_url, monkeypatch, "pandas")
    assert not calls and not archived
    actual = _run(tmp_path, second_pg_url, monkeypatch, "spark")

    assert calls, "the spark platform did not compute on Spark"
    assert archived == [1], "the spark platform did not archive on Spark"
    # The late files of hours 00 and 01 were one backlog range run: one Spark computation.
    assert [pd.Timestamp("2019-10-01 00:00", tz="UTC"), pd.Timestamp("2019-10-01 01:00", tz="UTC")] in calls
    assert set(actual) == set(expected)
    for name, frame in expected.items():
        assert len(frame), f"{name} is empty: the comparison would prove nothing"
        pd.testing.assert_frame_equal(actual[name], frame, check_exact=True, obj=name)
    views = expected["events.view_brand_minute"]
    assert views[views["brand"] == "alpha"]["view_count"].tolist() == [1]  # the tie file went through


# ------------------------------------------------------------------------------------- archives

# What a CSV writer can get wrong: quoted separators and quotes, spaces kept at both ends, empty
# and quoted-empty fields, another column order, a byte-order mark, CRLF line ends, gzip, and a
# row the platform rejects (archives keep every row of an accepted file).
_ODD_ORDER = "event_type,event_time,brand,price,product_id,category_id,category_code,user_id,user_session\n"
ODD_FILES = [
    ("2019-10-01-03-01-00-quotes.csv", (HEADER + "".join([
        '2019-10-01 03:01:01 UTC,view,1,2,"a,b.c"," spaced brand ",1.50,3,"s ""1"""\n',
        '2019-10-01 03:01:02 UTC,view,1,2,,,1.50,3,""\n',
        "2019-10-01 03:01:03 UTC,purchase,1,2,x.y,acme,not-a-price,3,s2\n",
    ])).encode()),
    ("2019-10-01-03-01-00-order.csv", (_ODD_ORDER + "".join([
        "purchase,2019-10-01 03:01:04 UTC,acme,9.99,5,6,a.b,7,s3\r\n",
        "view,2019-10-01 03:01:05 UTC,,0.10,5,6,,7,\r\n",
    ])).encode()),
    ("2019-10-01-03-02-00-bom.csv", ("\ufeff" + HEADER + "2019-10-01 03:02:01 UTC,view,8,9,c.d,brand,2.00,1,s4\n"
                                     ).encode()),
]


def _archive(tmp_path, pg_url, engine_name: str, batches, lake=None) -> list[tuple]:
    """Claim each batch and archive the day block after it; the archive read back after each."""
    from pipeline.resources.lake import LocalLake
    from pipeline.resources.warehouse import Warehouse

    # A root Hadoop would read as a glob: Spark is given escaped paths.
    lake, warehouse = lake or LocalLake(tmp_path / f"{engine_name} [lake]"), Warehouse(pg_url)
    engine = get_engine(engine_name, master="local[2]")
    day = pd.Timestamp("2019-10-01", tz="UTC")
    archives = []
    for batch in batches:
        for name, data in batch:
            lake.write_bytes(f"landing/{name}", data)
        for hour in sorted({schema.parse_file_name(n).minute.floor("h") for n, _ in batch}):
            claim_hour(lake, hour, engine)
        report = archive_block(lake, warehouse, day, day + pd.Timedelta(days=1), engine)
        assert report.raw_deleted == len(batch) and not list(lake.list("raw/")), engine_name
        assert report.bytes == len(lake.read_bytes(report.key))
        archives.append((report, pd.read_csv(io.BytesIO(lake.read_bytes(report.key)), compression="gzip",
                                             dtype=str, keep_default_na=False)))
    return archives


def test_the_spark_archive_holds_what_the_pandas_archive_holds(spark, tmp_path, pg_url, monkeypatch):
    files = sample_files("2019-10-01 03:00", 2, events_per_minute=60, servers=2, seed=9)
    gz = sample_files("2019-10-01 03:03", 1, events_per_minute=60, servers=1, gzip_files=True)
    assert gz[0][0].endswith(".gz")
    late = sample_files("2019-10-01 02:59", 1, events_per_minute=60, servers=1, seed=10)
    batches = [files + ODD_FILES + gz, late]  # the late file re-archives the block: rows kept once

    calls = []
    monkeypatch.setattr(spark_archive, "write_folder",
                        lambda *args, real=spark_archive.write_folder: calls.append(1) or real(*args))
    expected = _archive(tmp_path, pg_url, "pandas", batches)
    assert not calls
    actual = _archive(tmp_path, pg_url, "spark", batches)
    assert len(calls) == 2 and [r.written_by for r, _ in actual] == ["spark", "spark"], [r.note for r, _ in actual]
    for after, ((_, mine), (_, theirs)) in enumerate(zip(actual, expected)):
        pd.testing.assert_frame_equal(mine, theirs, check_exact=True, obj=f"archive after batch {after}")
    final = expected[-1][1]
    assert final.groupby("source_file").size().to_dict() == {
        name: len(pd.read_csv(io.BytesIO(data), dtype=str, compression="gzip" if name.endswith(".gz") else None))
        for name, data in files + ODD_FILES + gz + late}
    quotes = final[final["source_file"] == "2019-10-01-03-01-00-quotes.csv"]
    assert quotes["brand"].tolist() == [" spaced brand ", "", "acme"]
    assert quotes["user_session"].tolist() == ['s "1"', "", "s2"]


def test_the_spark_archive_of_an_s3_lake_is_written_by_the_executors(spark, tmp_path, pg_url, new_database,
                                                                     s3_lake, monkeypatch):
    """On an S3 lake executor tasks read the objects and one streams the archive into the lake:
    the archives equal the pandas engine's, and the driver never stores one."""
    from pipeline.resources.lake import S3Lake

    stored = []
    real_write = S3Lake.write_bytes
    monkeypatch.setattr(S3Lake, "write_bytes", lambda lake, key, data, durable=True: (
        stored.append(key), real_write(lake, key, data, durable))[1])
    files = sample_files("2019-10-01 03:00", 2, events_per_minute=60, servers=2, seed=9)
    gz = sample_files("2019-10-01 03:03", 1, events_per_minute=60, servers=1, gzip_files=True)
    late = sample_files("2019-10-01 02:59", 1, events_per_minute=60, servers=1, seed=10)
    batches = [files + ODD_FILES + gz, late]  # the late file re-archives the block from the first archive

    actual = _archive(tmp_path, pg_url, "spark", batches, lake=s3_lake)
    assert [r.written_by for r, _ in actual] == ["spark", "spark"], [r.note for r, _ in actual]
    assert not [key for key in stored if key.startswith("archive")], stored
    expected = _archive(tmp_path, new_database(), "pandas", batches)
    for after, ((_, mine), (_, theirs)) in enumerate(zip(actual, expected)):
        pd.testing.assert_frame_equal(mine, theirs, check_exact=True, obj=f"archive after batch {after}")


def test_a_spark_archive_that_does_not_read_back_whole_keeps_the_raw_files(spark, tmp_path, pg_url, monkeypatch):
    from pipeline.resources.lake import LocalLake

    real_write, real_move = LocalLake.write_bytes, LocalLake.move

    def shorten(lake, key):
        if key.startswith("archive-staging/"):  # the last rows lost on the way
            path = lake.path(key)
            path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-200]))

    def short_write(lake, key, data, durable=True):
        real_write(lake, key, data, durable)
        shorten(lake, key)

    def short_move(lake, src, dst):
        real_move(lake, src, dst)
        shorten(lake, dst)

    monkeypatch.setattr(LocalLake, "write_bytes", short_write)
    monkeypatch.setattr(LocalLake, "move", short_move)  # Spark's archive is renamed into staging
    with pytest.raises(RuntimeError, match="failed verification"):
        _archive(tmp_path, pg_url, "spark", [sample_files("2019-10-01 03:00", 2, events_per_minute=60, seed=11)])
    lake = LocalLake(tmp_path / "spark [lake]")
    assert len(list(lake.list("raw/"))) == 4 and not list(lake.list("archive/"))
    assert not list(lake.list("archive-staging/")) and not list((tmp_path / "spark [lake]").rglob("*.spark"))


# Where Spark's CSV reader and the platform's disagree: a quote then a space ("a" -> a with
# Spark, 'a ' here) and text after a closing quote ("ab"c, which Spark refuses to parse).
@pytest.mark.parametrize("brand", ['"a" ', '"ab"c'])
def test_a_block_spark_reads_otherwise_is_archived_here_as_the_platform_reads_it(
        spark, tmp_path, pg_url, new_database, brand):
    odd = [("2019-10-01-03-04-00-odd.csv", (HEADER + f"2019-10-01 03:04:01 UTC,view,1,2,x,{brand},1.5,3,s\n").encode())]
    batches = [sample_files("2019-10-01 03:00", 1, events_per_minute=20, seed=12) + odd]
    (report, actual), = _archive(tmp_path, pg_url, "spark", batches)
    assert report.written_by == "pandas" and "archived in this process" in report.note
    (_, expected), = _archive(tmp_path, new_database(), "pandas", batches)
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    assert actual[actual["source_file"] == odd[0][0]]["brand"].tolist() == [brand.replace('"', "")]


def test_a_block_with_extra_columns_or_malformed_lines_is_archived_here_with_them(spark, tmp_path, pg_url,
                                                                                 new_database):
    """The Spark archive carries the standard columns only: such a block is written by the driver."""
    extra = [("2019-10-01-03-05-00-extra.csv",
              (HEADER.rstrip("\n") + ",coupon\n2019-10-01 03:05:01 UTC,view,1,2,x,b,1.5,3,s,C9\n").encode())]
    short = [("2019-10-01-03-06-00-short.csv",
              (HEADER + "2019-10-01 03:06:01 UTC,view,1,2,x,b,1.5,3,s\n2019-10-01 03:06:02 UTC,view\n").encode())]
    plain = sample_files("2019-10-01 03:00", 1, events_per_minute=20, seed=13)
    for odd in (extra, short):
        batches = [plain + odd]
        (report, actual), = _archive(tmp_path / odd[0][0], pg_url, "spark", batches)
        assert report.written_by == "pandas", odd[0][0]
        assert "archived in this process" in report.note and odd[0][0] in report.note
        (_, expected), = _archive(tmp_path / odd[0][0], new_database(), "pandas", batches)
        pd.testing.assert_frame_equal(actual, expected, check_exact=True)
        assert len(actual[actual["source_file"] == odd[0][0]]) == 1
    assert actual.columns.tolist()[-1] == "user_session"  # no extra column in a block without one


def test_the_spark_engine_stages_an_empty_file_and_reports_a_file_gone(spark, tmp_path):
    """Spark's binaryFile source gives no row for an empty file (no split) nor for one moved away:
    the first must still be staged (an error, so quarantined), the second reported gone, never
    the other way round (a landed file reported gone stays in landing/, claimed again and again)."""
    from pipeline.events.staging import StageTask, stage_file

    hour = pd.Timestamp("2019-10-01 00:00", tz="UTC")
    lake = LocalLake(tmp_path / "lake")
    names = ["2019-10-01-00-03-00-empty.csv", "2019-10-01-00-04-00-gone.csv"]
    tasks = [StageTask(f"landing/2019-10-01-00/{name}", hour) for name in names]
    lake.write_bytes(tasks[0].key, b"")
    empty, gone = SparkEngine(lambda: spark).stage(lake, tasks)
    expected = stage_file(LocalLake(tmp_path / "reference"), tasks[0], b"")[0]
    assert not empty.gone and empty.error and (empty.error, empty.sha256) == (expected.error, expected.sha256)
    assert gone.gone and not gone.error
