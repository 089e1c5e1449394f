"""The engine contract: what the event assets need computed, independent of where it runs.

The pandas/pyarrow engine implements it with the pure functions of ``transform``; a Spark
engine (``PIPELINE_ENGINE=spark``) implements the same two methods over Spark DataFrames and
must give identical tables (the parity test is part of the Spark issue).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import pandas as pd

from pipeline.events import transform


class Engine(Protocol):
    name: str

    def minute_aggregates(self, cleaned: pd.DataFrame, events: Sequence[str],
                          dimensions: Sequence[str]) -> dict[tuple[str, str], pd.DataFrame]:
        """Accepted, cleaned rows of some minutes -> per (event, dimension) minute aggregates."""

    def merge(self, partials: pd.DataFrame, event: str, dimension: str, time_col: str) -> pd.DataFrame:
        """Partial aggregates sharing a key -> one row per key (counts add, averages weighted)."""


class PandasEngine:
    name = "pandas"

    def minute_aggregates(self, cleaned, events, dimensions):
        return transform.aggregate_minutes(cleaned, events, dimensions)

    def merge(self, partials, event, dimension, time_col):
        return transform.merge_partials(partials, event, dimension, time_col)


def get_engine(name: str) -> Engine:
    if name == "pandas":
        return PandasEngine()
    raise ValueError(
        f"PIPELINE_ENGINE={name!r}: the Spark engine is not available in this version; "
        "unset PIPELINE_ENGINE (or set it to pandas)"
    )
