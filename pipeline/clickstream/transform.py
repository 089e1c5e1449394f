"""Pure transforms of the clickstream pipeline: raw click rows -> daily clicks -> the report.

Pandas only (no Dagster, no I/O), so each step is tested alone against hand-computed frames.
Dates are UTC calendar days held as midnight ``datetime64[ns]`` values.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd

# The Kaggle sample's columns and the names the reports use (the seed's renames).
RENAMES = {
    "user": "user_id",
    "time_stamp": "date",
    "adgroup_id": "product_category",
    "pid": "product_name",
    "clk": "click_event",
}
DROPPED = ("nonclk", "index")  # the seed's mock data also carries pandas' "index" column
EPOCH_SECONDS = ("time_stamp",)  # raw columns known to hold epoch seconds
# pandas writes datetimes to JSON as epoch milliseconds; epoch seconds stay below this until 5138.
_MILLISECONDS_FROM = 1e11

_WHOLE_FLOAT = re.compile(r"([+-]?\d+)\.0+")

DAILY_COLUMNS = ("grouping", "key", "date", "clicks", "rows")
REPORT_COLUMNS = ("grouping", "key", "date", "daily_clicks", "rolling_clicks", "start_date")


class FileError(ValueError):
    """A whole file cannot be used (its message is the quarantine reason)."""


class MissingColumns(FileError):
    def __init__(self, missing: Sequence[str], found: Sequence[str]):
        self.missing, self.found = tuple(missing), tuple(found)
        super().__init__(
            f"missing column(s) {', '.join(self.missing)} (the file has: {', '.join(self.found)})"
        )


@dataclass(frozen=True)
class Normalized:
    rows: pd.DataFrame  # date column, target column, group columns (text)
    rejected: pd.DataFrame  # the offending input rows as given, plus "reason"


def rename_raw(frame: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """Apply the seed's renames; return the frame and the epoch unit of the renamed date, if known."""
    clashes = [
        f"{raw} and {new}" for raw, new in RENAMES.items() if raw in frame.columns and new in frame.columns
    ]
    if clashes:
        raise FileError(f"both the raw and the renamed column are present: {', '.join(clashes)}")
    unit = "s" if any(column in frame.columns for column in EPOCH_SECONDS) else None
    renamed = frame.drop(columns=[c for c in DROPPED if c in frame.columns]).rename(columns=RENAMES)
    return renamed, unit


def normalize(
    frame: pd.DataFrame, *, date_column: str, target_column: str, group_columns: Sequence[str]
) -> Normalized:
    """Typed rows ready to aggregate, and the rows that cannot be used, each with its reason.

    Raises :class:`MissingColumns` when a configured column is absent from the file.
    """
    renamed, unit = rename_raw(frame)
    needed = [date_column, target_column, *group_columns]
    missing = [column for column in needed if column not in renamed.columns]
    if missing:
        raise MissingColumns(missing, list(renamed.columns))

    day = to_day(renamed[date_column], epoch_unit=unit if date_column == "date" else None)
    clicks = to_count(renamed[target_column])
    keys = {column: key_text(renamed[column]) for column in group_columns}

    problems = [
        (day.isna(), f"{date_column}: not a date or epoch time"),
        (clicks.isna(), f"{target_column}: not a whole number >= 0"),
    ]
    problems += [(values.isna(), f"{column}: missing") for column, values in keys.items()]
    reason = pd.Series("", index=renamed.index, dtype=object)
    for mask, text in problems:
        reason = reason.where(~mask, reason + "; " + text)
    bad = reason != ""

    rows = pd.DataFrame({date_column: day, target_column: clicks, **keys})[~bad]
    rows = rows.astype({target_column: "int64"}).reset_index(drop=True)
    rejected = frame[bad.to_numpy()].assign(reason=reason[bad].str.removeprefix("; ").to_numpy())
    return Normalized(rows, rejected.reset_index(drop=True))


def to_day(values: pd.Series, epoch_unit: str | None = None) -> pd.Series:
    """UTC calendar day of each value: ISO text, a datetime, or epoch seconds/milliseconds; else NaT.

    Naive times are taken as UTC. Without ``epoch_unit`` a number above 1e11 is milliseconds
    (pandas' JSON default), otherwise seconds.
    """
    values = values.astype(object).where(values.notna(), None)
    numbers = pd.to_numeric(values.map(_number_or_none), errors="coerce").astype("float64")
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    is_number = numbers.notna() & (numbers >= 0) & (numbers < 1e15)
    if epoch_unit:
        units = {epoch_unit: is_number}
    else:
        units = {
            "ms": is_number & (numbers >= _MILLISECONDS_FROM),
            "s": is_number & (numbers < _MILLISECONDS_FROM),
        }
    for unit, mask in units.items():
        if mask.any():
            out[mask] = pd.to_datetime(numbers[mask], unit=unit, utc=True, errors="coerce")
    text = values.notna() & numbers.isna()
    if text.any():
        out[text] = pd.to_datetime(
            values[text].map(str).str.strip(), utc=True, errors="coerce", format="ISO8601"
        )
    return out.dt.tz_convert(None).dt.normalize()


def _number_or_none(value):
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Real):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def to_count(values: pd.Series) -> pd.Series:
    """Whole numbers >= 0 as floats (NaN where not); booleans count as 1 and 0."""

    def number(value):
        if isinstance(value, (bool, np.bool_)):
            return float(value)
        return _number_or_none(value)

    numbers = pd.to_numeric(values.astype(object).map(number), errors="coerce").astype("float64")
    valid = numbers.notna() & (numbers >= 0) & (numbers % 1 == 0)
    return numbers.where(valid)


