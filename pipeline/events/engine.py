"""The engine contract: what the event assets need computed, independent of where it runs.

Aggregates travel as *sums* (Arrow tables of time, key, count and money units, see
:mod:`aggregation`). The pandas/pyarrow engine computes them with :mod:`aggregation` in this
process; the Spark engine (``PIPELINE_ENGINE=spark``) with :mod:`spark_transform`, and both give
identical tables (``pipeline_tests/events/test_spark_parity.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
import pyarrow as pa

from pipeline.events import aggregation, staging, workers
from pipeline.events.staging import StagedFile, StageTask
from pipeline.resources.lake import Lake
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Sums = dict[tuple[str, str], pa.Table]  # (event, dimension) -> time, key, count, units
Totals = dict[str, tuple[int, float]]  # event -> (rows, sum of prices), counted from rows


class Engine(Protocol):
    name: str

    def stage(self, lake: Lake, tasks: Sequence[StageTask]) -> Iterator[StagedFile]:
        """``staging.stage_file`` of each task, yielded in task order: claiming's pure part."""

    def minute_sums(self, lake: Lake, chunks: Sequence[Sequence[str]], events: Sequence[str],
                    dimensions: Sequence[str], after: pd.Timestamp | None = None) -> Iterator[tuple[Sums, Totals]]:
        """For each chunk of staged keys (the files of whole minutes), in order: the per (event,
        dimension) minute sums of its rows (views deduplicated) and ``aggregation.row_totals`` of
        the rows of minutes after ``after``."""

    def hour_sums(self, minutes: Sequence[pa.Table], key_type: pa.DataType) -> pa.Table:
        """Minute sums of one (event, dimension) -> one row per (hour, key)."""


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

    def hour_sums(self, minutes, key_type):
        return aggregation.merge_sums(minutes, key_type, hourly=True)


def _sums_in_worker(spec, events, dimensions, after, chunk) -> tuple[Sums, Totals]:
    """``minute_sums`` of one chunk in a worker process, on the lake ``spec`` names."""
    return aggregation.sums_and_totals(staging.read_chunk(staging.worker_lake(spec), chunk), events,
                                       dimensions, after)


class SparkEngine:
    """The same contract on Spark. The session is asked for only when there are rows to compute:
    an empty input has the pandas result (identical by contract) without starting Java."""

    name = "spark"

    def __init__(self, session: Callable[[], SparkSession]):
        self._session = session

    def session(self) -> SparkSession:
        """The run's session (started now if it is the first use)."""
        return self._session()

    def stage(self, lake, tasks):
        yield from PandasEngine().stage(lake, tasks)

    def minute_sums(self, lake, chunks, events, dimensions, after=None):
        from pipeline.events import spark_transform

        for chunk in chunks:
            cleaned = staging.read_chunk(lake, chunk)
            if not cleaned.num_rows:
                yield aggregation.sums_and_totals(cleaned, events, dimensions, after)
                continue
            yield (spark_transform.minute_sums(self._session(), cleaned, events, dimensions),
                   aggregation.row_totals(cleaned, events, None, after))

    def hour_sums(self, minutes, key_type):
        if not any(part.num_rows for part in minutes):
            return aggregation.merge_sums(minutes, key_type, hourly=True)
        from pipeline.events import spark_transform

        return spark_transform.hour_sums(self._session(), minutes, key_type)


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
    """A long backfill range in pieces: six hours for pandas, a week for Spark (one job each).

    Bounds memory (a chunk's new minute aggregates wait for its transaction to commit) and the
    advisory locks held at once (one per hour) however long the range.
    """
    size = 168 if engine.name == "spark" else 6
    return [hours[i:i + size] for i in range(0, len(hours), size)]
