"""One typed settings object, read from ``PIPELINE_*`` environment variables.

Every knob of the platform is here so that a wrong value fails at start-up with a message that
names the variable, the value and what is accepted, instead of deep inside a run.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")
# Events that have aggregates (cart and remove_from_cart are kept in the archive only).
AGGREGATED_EVENTS = ("purchase", "view")
DIMENSIONS = ("product_id", "brand", "category_l1", "category_l2", "category_l3", "category_id")
ARCHIVE_BLOCKS = ("hour", "day")
ENGINES = ("pandas", "spark")


class SettingsError(ValueError):
    """A PIPELINE_* variable holds a value the platform cannot use."""


def _bad(name: str, value: str, accepted: str) -> SettingsError:
    return SettingsError(f"{name}={value!r} is not valid: expected {accepted}.")


def _choice_list(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name, default)
    items = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not items or any(item not in allowed for item in items):
        raise _bad(name, raw, f"a comma-separated list of {', '.join(allowed)}")
    return items


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, str(default))
    if not re.fullmatch(r"\s*\d+\s*", raw) or int(raw) <= 0:
        raise _bad(name, raw, "a whole number greater than 0")
    return int(raw)


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name, default).strip()
    if raw not in allowed:
        raise _bad(name, raw, " or ".join(allowed))
    return raw


def _first_of_month(today: dt.date) -> str:
    return today.replace(day=1).isoformat()


@dataclass(frozen=True)
class Settings:
    home: Path
    pg_url: str | None
    lake_url: str
    partitions_start: str
    partitions_end: str | None = None
    events: tuple[str, ...] = AGGREGATED_EVENTS
    dimensions: tuple[str, ...] = ("product_id", "brand", "category_l3")
    t1_retention_hours: int = 24
    t2_retention_days: int = 31
    archive_block: str = "day"
    archive_settle_minutes: int = 60
    engine: str = "pandas"
    spark_master: str = "local[*]"
    sensor_interval_seconds: int = 15
    landing_page_size: int = 1000
    freshness_warn_minutes: int = 3
    freshness_fail_minutes: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, today: dt.date | None = None) -> "Settings":
        env = os.environ if env is None else env
        home = Path(env.get("PIPELINE_HOME", "./.clickflow")).expanduser().absolute()

        pg_url = env.get("PIPELINE_PG_URL") or None
        if pg_url is not None and not re.match(r"^postgres(ql)?(\+\w+)?://", pg_url):
            # The value may hold a password: never echo it back.
            raise SettingsError(
                "PIPELINE_PG_URL is not valid: expected a postgresql://user:password@host:port/db URL "
                "(or unset it to use the embedded server)."
            )

        lake_url = env.get("PIPELINE_LAKE_URL") or str(home / "lake")
        if lake_url.startswith("s3://"):
            if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[A-Za-z0-9._\-/]*)?", lake_url):
                raise _bad("PIPELINE_LAKE_URL", lake_url, "s3://bucket[/prefix] with a valid bucket name")
        elif "://" in lake_url and not lake_url.startswith("file://"):
            raise _bad("PIPELINE_LAKE_URL", lake_url, "a folder path, file:///folder or s3://bucket/prefix")

        start_raw = env.get("PIPELINE_PARTITIONS_START") or _first_of_month(today or dt.date.today())
        try:
            start = dt.date.fromisoformat(start_raw.strip())
        except ValueError:
            raise _bad("PIPELINE_PARTITIONS_START", start_raw, "an ISO date such as 2019-10-01") from None

        end_raw = env.get("PIPELINE_PARTITIONS_END") or None
        end = None
        if end_raw is not None:
            try:
                end = dt.date.fromisoformat(end_raw.strip())
            except ValueError:
                raise _bad("PIPELINE_PARTITIONS_END", end_raw, "an ISO date after PIPELINE_PARTITIONS_START") from None
            if end <= start:
                raise _bad("PIPELINE_PARTITIONS_END", end_raw, f"an ISO date after PIPELINE_PARTITIONS_START={start}")

        events = _choice_list(env, "PIPELINE_EVENTS", "purchase,view", AGGREGATED_EVENTS)
        dimensions = _choice_list(env, "PIPELINE_DIMENSIONS", "product_id,brand,category_l3", DIMENSIONS)

        warn = _positive_int(env, "PIPELINE_FRESHNESS_WARN_MINUTES", 3)
        fail = _positive_int(env, "PIPELINE_FRESHNESS_FAIL_MINUTES", 10)
        if fail < warn:
            raise _bad("PIPELINE_FRESHNESS_FAIL_MINUTES", str(fail),
                       f"a number of minutes at least PIPELINE_FRESHNESS_WARN_MINUTES={warn}")

        return cls(
            home=home,
            pg_url=pg_url,
            lake_url=lake_url,
            partitions_start=start.isoformat(),
            partitions_end=end.isoformat() if end else None,
            events=events,
            dimensions=dimensions,
            t1_retention_hours=_positive_int(env, "PIPELINE_T1_RETENTION_HOURS", 24),
            t2_retention_days=_positive_int(env, "PIPELINE_T2_RETENTION_DAYS", 31),
            archive_block=_choice(env, "PIPELINE_ARCHIVE_BLOCK", "day", ARCHIVE_BLOCKS),
            archive_settle_minutes=_positive_int(env, "PIPELINE_ARCHIVE_SETTLE_MINUTES", 60),
            engine=_choice(env, "PIPELINE_ENGINE", "pandas", ENGINES),
            spark_master=env.get("PIPELINE_SPARK_MASTER", "local[*]"),
            sensor_interval_seconds=_positive_int(env, "PIPELINE_SENSOR_INTERVAL_SECONDS", 15),
            landing_page_size=_positive_int(env, "PIPELINE_LANDING_PAGE_SIZE", 1000),
            freshness_warn_minutes=warn,
            freshness_fail_minutes=fail,
        )

    @property
    def pg_dir(self) -> Path:
        return self.home / "pg"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"


def load_settings() -> Settings:
    return Settings.from_env()
