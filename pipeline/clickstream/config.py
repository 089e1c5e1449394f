"""The seed's ``parameter.ini``, read strictly into a typed, validated object.

The seed read its ini with ``configparser`` and compared the string ``"True"`` with ``True``, so
its sinks never ran. Here every value is parsed and checked once, when the code location loads,
and a mistake stops it with a message naming the file, the section, the key and the value.
"""

from __future__ import annotations

import configparser
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.resources.lake import LakeKeyError, validate_key

DEFAULT_INI = Path(__file__).with_name("parameter.ini")
INI_ENV = "PIPELINE_CLICKSTREAM_INI"

# section -> key -> default (text, as it would appear in the file)
SCHEMA: dict[str, dict[str, str]] = {
    "rescheduling": {"time_interval_hours": "24"},
    "path": {"source_path": "clickstream/source/", "destination_path": ""},
    "postgres_database": {
        "insert_into_postgre": "true",
        "table_name": "click_through_weekly",
        "postgres_data_append": "true",
    },
    "mongodb": {
        "insert_into_mongo": "false",
        "host": "localhost:27017",
        "database": "Ecommerce",
        "collection": "click_through_weekly",
        "mongodb_data_append": "true",
    },
    "aggregation": {"target_column": "click_event", "date_column": "date", "period": "7"},
    "columns": {"column_names": "product_category,product_name"},
}

# Keys of the seed's file that have a platform-wide replacement: say so instead of "unknown".
_REPLACED = {
    ("environment", None): "Dagster decides where runs execute; remove the [environment] section",
    ("postgres_database", "postgres_server"): "the connection is the platform's warehouse (PIPELINE_PG_URL)",
    (
        "postgres_database",
        "postgres_database",
    ): "the connection is the platform's warehouse (PIPELINE_PG_URL)",
    ("postgres_database", "postgres_port"): "the connection is the platform's warehouse (PIPELINE_PG_URL)",
    (
        "postgres_database",
        "postgres_username",
    ): "the connection is the platform's warehouse (PIPELINE_PG_URL)",
    (
        "postgres_database",
        "postgres_password",
    ): "the connection is the platform's warehouse (PIPELINE_PG_URL)",
}

# Lake prefixes the pipeline writes itself: the source must not overlap them.
RESERVED_PREFIXES = ("clickstream/metadata/", "clickstream/daily/", "quarantine/")

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TABLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .-]*$")
_BOOLEANS = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}


class ConfigError(ValueError):
    """The clickstream ini cannot be used; the message names the file, section and key."""


@dataclass(frozen=True)
class PostgresSink:
    enabled: bool
    table_name: str
    append: bool


@dataclass(frozen=True)
class MongoSink:
    enabled: bool
    host: str
    database: str
    collection: str
    append: bool


@dataclass(frozen=True)
class ClickstreamConfig:
    time_interval_hours: float
    source_prefix: str
    work_dir: Path | None  # None: the system's temporary folder
    postgres: PostgresSink
    mongo: MongoSink
    target_column: str
    date_column: str
    period: int
    groupings: tuple[tuple[str, ...], ...]  # ("a",) or ("a", "b") for a+b
    origin: str = "<defaults>"

    @property
    def grouping_names(self) -> tuple[str, ...]:
        return tuple("+".join(columns) for columns in self.groupings)

    @property
    def group_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(column for columns in self.groupings for column in columns))

    def column_origin(self, column: str) -> str:
        """Which ini key asked for ``column``: named in 'missing column' errors."""
        if column == self.target_column:
            return "[aggregation] target_column"
        if column == self.date_column:
            return "[aggregation] date_column"
        return "[columns] column_names"

    @property
    def cron_schedule(self) -> str:
        return interval_cron(self.time_interval_hours, self.origin)


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    raw = env.get(INI_ENV, "").strip()
    return Path(raw).expanduser() if raw else DEFAULT_INI


