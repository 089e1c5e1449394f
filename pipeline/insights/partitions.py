"""Monthly partitions and the lake layout of the monthly dumps.

A partition is a calendar month (UTC) keyed by its first day, ``2024-02-01``; its dump lives at
``insights/events/2024/02/events.csv`` or ``.../events.parquet``. The sensor, the asset and the
generator all go through these functions, so the layout is written down once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dagster as dg

DUMP_PREFIX = "insights/events/"
FORMATS = ("csv", "parquet")
_DUMP_KEY = re.compile(r"^insights/events/(\d{4})/(0[1-9]|1[0-2])/events\.(csv|parquet)$")


def monthly_partitions(start: str) -> dg.MonthlyPartitionsDefinition:
    """Complete months only: the running month becomes a partition once it has ended."""
    return dg.MonthlyPartitionsDefinition(start_date=start, timezone="UTC")


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def from_partition_key(cls, key: str) -> "Month":
        match = re.fullmatch(r"(\d{4})-(\d{2})-01", key)
        if not match:
            raise ValueError(f"{key!r} is not a monthly partition key such as 2024-02-01")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def partition_key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}-01"

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def dump_key(self, fmt: str) -> str:
        if fmt not in FORMATS:
            raise ValueError(f"dump format {fmt!r} is not one of {FORMATS}")
        return f"{DUMP_PREFIX}{self.year:04d}/{self.month:02d}/events.{fmt}"

    def quarantine_prefix(self, checksum: str) -> str:
        """Where what this dump could not load goes; one folder per dump content."""
        return f"quarantine/insights/events/{self.year:04d}/{self.month:02d}/{checksum[:16]}/"


def parse_dump_key(key: str) -> tuple[Month, str] | None:
    """The month and format of a dump key, or None for any other object under the prefix."""
    match = _DUMP_KEY.match(key)
    if not match:
        return None
    return Month(int(match.group(1)), int(match.group(2))), match.group(3)
