"""The basket pipeline's own knobs, read from ``PIPELINE_BASKET_*`` and checked at start-up.

| variable | default | meaning |
|---|---|---|
| ``PIPELINE_BASKET_START`` | ``2024-01-01`` | first daily partition of ``basket/orders`` (ISO date) |
| ``PIPELINE_BASKET_MIN_ROWS`` | ``1`` | fewest rows a day (per stream table) or a reference table may hold |
| ``PIPELINE_BASKET_DAY_RATIO`` | ``0.5,2.0`` | allowed band for a day's rows divided by the previous day's |
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.settings import SettingsError


@dataclass(frozen=True)
class BasketConfig:
    start: str = "2024-01-01"
    min_rows: int = 1
    day_ratio: tuple[float, float] = (0.5, 2.0)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BasketConfig:
        env = os.environ if env is None else env
        return cls(start=_date(env), min_rows=_min_rows(env), day_ratio=_band(env))


def _date(env: Mapping[str, str]) -> str:
    raw = env.get("PIPELINE_BASKET_START") or "2024-01-01"
    try:
        return dt.date.fromisoformat(raw.strip()).isoformat()
    except ValueError:
        raise SettingsError(
            f"PIPELINE_BASKET_START={raw!r} is not valid: expected an ISO date such as 2024-01-01."
        ) from None


def _min_rows(env: Mapping[str, str]) -> int:
    raw = env.get("PIPELINE_BASKET_MIN_ROWS") or "1"
    if not re.fullmatch(r"\s*\d+\s*", raw):
        raise SettingsError(
            f"PIPELINE_BASKET_MIN_ROWS={raw!r} is not valid: expected a whole number (0 or more)."
        )
    return int(raw)


def _band(env: Mapping[str, str]) -> tuple[float, float]:
    raw = env.get("PIPELINE_BASKET_DAY_RATIO") or "0.5,2.0"
    try:
        low, high = (float(part) for part in raw.split(","))
    except ValueError:
        low = high = -1.0
    if not 0 <= low <= 1 <= high < float("inf"):
        raise SettingsError(
            f"PIPELINE_BASKET_DAY_RATIO={raw!r} is not valid: expected LOW,HIGH with 0 <= LOW <= 1 <= HIGH, "
            "such as 0.5,2.0 (a day may hold half to twice the rows of the day before)."
        )
    return low, high