def load_config(
    path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None
) -> ClickstreamConfig:
    """Read ``path`` (default: ``$PIPELINE_CLICKSTREAM_INI`` or the package's parameter.ini)."""
    env = os.environ if env is None else env
    path = Path(path) if path is not None else config_path(env)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"{path}: cannot read the clickstream configuration ({error.strerror}); check {INI_ENV}"
        ) from None
    return parse_config(text, env, origin=str(path))


def parse_config(text: str, env: Mapping[str, str], origin: str = "<text>") -> ClickstreamConfig:
    parser = configparser.ConfigParser(interpolation=None, default_section="__no_defaults__")
    parser.optionxform = str  # keys are case-sensitive, as written in the seed
    try:
        parser.read_string(text, source=origin)
    except configparser.Error as error:
        raise ConfigError(f"{origin}: not a valid ini file: {error}") from None

    values: dict[tuple[str, str], str] = {}
    for section in parser.sections():
        if section not in SCHEMA:
            hint = _REPLACED.get((section, None)) or f"expected one of [{'], ['.join(SCHEMA)}]"
            raise ConfigError(f"{origin}: unknown section [{section}]: {hint}")
        for key, raw in parser.items(section):
            if key not in SCHEMA[section]:
                hint = _REPLACED.get((section, key)) or f"expected one of {', '.join(SCHEMA[section])}"
                raise ConfigError(f"{origin}: [{section}] {key}: unknown key: {hint}")
            values[(section, key)] = raw.strip()

    reader = _Reader(origin, values, env)
    postgres = PostgresSink(
        enabled=reader.boolean("postgres_database", "insert_into_postgre"),
        table_name=reader.matching(
            "postgres_database", "table_name", _TABLE, "a table name of lower-case letters, digits and _"
        ),
        append=reader.boolean("postgres_database", "postgres_data_append"),
    )
    mongo = MongoSink(
        enabled=reader.boolean("mongodb", "insert_into_mongo"),
        host=reader.mongo_host(),
        database=reader.matching(
            "mongodb",
            "database",
            re.compile(r'^[^/\\. "$\x00]{1,63}$'),
            'a MongoDB database name (no /\\. "$ or spaces)',
        ),
        collection=reader.matching(
            "mongodb",
            "collection",
            re.compile(r"^(?!system\.)[^$\x00]{1,120}$"),
            "a MongoDB collection name (no $, not system.*)",
        ),
        append=reader.boolean("mongodb", "mongodb_data_append"),
    )
    if not (postgres.enabled or mongo.enabled):
        raise ConfigError(
            f"{origin}: [postgres_database] insert_into_postgre and [mongodb] insert_into_mongo are "
            "both false: enable at least one sink"
        )

    target = reader.column("aggregation", "target_column")
    date = reader.column("aggregation", "date_column")
    if target == date:
        raise ConfigError(f"{origin}: [aggregation] target_column and date_column are both {target!r}")
    groupings = reader.groupings(exclude={target, date})
    hours = reader.number("rescheduling", "time_interval_hours", float, "a number of hours greater than 0")
    interval_cron(hours, origin)  # fail now, not when the schedule is built

    return ClickstreamConfig(
        time_interval_hours=hours,
        source_prefix=reader.source_prefix(),
        work_dir=reader.work_dir(),
        postgres=postgres,
        mongo=mongo,
        target_column=target,
        date_column=date,
        period=reader.number("aggregation", "period", int, "a whole number of days greater than 0"),
        groupings=groupings,
        origin=origin,
    )


