"""The engine contract: what the event assets need computed, independent of where it runs.

Aggregates travel as *sums* (Arrow tables of time, key, count and money units, see
:mod:`aggregation`). The pandas/pyarrow engine computes them with :mod:`aggregation` in this
process; the Spark engine (``PIPELINE_ENGINE=spark``) with :mod:`spark_transform`, and both give
identical tables (``pipeline_tests/events/test_spark_parity.py``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
import pyarrow as pa

from pipeline.events import aggregation, layout, staging, workers
from pipeline.events.aggregates import key_type, read_aggregates
from pipeline.events.staging import StagedFile, StageTask
from pipeline.events.tables import pairs
from pipeline.resources.lake import Lake, LocalLake
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Sums = dict[tuple[str, str], pa.Table]  # (event, dimension) -> time, key, count, units
Totals = dict[str, tuple[int, float]]  # event -> (rows, sum of prices), counted from rows
HourTotals = dict[tuple[pd.Timestamp, str, str], tuple[int, int]]  # (hour, event, dimension) -> count, units


class Engine(Protocol):
    name: str

    def stage(self, lake: Lake, tasks: Sequence[StageTask]) -> Iterator[StagedFile]:
        """``staging.stage_file`` of each task, yielded in task order: claiming's pure part."""

    def minute_sums(self, lake: Lake, chunks: Sequence[Sequence[str]], events: Sequence[str],
                    dimensions: Sequence[str], after: pd.Timestamp | None = None) -> Iterator[tuple[Sums, Totals]]:
        """For each chunk of staged keys (the files of whole minutes), in order: the per (event,
        dimension) minute sums of its rows (views deduplicated) and ``aggregation.row_totals`` of
        the rows of minutes after ``after``."""

    def hour_sums(self, lake: Lake, hours: Sequence[pd.Timestamp], events: Sequence[str],
                  dimensions: Sequence[str]) -> tuple[Sums, HourTotals]:
        """The hours' minute aggregates (their files in the lake) -> per (event, dimension), one
        row per (hour, key); and each hour's (count, units) per (event, dimension), from the
        minute sums apart from the hourly ones (the t2 check's reference)."""


class PandasEngine:
    """pandas and pyarrow on this machine: small work on threads of this process (rows staged
    here are handed to t1 in memory), large work on worker processes (every core, no GIL)."""

    name = "pandas"

    def stage(self, lake, tasks):
        if workers.wanted(len(tasks), workers.PROCESSES_FROM):
            yield from workers.in_order(functools.partial(staging.stage_in_worker, lake.reopen()), tasks)
            return

        def stage_here(task: StageTask) -> StagedFile:
            report, cleaned = staging.stage_file(lake, task)
            if cleaned is not None:
                staging.hand_off(report.staged_key, cleaned)
            return report

        yield from staging.in_order(tasks, stage_here)

    def minute_sums(self, lake, chunks, events, dimensions, after=None):
        events, dimensions = tuple(events), tuple(dimensions)
        if workers.wanted(len(chunks), 2):
            work = functools.partial(_sums_in_worker, lake.reopen(), events, dimensions, after)
            yield from workers.in_order(work, [tuple(chunk) for chunk in chunks])
            return
        for chunk in chunks:
            yield aggregation.sums_and_totals(staging.read_chunk(lake, chunk), events, dimensions, after)

    def hour_sums(self, lake, hours, events, dimensions):
        """An hour's aggregates at a time: this process holds one hour of minute sums."""
        parts: dict[tuple[str, str], list[pa.Table]] = {pair: [] for pair in pairs(events, dimensions)}
        totals = {}
        for hour in hours:
            sums = read_aggregates(lake, hour)[0]
            for (event, dimension), merged in parts.items():
                minutes = sums.get((event, dimension))
                totals[(hour, event, dimension)] = aggregation.totals(minutes) if minutes is not None else (0, 0)
                if minutes is not None and minutes.num_rows:
                    merged.append(aggregation.merge_sums([minutes], key_type(dimension), hourly=True))
        return {pair: aggregation.merge_sums(merged, key_type(pair[1]), hourly=True)
                for pair, merged in parts.items()}, totals