def key_text(values: pd.Series) -> pd.Series:
    """Grouping values as text, the same for every file format (7, 7.0, "7" and "7.0" -> "7", while
    "007" stays "007"); None if missing."""

    def text(value):
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
            return None
        if isinstance(value, (bool, np.bool_)):
            return "true" if value else "false"
        if isinstance(value, Integral):
            return str(int(value))
        if isinstance(value, Real):
            number = float(value)
            return str(int(number)) if number.is_integer() else repr(number)
        if isinstance(value, (dt.datetime, dt.date)):
            return value.isoformat()
        value = str(value).strip()
        whole = _WHOLE_FLOAT.fullmatch(value)  # "7.0": how pandas writes a whole number next to a NaN
        return (whole.group(1) if whole else value) or None

    return values.astype(object).map(text).astype(object)


def grouping_keys(rows: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """One text key per row: the value itself, or a JSON array for a joint ``a+b`` grouping.

    JSON keeps joint keys unambiguous whatever the values contain (a "+" or "|" in a name).
    """
    if len(columns) == 1:
        return rows[columns[0]]
    tuples = zip(*(rows[column] for column in columns), strict=True)
    return pd.Series(
        [json.dumps(list(values), ensure_ascii=False) for values in tuples], index=rows.index, dtype=object
    )


def daily_clicks(
    rows: pd.DataFrame, groupings: Sequence[Sequence[str]], *, date_column: str, target_column: str
) -> pd.DataFrame:
    """Clicks per (grouping, key, day); ``rows`` counts source rows, so a key with rows but no
    clicks that day is kept with 0 clicks (it was seen)."""
    parts = []
    for columns in groupings:
        frame = pd.DataFrame(
            {"key": grouping_keys(rows, columns), "date": rows[date_column], "clicks": rows[target_column]}
        )
        summed = frame.groupby(["key", "date"], as_index=False, sort=True).agg(
            clicks=("clicks", "sum"), rows=("clicks", "size")
        )
        summed.insert(0, "grouping", "+".join(columns))
        parts.append(summed)
    if not parts or all(part.empty for part in parts):
        return empty_daily()
    daily = pd.concat([part for part in parts if not part.empty], ignore_index=True)
    return daily.astype({"clicks": "int64", "rows": "int64"})[list(DAILY_COLUMNS)]


def empty_daily() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "grouping": pd.Series(dtype=object),
            "key": pd.Series(dtype=object),
            "date": pd.Series(dtype="datetime64[ns]"),
            "clicks": pd.Series(dtype="int64"),
            "rows": pd.Series(dtype="int64"),
        }
    )


def report(daily: pd.DataFrame, days: Iterable, period: int) -> pd.DataFrame:
    """The report rows of ``days``: for each key seen in the ``period`` days ending at D, its
    clicks on D (0 if none), the sum over those days, and ``start_date`` = D - period.

    ``daily`` must hold every day of ``[min(days) - period + 1, max(days)]`` that has rows; days
    missing from it count as zero. A key appears on D only if it had rows in that window: a
    day's report is a function of its window alone, which is what lets it be a partition.
    """
    days = pd.DatetimeIndex(sorted(set(pd.to_datetime(list(days))))).normalize()
    if daily.empty or days.empty:
        return empty_report()
    span = pd.date_range(days[0] - pd.Timedelta(days=period - 1), days[-1], freq="D")
    in_span = daily[daily["date"].between(span[0], span[-1])]
    if in_span.empty:
        return empty_report()
    wide = in_span.pivot_table(index="date", columns=["grouping", "key"], values="clicks", aggfunc="sum")
    wide = wide.reindex(span)
    seen = wide.notna().astype("int64").rolling(period, min_periods=1).sum().loc[days] > 0
    clicks = wide.fillna(0)
    rolling = clicks.rolling(period, min_periods=1).sum().loc[days]
    stacked = pd.DataFrame(
        {
            "daily_clicks": clicks.loc[days].stack(["grouping", "key"], future_stack=True),
            "rolling_clicks": rolling.stack(["grouping", "key"], future_stack=True),
            "seen": seen.stack(["grouping", "key"], future_stack=True),
        }
    )
    out = stacked[stacked["seen"]].drop(columns="seen").rename_axis(["date", "grouping", "key"]).reset_index()
    out = out.astype({"daily_clicks": "int64", "rolling_clicks": "int64"})
    out["start_date"] = out["date"] - pd.Timedelta(days=period)
    return out.sort_values(["grouping", "key", "date"], ignore_index=True)[list(REPORT_COLUMNS)]


def empty_report() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "grouping": pd.Series(dtype=object),
            "key": pd.Series(dtype=object),
            "date": pd.Series(dtype="datetime64[ns]"),
            "daily_clicks": pd.Series(dtype="int64"),
            "rolling_clicks": pd.Series(dtype="int64"),
            "start_date": pd.Series(dtype="datetime64[ns]"),
        }
    )


def marker_days(frame: pd.DataFrame) -> list[dt.date] | None:
    """The days a metadata marker announces (its ``date`` column), or None if it names none."""
    if "date" not in frame.columns or frame.empty:
        return None
    days = to_day(frame["date"])
    if days.isna().any():
        return None
    return sorted({day.date() for day in days})
