"""The event stream's data contract: input columns, event types, file-name grammar, hour keys.

The name of a landed file is the only thing the platform knows about it before reading it, so the
grammar is strict: a name that could be a path, or whose time is not a real instant, is refused
with a message saying what is wrong and what is expected.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pandas as pd

from pipeline.settings import EVENT_TYPES

__all__ = [
    "COLUMNS", "EVENT_TYPES", "HOUR_KEY_FORMAT", "BadFileName", "FileName",
    "parse_file_name", "hour_key", "minute_of_hour_key", "as_utc",
]

# Header of the public "eCommerce behavior data from multi category store" data set.
COLUMNS: tuple[str, ...] = (
    "event_time", "event_type", "product_id", "category_id", "category_code",
    "brand", "price", "user_id", "user_session",
)

# Format of Dagster's hourly TimeWindowPartitionsDefinition keys.
HOUR_KEY_FORMAT = "%Y-%m-%d-%H:%M"

EXPECTED_NAME = (
    "expected YYYY-MM-DD-HH-MM-SS-<server>.csv or .csv.gz, where <server> is 1 to 64 letters, "
    "digits, '_' or '-' starting with a letter or digit (e.g. 2019-10-01-00-00-00-server1.csv)"
)
_SERVER = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_NAME = re.compile(
    r"(?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2})-(?P<server>" + _SERVER + r")"
    r"\.csv(?P<gz>\.gz)?"
)


class BadFileName(ValueError):
    """A landed object's name does not follow the file-name grammar."""


@dataclass(frozen=True)
class FileName:
    name: str
    minute: pd.Timestamp  # UTC, start of the minute the file's events belong to
    server: str
    compressed: bool


def _refuse(name: str, problem: str) -> BadFileName:
    return BadFileName(f"bad file name {name!r}: {problem}; {EXPECTED_NAME}")


def parse_file_name(name: str) -> FileName:
    """Parse a bare file name (no folder) into its minute and server."""
    if not name:
        raise _refuse(name, "the name is empty")
    if "/" in name or "\\" in name:
        raise _refuse(name, "it contains a path separator")
    if ".." in name:
        raise _refuse(name, "it contains '..'")
    if not (name.endswith(".csv") or name.endswith(".csv.gz")):
        raise _refuse(name, "the extension must be .csv or .csv.gz")
    match = _NAME.fullmatch(name)
    if match is None:
        if re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}-[0-9]{2}-", name):
            raise _refuse(name, "the server part is missing or has characters that are not allowed")
        raise _refuse(name, "it does not start with a YYYY-MM-DD-HH-MM-SS time")
    try:
        when = dt.datetime.strptime(match["time"], "%Y-%m-%d-%H-%M-%S")
    except ValueError as error:
        raise _refuse(name, f"{match['time']!r} is not a real date and time ({error})") from None
    return FileName(
        name=name,
        minute=pd.Timestamp(when, tz="UTC").floor("min"),
        server=match["server"],
        compressed=match["gz"] is not None,
    )


def as_utc(ts) -> pd.Timestamp:
    """A timestamp in UTC; naive values are taken to be UTC already."""
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def hour_key(ts) -> str:
    """Dagster hourly partition key of the hour containing ``ts``."""
    return as_utc(ts).floor("h").strftime(HOUR_KEY_FORMAT)


def minute_of_hour_key(key: str) -> pd.Timestamp:
    """Start (UTC) of the hour named by an hourly partition key."""
    try:
        start = dt.datetime.strptime(key, HOUR_KEY_FORMAT)
    except ValueError:
        start = None
    # strptime accepts unpadded fields: the round trip keeps keys canonical.
    if start is None or start.minute or start.strftime(HOUR_KEY_FORMAT) != key:
        raise ValueError(f"{key!r} is not an hourly partition key like '2019-10-01-05:00'")
    return pd.Timestamp(start, tz="UTC")
