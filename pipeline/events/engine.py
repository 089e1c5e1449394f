"""The engine contract: what the event assets need computed, independent of where it runs.

The pandas/pyarrow engine implements it with the pure functions of ``transform``; the Spark
engine (``PIPELINE_ENGINE=spark``) with those of ``spark_transform``, which give identical
tables (``pipeline_tests/events/test_spark_parity.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from pipeline.events import transform
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class Engine(Protocol):
    name: str

    def minute_aggregates(self, cleaned: pd.DataFrame, events: Sequence[str], dimensions: Sequence[str],
                          kept: np.ndarray | None = None) -> dict[tuple[str, str], pd.DataFrame]:
        """Accepted, cleaned rows of some minutes -> per (event, dimension) minute aggregates.

        ``kept``: ``transform.kept_by_dedupe(cleaned)`` if the caller has it (an engine may use
        it or dedupe itself)."""

    def merge(self, partials: pd.DataFrame, event: str, dimension: str, time_col: str) -> pd.DataFrame:
        """Partial aggregates sharing a key -> one row per key (counts add, averages weighted)."""


class PandasEngine:
    name = "pandas"

    def minute_aggregates(self, cleaned, events, dimensions, kept=None):
        return transform.aggregate_minutes(cleaned, events, dimensions, kept)

    def merge(self, partials, event, dimension, time_col):
        return transform.merge_partials(partials, event, dimension, time_col)


class SparkEngine:
    """The same contract on Spark. The session is asked for only when there are rows to compute:
    an empty input has the pandas result (identical by contract) without starting Java."""

    name = "spark"

    def __init__(self, session: Callable[[], SparkSession]):
        self._session = session

    def session(self) -> SparkSession:
        """The run's session (started now if it is the first use)."""
        return self._session()

    def minute_aggregates(self, cleaned, events, dimensions, kept=None):
        # ``kept`` is not used: the dedupe is part of what Spark computes (and of its parity test).
        if cleaned.empty:
            return transform.aggregate_minutes(cleaned, events, dimensions)
        from pipeline.events import spark_transform

        return spark_transform.aggregate_minutes(self._session(), cleaned, events, dimensions)

    def merge(self, partials, event, dimension, time_col):
        if partials.empty:
            return transform.merge_partials(partials, event, dimension, time_col)
        from pipeline.events import spark_transform

        return spark_transform.merge_partials(self._session(), partials, event, dimension, time_col)


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
    """A long backfill range in pieces: a day for pandas, a week for Spark (one job each).

    Bounds memory and the advisory locks held at once (one per hour) however long the range.
    """
    size = 168 if engine.name == "spark" else 24
    return [hours[i:i + size] for i in range(0, len(hours), size)]
