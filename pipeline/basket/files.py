"""Where basket files live in the lake, how they are read, and how bad ones are set aside.

``basket/reference/<table>.csv``           pushed reference tables (the public file names)
``basket/stream/<table>/<YYYY-MM-DD>/...``  streamed orders and order products, CSV or JSON lines
``basket/features/<name>/part-0.parquet``  feature tables
``basket/final/<YYYY-MM-DD>/basket_features.csv``  the joined features
``quarantine/basket/...``                  rejected files, each beside a ``.reason.txt``
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from pipeline.resources.lake import Lake, LakeObject, fingerprint  # noqa: F401 - files.fingerprint

from . import audit, schema, transform

STREAM_PREFIX = "basket/stream/"
REFERENCE_PREFIX = "basket/reference/"
QUARANTINE_PREFIX = "quarantine/basket/"
FORMATS = tuple(f for ext in transform.FORMATS for f in (ext, ext + ".gz"))


class KeyLayoutError(ValueError):
    """A key under the stream prefix that does not say which table and day it holds."""


def parse_stream_key(key: str) -> tuple[str, str]:
    """``basket/stream/<table>/<day>/<file>`` -> (table, day), or a :class:`KeyLayoutError` saying why not."""
    parts = key[len(STREAM_PREFIX) :].split("/") if key.startswith(STREAM_PREFIX) else []
    if len(parts) != 3:
        raise KeyLayoutError(f"{key}: expected {STREAM_PREFIX}<table>/<YYYY-MM-DD>/<file>")
    table, day, name = parts
    if table not in schema.STREAM_TABLES:
        raise KeyLayoutError(
            f"{key}: unknown table {table!r}; expected one of {', '.join(schema.STREAM_TABLES)}"
        )
    try:
        if dt.date.fromisoformat(day).isoformat() != day:
            raise ValueError
    except ValueError:
        raise KeyLayoutError(f"{key}: {day!r} is not a day written as YYYY-MM-DD") from None
    if not name.endswith(FORMATS):
        raise KeyLayoutError(f"{key}: unsupported file type; expected one of {', '.join(FORMATS)}")
    return table, day


def stream_prefix(table: str, day: str) -> str:
    return f"{STREAM_PREFIX}{table}/{day}/"


def reference_key(table: str) -> str:
    return f"{REFERENCE_PREFIX}{table}.csv"


def feature_key(name: str) -> str:
    return f"basket/features/{name}/part-0.parquet"


def final_key(day: str) -> str:
    return f"basket/final/{day}/basket_features.csv"


def quarantine(lake: Lake, key: str, reasons: Iterable[str]) -> str:
    """Move ``key`` under ``quarantine/basket/`` with a reason file beside it; return the new key."""
    target = QUARANTINE_PREFIX + key.removeprefix("basket/")
    text = "".join(f"{reason}\n" for reason in reasons)
    lake.write_text(f"{target}.reason.txt", f"{key} was set aside:\n{text}")
    lake.move(key, target)
    return target


@dataclass(frozen=True)
class Staged:
    """One table's files after the file-level audit: typed rows of the good files, and what was set aside."""

    table: str
    frame: pd.DataFrame
    files: int
    bad_format: dict[str, list[str]] = field(default_factory=dict)  # quarantined key -> reasons
    bad_utf8: dict[str, list[str]] = field(default_factory=dict)
    invalid_utf8: dict[str, int] = field(default_factory=dict)  # text column -> values, all files


def stage(lake: Lake, table: str, objects: Iterable[LakeObject]) -> Staged:
    """Read, audit file by file, quarantine failing files, and type the rest."""
    frames, bad_format, bad_utf8 = [], {}, {}
    invalid: Counter[str] = Counter({name: 0 for name in schema.text_columns(table)})
    objects = list(objects)
    for obj in objects:
        problems, counts, typed = [], Counter(), []
        try:
            for raw in transform.iter_records(lake.read_bytes(obj.key), obj.name):
                problems += audit.column_problems(raw, table)
                counts.update(audit.invalid_utf8(raw, table))
                if not problems and not counts.total():
                    typed.append(transform.typed(raw, table))
        except transform.InputError as error:
            problems.append(str(error))
        invalid.update(counts)
        utf8 = [
            f"{name}: {n} value(s) hold bytes that are not valid UTF-8" for name, n in counts.items() if n
        ]
        if problems or utf8:
            target = quarantine(lake, obj.key, problems + utf8)
            if problems:
                bad_format[target] = problems
            if utf8:
                bad_utf8[target] = utf8
        else:
            frames += typed
    frame = pd.concat(frames, ignore_index=True) if frames else transform.empty(table)
    return Staged(table, frame, len(objects), bad_format, bad_utf8, dict(invalid))