def _sums_in_worker(spec, events, dimensions, after, chunk) -> tuple[Sums, Totals]:
    """``minute_sums`` of one chunk in a worker process, on the lake ``spec`` names."""
    return aggregation.sums_and_totals(staging.read_chunk(staging.worker_lake(spec), chunk), events,
                                       dimensions, after)


class SparkEngine:
    """The same contract on Spark, the work on the executors: they read the landed files, check
    and stage them (one ``staging.stage_file`` each), and the minute sums are one Spark query over
    the staged rows they read (``spark_tasks``). The driver sends task descriptions and paths and
    receives per-file reports and aggregates, never an event row.

    On a folder lake Spark's own sources read the files (``binaryFile``, Parquet), so Spark's input
    metrics show them; on an S3 lake Python tasks read them with the lake client (as they read
    t2's aggregates files on either lake), and ``bytes_read`` (an accumulator) counts what those
    read. The session is asked for only when there is something to compute: no session, no Java,
    for an empty call.
    """

    name = "spark"

    def __init__(self, session: Callable[[], SparkSession]):
        self._session = session
        self._read: dict[int, Any] = {}  # SparkContext id -> its accumulator of bytes read

    def session(self) -> SparkSession:
        """The run's session (started now if it is the first use)."""
        return self._session()

    @property
    def bytes_read(self) -> int:
        return sum(acc.value for acc in self._read.values())

    def accumulator(self, spark: SparkSession):
        """The accumulator executors add the bytes they read to (one per SparkContext)."""
        context = spark.sparkContext
        return self._read.get(id(context)) or self._read.setdefault(id(context), context.accumulator(0))

    @staticmethod
    def slices(spark: SparkSession, items: int) -> int:
        """Tasks for ``items`` files: a few per core of the cluster (small tasks balance)."""
        return max(1, min(items, 4 * spark.sparkContext.defaultParallelism))

    @classmethod
    def task_frame(cls, spark: SparkSession, rows: list[tuple], ddl: str):
        """Task inputs (keys, names) as a DataFrame of ``slices`` partitions, for ``mapInArrow``."""
        return spark.createDataFrame(spark.sparkContext.parallelize(rows, cls.slices(spark, len(rows))), ddl)

    def stage(self, lake, tasks):
        from pipeline.events import spark_tasks

        tasks = list(tasks)
        if not tasks:
            return
        spark = self._session()
        reports = _stage_files(spark, lake, tasks) if isinstance(lake, LocalLake) else {}
        # Python tasks read the rest with the lake client: an S3 lake, and what binaryFile gave no
        # row for (an empty file has no split; a file moved away since is reported gone by them).
        rest = [task for task in tasks if task.key not in reports]
        if rest:
            work = functools.partial(spark_tasks.stage, lake.reopen(), self.accumulator(spark))
            reports.update((report.key, report) for report in
                           spark.sparkContext.parallelize(rest, self.slices(spark, len(rest))).map(work).collect())
        for task in tasks:
            yield reports[task.key]

    def minute_sums(self, lake, chunks, events, dimensions, after=None):
        from pipeline.events import spark_tasks, spark_transform

        for chunk in chunks:
            if not chunk:
                yield aggregation.sums_and_totals(spark_tasks.STAGED.empty_table(), events, dimensions, after)
                continue
            spark = self._session()
            # A folder lake's Parquet is read by Spark itself; the rest (an S3 lake, rows staged
            # as Arrow IPC by the pandas engine) by Python tasks through the lake client.
            native = {key for key in chunk if key.endswith(".parquet")} if isinstance(lake, LocalLake) else set()
            paths = [spark_tasks.hadoop_path(str(lake.path(key))) for key in chunk if key in native]
            parts = [spark.read.schema(spark_tasks.STAGED_DDL).parquet(*paths)] if paths else []
            others = [(key,) for key in chunk if key not in native]
            if others:
                read = functools.partial(spark_tasks.staged_rows, lake.reopen(), self.accumulator(spark))
                parts.append(self.task_frame(spark, others, "key string").mapInArrow(read, spark_tasks.STAGED_DDL))
            rows = functools.reduce(lambda a, b: a.unionByName(b), parts)
            yield spark_transform.sums_and_totals(spark, rows, events, dimensions, after)

    def hour_sums(self, lake, hours, events, dimensions):
        """Executors read the hours' aggregates files and merge them: the driver receives the
        hourly sums and the hours' totals, never the minute sums."""
        from pipeline.events import spark_tasks, spark_transform

        wanted = pairs(events, dimensions)
        keys = [layout.aggregates_key(hour) for hour in hours if lake.exists(layout.aggregates_key(hour))]
        hourly, totals = {pair: aggregation.merge_sums([], key_type(pair[1])) for pair in wanted}, {}
        if keys:  # no session for nothing to merge
            spark = self._session()
            read = functools.partial(spark_tasks.minute_sums_rows, lake.reopen(), self.accumulator(spark),
                                     frozenset(wanted))
            files = self.task_frame(spark, [(key,) for key in keys], "key string")
            rows = files.mapInArrow(read, spark_tasks.MINUTE_SUMS_DDL)
            hourly, totals = spark_transform.hourly_sums_and_totals(rows, wanted)
        return hourly, {(hour, *pair): totals.get((hour, *pair), (0, 0)) for hour in hours for pair in wanted}