def interval_cron(hours: float, origin: str = "<config>") -> str:
    """Cron for "every ``hours``": it must divide a day (whole hours) or an hour (whole minutes)."""
    minutes = hours * 60
    if minutes >= 1 and math.isclose(minutes, round(minutes)):
        minutes = round(minutes)
        if minutes < 60 and 60 % minutes == 0:
            return f"*/{minutes} * * * *"
        if minutes % 60 == 0 and 24 % (minutes // 60) == 0:
            return "0 0 * * *" if minutes == 1440 else f"0 */{minutes // 60} * * *"
    raise ConfigError(
        f"{origin}: [rescheduling] time_interval_hours = {hours:g}: a cron schedule cannot repeat "
        "at that interval; use a divisor of 24 hours (1, 2, 3, 4, 6, 8, 12, 24) or of 60 minutes "
        "(e.g. 0.1, 0.25, 0.5)"
    )


class _Reader:
    """Typed access to the ini values with defaults, ``${VAR}`` expansion and named errors."""

    def __init__(self, origin: str, values: dict[tuple[str, str], str], env: Mapping[str, str]):
        self.origin, self.values, self.env = origin, values, env

    def raw(self, section: str, key: str) -> str:
        return self.values.get((section, key), SCHEMA[section][key])

    def text(self, section: str, key: str) -> str:
        def expand(match: re.Match) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1)
            if name not in self.env:
                raise self.error(section, key, None, f"environment variable {name} is not set")
            return self.env[name]

        return _VAR.sub(expand, self.raw(section, key)).strip()

    def error(self, section: str, key: str, value: str | None, problem: str) -> ConfigError:
        shown = "" if value is None else f" = {value!r}"
        return ConfigError(f"{self.origin}: [{section}] {key}{shown}: {problem}")

    def boolean(self, section: str, key: str) -> bool:
        value = self.text(section, key)
        if value.lower() not in _BOOLEANS:
            raise self.error(section, key, value, "not a boolean (true or false)")
        return _BOOLEANS[value.lower()]

    def number(self, section: str, key: str, kind: Callable[[str], float], expected: str):
        value = self.text(section, key)
        try:
            number = kind(value)
        except ValueError:
            raise self.error(section, key, value, f"not {expected}") from None
        if not math.isfinite(number) or number <= 0:
            raise self.error(section, key, value, f"not {expected}")
        return number

    def matching(self, section: str, key: str, pattern: re.Pattern, expected: str) -> str:
        value = self.text(section, key)
        if not pattern.match(value):
            raise self.error(section, key, value, f"not {expected}")
        return value

    def column(self, section: str, key: str) -> str:
        return self.matching(section, key, _COLUMN, "a column name")

    def groupings(self, exclude: set[str]) -> tuple[tuple[str, ...], ...]:
        section, key = "columns", "column_names"
        value = self.text(section, key)
        groupings: list[tuple[str, ...]] = []
        for part in value.split(","):
            columns = tuple(column.strip() for column in part.split("+"))
            if not all(columns) or not all(_COLUMN.match(column) for column in columns):
                raise self.error(section, key, value, f"{part.strip()!r} is not a column name or a+b")
            if len(set(columns)) != len(columns):
                raise self.error(section, key, value, f"{part.strip()!r} names a column twice")
            if set(columns) & exclude:
                raise self.error(section, key, value, f"{part.strip()!r} groups by the date or target column")
            if columns in groupings:
                raise self.error(section, key, value, f"{part.strip()!r} is listed twice")
            groupings.append(columns)
        return tuple(groupings)

    def source_prefix(self) -> str:
        section, key = "path", "source_path"
        value = self.text(section, key)
        prefix = value.strip("/") + "/"
        try:
            validate_key(prefix, prefix=True)
        except LakeKeyError as error:
            raise self.error(
                section,
                key,
                value,
                f"not a lake prefix such as clickstream/source/ (the lake "
                f"itself is PIPELINE_LAKE_URL): {error}",
            ) from None
        for reserved in RESERVED_PREFIXES:
            if prefix.startswith(reserved) or reserved.startswith(prefix):
                raise self.error(
                    section, key, value, f"overlaps {reserved}, which the pipeline writes itself"
                )
        return prefix

    def work_dir(self) -> Path | None:
        value = self.text("path", "destination_path")
        return Path(value).expanduser() if value else None

    def mongo_host(self) -> str:
        section, key = "mongodb", "host"
        raw = self.raw(section, key)
        if "://" in raw:
            password = urlsplit(raw).password
            if password and not _VAR.fullmatch(password):
                raise self.error(
                    section,
                    key,
                    "<hidden>",
                    "holds a password: write it as ${VAR} and set VAR in the environment",
                )
        value = self.text(section, key)
        if not value:
            raise self.error(section, key, value, "empty: give host[:port] or a mongodb:// URL")
        return value
