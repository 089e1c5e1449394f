"""The insights pipeline's own settings, read from ``PIPELINE_INSIGHTS_*`` variables.

The platform-wide ``PIPELINE_PARTITIONS_START`` defaults to the current month, which suits
hourly event data but would leave a monthly pipeline without a single complete month to load,
so insights has its own start (default January 2019, before the first monthly dumps).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from typing import Mapping

from pipeline.settings import SettingsError

DEFAULT_START = "2019-01-01"
DEFAULT_TOP_N = 10
MAX_TOP_N = 1000


@dataclass(frozen=True)
class InsightsConfig:
    start: str = DEFAULT_START  # first day of the first monthly partition (ISO date)
    top_n: int = DEFAULT_TOP_N  # rows kept by every top_* and all_time_* table

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "InsightsConfig":
        env = os.environ if env is None else env
        start_raw = env.get("PIPELINE_INSIGHTS_START") or DEFAULT_START
        try:
            start = dt.date.fromisoformat(start_raw.strip())
        except ValueError:
            raise SettingsError(
                f"PIPELINE_INSIGHTS_START={start_raw!r} is not valid: expected an ISO date such as "
                "2019-01-01 (its month is the first monthly partition)."
            ) from None
        top_raw = env.get("PIPELINE_INSIGHTS_TOP_N") or str(DEFAULT_TOP_N)
        if not re.fullmatch(r"\s*\d+\s*", top_raw) or not 1 <= int(top_raw) <= MAX_TOP_N:
            raise SettingsError(
                f"PIPELINE_INSIGHTS_TOP_N={top_raw!r} is not valid: expected a whole number "
                f"from 1 to {MAX_TOP_N}."
            )
        return cls(start=start.replace(day=1).isoformat(), top_n=int(top_raw))