def _stage_files(spark: SparkSession, lake: LocalLake, tasks: list[StageTask]) -> dict[str, StagedFile]:
    """``SparkEngine.stage`` on a folder lake: Spark's ``binaryFile`` source reads the files on the
    executors (its input metrics count them), ``spark_tasks.stage_files`` stages each there, and
    only the reports are collected, by key. A file with no row (gone since the listing, or empty:
    Spark makes no split of an empty file) has no report here."""
    import pickle

    from pyspark.errors import AnalysisException

    from pipeline.events import spark_tasks

    by_path = {str(lake.path(task.key)): task for task in tasks}
    reports: dict[str, StagedFile] = {}
    paths = [path for path in by_path if os.path.isfile(path)]
    while paths:
        try:  # planning checks that every path exists: one moved away since is dropped, then again
            files = spark.read.format("binaryFile").option("ignoreMissingFiles", "true").load(
                [spark_tasks.hadoop_path(path) for path in paths])
        except AnalysisException as error:
            left = [path for path in paths if os.path.isfile(path)]
            if error.getCondition() != "PATH_NOT_FOUND" or len(left) == len(paths):
                raise
            paths = left
            continue
        work = functools.partial(spark_tasks.stage_files, lake.reopen(), by_path)
        found = (pickle.loads(row.report) for row in files.mapInArrow(work, spark_tasks.REPORTS_DDL).collect())
        reports = {report.key: report for report in found}
        break
    return reports


def get_engine(name: str, *, spark: Any = None, master: str = "local[*]") -> Engine:
    """The engine ``PIPELINE_ENGINE`` names. Spark's session is the run's ``spark`` resource (a
    ``LazyPySparkResource``) in an asset, else a local session on ``master`` (CLI, tests, bench)."""
    if name == "pandas":
        return PandasEngine()
    if name == "spark":
        if spark is not None:
            return SparkEngine(lambda: spark.spark_session)
        from pipeline.resources.spark import ensure_java, local_session

        ensure_java()  # fail here, with the fix in the message, rather than at the first rows
        return SparkEngine(lambda: local_session(master))
    raise ValueError(f"PIPELINE_ENGINE={name!r} is not valid: expected pandas or spark")


def engine_for(settings: Settings) -> Engine:
    """The configured engine outside Dagster (a local Spark session when PIPELINE_ENGINE=spark)."""
    return get_engine(settings.engine, master=settings.spark_master)


def hour_chunks(hours: list[pd.Timestamp], engine: Engine) -> list[list[pd.Timestamp]]:
    """A long backfill range in pieces: six hours for pandas, a day for Spark.

    Bounds the driver's memory however long the range (a piece's new minute aggregates wait for
    its transaction to commit, and t2 merges a piece's aggregates at once) and the advisory locks
    held at once (one per hour). Spark's pieces are longer because each costs a few jobs.
    """
    size = 24 if engine.name == "spark" else 6
    return [hours[i:i + size] for i in range(0, len(hours), size)]
