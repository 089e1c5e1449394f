"""Click files as raw frames: JSON (records, lines or pandas' column orientation), CSV and Excel.

Every reader returns the cells as Python objects (no type guessing): CSV would turn "007" into 7
and JSON with a null would turn 7 into 7.0, so the same rows would give different grouping keys
per format. Types are decided once, in :func:`pipeline.clickstream.transform.normalize`.
Pandas only, no Dagster.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pandas as pd

SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".xlsx")


class UnreadableFile(ValueError):
    """A file that cannot be read as a table at all; the message says why (for the quarantine)."""


def read_table(data: bytes, name: str) -> pd.DataFrame:
    """Parse ``data`` according to the extension of ``name``; raise :class:`UnreadableFile`."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in SUFFIXES:
        raise UnreadableFile(
            f"unsupported file type {suffix or '(none)'!r}: expected one of {', '.join(SUFFIXES)}"
        )
    if not data.strip():
        raise UnreadableFile("the file is empty")
    try:
        if suffix == ".csv":
            frame = _read_csv(data)
        elif suffix == ".xlsx":
            frame = _read_excel(data)
        else:
            frame = _read_json(data)
    except UnreadableFile:
        raise
    except Exception as error:  # parsers raise many types; all mean "not this format"
        raise UnreadableFile(
            f"not a valid {suffix[1:].upper()} file: {type(error).__name__}: {error}"
        ) from None
    frame.columns = [str(column).strip() for column in frame.columns]
    if frame.columns.duplicated().any():
        raise UnreadableFile(
            f"duplicate column names: {sorted(set(frame.columns[frame.columns.duplicated()]))}"
        )
    return frame.reset_index(drop=True)


def _read_csv(data: bytes) -> pd.DataFrame:
    text = data.decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(text)), [])
    if len(set(header)) != len(header):  # pandas would silently rename the second one "x.1"
        raise UnreadableFile(f"duplicate column names: {sorted({c for c in header if header.count(c) > 1})}")
    # Text only; an empty cell is the only missing value ("NA" may be a product name).
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])


def _read_excel(data: bytes) -> pd.DataFrame:
    return pd.read_excel(io.BytesIO(data), engine="openpyxl", dtype=object)


def _read_json(data: bytes) -> pd.DataFrame:
    text = data.decode("utf-8-sig")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        if error.msg != "Extra data":
            raise UnreadableFile(f"not valid JSON: {error}") from None
        return _records([json.loads(line) for line in text.splitlines() if line.strip()])  # JSON lines
    if isinstance(document, list):
        return _records(document)
    if isinstance(document, dict):
        if {"columns", "data"} <= set(document):  # pandas orient="split"
            return pd.DataFrame(document["data"], columns=document["columns"], dtype=object)
        if document and all(isinstance(value, dict) for value in document.values()):
            return _columns(document)
        return _records([document])  # a single-line JSON-lines file
    raise UnreadableFile(f"JSON holds a {type(document).__name__}, not a table")


def _records(rows: list[Any]) -> pd.DataFrame:
    if not all(isinstance(row, dict) for row in rows):
        raise UnreadableFile("JSON records must be objects ({...})")
    columns = dict.fromkeys(key for row in rows for key in row)
    return pd.DataFrame({column: [row.get(column) for row in rows] for column in columns}, dtype=object)


def _columns(document: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """pandas' default ``to_json`` layout: ``{column: {row label: value}}``."""
    labels = list(dict.fromkeys(label for column in document.values() for label in column))
    return pd.DataFrame(
        {column: [values.get(label) for label in labels] for column, values in document.items()}, dtype=object
    )
