"""The data-quality audit as pure functions over frames: each returns a verdict and its figures.

File-level rules (:func:`column_problems`, :func:`invalid_utf8`) judge the raw text of one file,
before typing, because typing would hide them. Table-level rules judge the typed rows of a whole
load, together with what the warehouse already holds (passed in as frames by the caller), so
these functions never touch storage and are tested on hand-made frames.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import schema

EXAMPLES = 5
_SURROGATE = re.compile("[\udc80-\udcff]")  # what a non-UTF-8 byte decodes to with surrogateescape


@dataclass(frozen=True)
class Finding:
    passed: bool
    figures: dict[str, Any] = field(default_factory=dict)


def column_problems(raw: pd.DataFrame, table: str) -> list[str]:
    """Why a file's text frame breaks the contract: missing columns, values that are not of
    their column's type or outside its allowed values. Empty values are the null rules' business."""
    missing = [name for name in schema.columns(table) if name not in raw.columns]
    if missing:
        return [
            f"missing required column(s) {', '.join(missing)}; "
            f"the file has {', '.join(map(str, raw.columns))}"
        ]
    problems = []
    for spec in schema.INPUT[table]:
        values = raw[spec.name].astype(str)
        present = values != ""
        if spec.kind == "text":
            if spec.allowed:
                bad = present & ~values.isin(spec.allowed)
                problems += _describe(spec.name, values, bad, f"one of {', '.join(spec.allowed)}")
            continue
        numbers = pd.to_numeric(values.where(present), errors="coerce").astype("float64")
        not_number = present & ~np.isfinite(numbers)
        if spec.kind == "int":
            not_number |= present & np.isfinite(numbers) & (numbers % 1 != 0)
        kind = "a whole number" if spec.kind == "int" else "a number"
        problems += _describe(spec.name, values, not_number, kind)
        if spec.low is None and spec.high is None:
            continue
        low = -np.inf if spec.low is None else spec.low
        high = np.inf if spec.high is None else spec.high
        outside = present & ~not_number & ((numbers < low) | (numbers > high))
        bounds = f"at least {low:g}" if spec.high is None else f"between {low:g} and {high:g}"
        problems += _describe(spec.name, values, outside, bounds)
    return problems


def _describe(column: str, values: pd.Series, bad: pd.Series, expected: str) -> list[str]:
    if not bad.any():
        return []
    rows = bad.index[bad.to_numpy()][:EXAMPLES]  # labels: a file's rows count from 0 across chunks
    examples = ", ".join(f"row {i + 1}: {values.loc[i][:40]!r}" for i in rows)
    return [f"{column}: {int(bad.sum())} value(s) are not {expected} ({examples})"]


def invalid_utf8(raw: pd.DataFrame, table: str) -> dict[str, int]:
    """Values per text column holding bytes that are not UTF-8."""
    return {
        name: int(raw[name].astype(str).str.contains(_SURROGATE).sum()) if name in raw.columns else 0
        for name in schema.text_columns(table)
    }


def null_thresholds(
    frame: pd.DataFrame, table: str, max_fraction: dict[tuple[str, str], float] = schema.MAX_NULL_FRACTION
) -> Finding:
    """Empty values per column within the documented share; the first-order-only columns
    (``days_since_prior_order``) may be empty on order_number = 1 and nowhere else."""
    rows = len(frame)
    nulls = {name: int(frame[name].isna().sum()) for name in schema.columns(table)}
    first_only = schema.FIRST_ORDER_ONLY_NULLS.get(table)
    over = sorted(
        name
        for name, count in nulls.items()
        if name != first_only and rows and count / rows > max_fraction.get((table, name), 0.0)
    )
    figures: dict[str, Any] = {"rows": rows, "nulls": nulls, "columns_over_threshold": over}
    late = 0
    if first_only:
        late = int((frame[first_only].isna() & frame["order_number"].gt(1).fillna(False)).sum())
        figures[f"{first_only}_empty_after_first_order"] = late
    return Finding(not over and late == 0, figures)


def row_count(
    rows: int, min_rows: int, previous_rows: int | None = None, band: tuple[float, float] | None = None
) -> Finding:
    """At least ``min_rows``; and, when there is a previous day with rows, today / previous
    within ``band`` (inclusive)."""
    figures: dict[str, Any] = {"rows": rows, "min_rows": min_rows}
    passed = rows >= min_rows
    if band is not None:
        figures.update(previous_day_rows=previous_rows, band=list(band))
        if previous_rows:
            ratio = rows / previous_rows
            figures["day_over_day_ratio"] = round(ratio, 4)
            passed = passed and band[0] <= ratio <= band[1]
    return Finding(passed, figures)


def duplicate_keys(frame: pd.DataFrame, key: Iterable[str], elsewhere: pd.DataFrame | None = None) -> Finding:
    """No key twice in ``frame``, and none already held in ``elsewhere`` (e.g. other days)."""
    key = list(key)
    keys = pd.MultiIndex.from_frame(frame[key].astype("Int64"))
    twice = keys.duplicated(keep=False)
    clash = np.zeros(len(keys), dtype=bool)
    if elsewhere is not None and len(elsewhere):
        clash = keys.isin(pd.MultiIndex.from_frame(elsewhere[key].astype("Int64")))
    offending = keys[twice | clash].unique()[:EXAMPLES]
    figures = {
        "key": key,
        "rows": len(frame),
        "duplicate_rows": int(twice.sum()),
        "rows_clashing_with_other_days": int(clash.sum()),
        "examples": [[_plain(v) for v in k] for k in offending],
    }
    return Finding(not twice.any() and not clash.any(), figures)


def orphans(child: pd.DataFrame, column: str, parent_values: Iterable) -> Finding:
    """Every non-empty ``child[column]`` names a row of the parent table."""
    values = child[column]
    missing = values.notna() & ~values.isin(pd.Index(parent_values))
    distinct = pd.Series(values[missing].unique())
    figures = {
        "rows": len(child),
        "orphan_rows": int(missing.sum()),
        "orphan_values": len(distinct),
        "examples": [_plain(v) for v in distinct.sort_values().head(EXAMPLES)],
    }
    return Finding(not missing.any(), figures)


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones, so figures are JSON metadata."""
    return value.item() if hasattr(value, "item") else value
