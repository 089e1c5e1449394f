"""Pure transforms of the insights pipeline: read a monthly dump, set aside what cannot be
used, answer the seed's questions (countries, users, days, companies, tags) and rank.

No Dagster and no I/O here (bytes in, frames out), so every rule is tested on small frames.
"""

from __future__ import annotations

import functools
import io
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # imported where used: a run of another group does not pay for it
    import tldextract

REQUIRED_COLUMNS = ("timestamp", "email", "country")
TYPED_COLUMNS = REQUIRED_COLUMNS + ("tags",)
TAG_SEPARATOR = "|"
UNKNOWN_COMPANY = "Unknown company"
PERSONAL_EMAIL = "(personal email)"

# Free-mail providers, by the main label of the registrable domain, so every country variant
# counts (yahoo.fr, yahoo.co.uk, hotmail.co.uk, gmx.de, ...). Extend it here, with a test.
FREE_MAIL_PROVIDERS = frozenset({
    "gmail", "googlemail", "yahoo", "ymail", "rocketmail", "hotmail", "outlook", "live", "msn",
    "aol", "icloud", "me", "mac", "protonmail", "proton", "pm", "gmx", "yandex", "mail", "zoho",
    "tutanota", "fastmail", "qq", "163", "126", "naver", "web",
})

_EMAIL = re.compile(r"^[^@\s]+@([^@\s]+)$")
# A UTC offset (Z, +05:00, -0500, +05) after a time: those values are parsed apart from the others.
_OFFSET = r"[T ]\d{2}.*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_DOMAIN_LABEL = re.compile(r"^[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?$")


class DumpError(ValueError):
    """The dump cannot be loaded at all (unreadable, missing columns, no usable row)."""


def read_dump(data: bytes, fmt: str) -> pd.DataFrame:
    """The dump's rows with the typed columns' names in lower case; other columns as given.

    CSV cells are read as text with no NA guessing, so the country code ``NA`` (Namibia) stays
    a country. Raises :class:`DumpError` naming the missing columns when a needed one is absent.
    """
    try:
        if fmt == "csv":
            frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_filter=False,
                                encoding="utf-8-sig")
        elif fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            raise DumpError(f"unknown dump format {fmt!r}: expected csv or parquet")
    except DumpError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as error:  # pandas and pyarrow parse errors
        raise DumpError(f"not a readable {fmt} file: {error}") from error

    names = [str(c).strip() for c in frame.columns]
    renamed = [n.lower() if n.lower() in TYPED_COLUMNS else n for n in names]
    duplicated = sorted({n for n in renamed if renamed.count(n) > 1})
    if duplicated:
        raise DumpError(f"column(s) {duplicated} appear more than once")
    frame.columns = renamed
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DumpError(f"missing required column(s) {missing}; the file has {names}")
    if frame.empty:
        raise DumpError("the file has a header but no rows")
    return frame


def parse_timestamps(values: pd.Series) -> pd.Series:
    """UTC instants; NaT where a value is neither ISO 8601 nor ``YYYY-MM-DD HH:MM:SS``.

    Values without an offset are UTC, as the dumps promise, wherever they are in the file;
    typed Parquet timestamps pass through.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
    text = values.astype("string").str.strip()
    # pandas' ISO 8601 parser gives a value without an offset the offset of an earlier value that
    # had one, so the two kinds never go through one call.
    with_offset = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy(bool)
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if with_offset.any():
        parsed[with_offset] = pd.to_datetime(text[with_offset], utc=True, errors="coerce", format="ISO8601")
    if (~with_offset).any():
        parsed[~with_offset] = _as_utc(text[~with_offset])
    return parsed


def _as_utc(text: pd.Series) -> pd.Series:
    """Values the offset pattern calls offset-less, read as UTC; one value at a time if pandas
    found an offset in one after all (then it would carry it to the values after it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pandas' note about mixed offsets
        naive = pd.to_datetime(text, errors="coerce", format="ISO8601")
    if pd.api.types.is_datetime64_dtype(naive):
        return naive.dt.tz_localize("UTC")
    one = {v: pd.to_datetime(pd.Series([v]), utc=True, errors="coerce", format="ISO8601")[0]
           for v in text.dropna().unique()}
    return pd.to_datetime(text.map(one), utc=True)


@dataclass(frozen=True)
class PreparedMonth:
    events: pd.DataFrame  # timestamp (UTC), email, country, tags, extra (JSON text or None)
    rejected: pd.DataFrame  # rejected rows as read, plus _row (1-based row of the dump) and _reason
    extra_columns: tuple[str, ...] = ()  # the dump's columns kept in `extra`

    @property
    def total(self) -> int:
        return len(self.events) + len(self.rejected)


def prepare_events(frame: pd.DataFrame, year: int, month: int) -> PreparedMonth:
    """Split a dump into rows to load and rows to quarantine, with the reason for each.

    A row is rejected when its timestamp is missing, unparseable or outside the dump's month
    (a row of March in the February dump would otherwise be counted in February's days).
    """
    stamps = parse_timestamps(frame["timestamp"])
    start = pd.Timestamp(year=year, month=month, day=1, tz="UTC")
    end = start + pd.offsets.MonthBegin(1)
    blank = _blank(frame["timestamp"])
    reason = pd.Series(pd.NA, index=frame.index, dtype="string")
    reason[stamps.isna()] = "unparseable timestamp"
    reason[blank] = "missing timestamp"
    outside = stamps.notna() & ((stamps < start) | (stamps >= end))
    reason[outside] = f"timestamp outside {year:04d}-{month:02d}"
    bad = reason.notna().to_numpy()

    rejected = frame[bad].copy()
    rejected["_row"] = (frame.index.to_numpy() + 1)[bad]  # read_dump's frames have a RangeIndex
    rejected["_reason"] = reason[bad].astype(object)

    good = frame[~bad]
    extra_columns = [c for c in frame.columns if c not in TYPED_COLUMNS]
    events = pd.DataFrame({
        "timestamp": stamps[~bad],
        "email": _text(good["email"]),
        "country": _text(good["country"]),
        "tags": _text(good["tags"]) if "tags" in good.columns else None,
        "extra": _extra_json(good[extra_columns]) if extra_columns else None,
    }, index=good.index).reset_index(drop=True)
    return PreparedMonth(events, rejected.reset_index(drop=True), tuple(extra_columns))


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype("string").str.strip() == "").fillna(True)


def _text(values: pd.Series) -> pd.Series:
    """Values as read (as text), with empty cells as None: CSV cannot tell '' from missing."""
    text = values.astype(object).where(~_blank(values), None)
    return text.map(lambda v: v if v is None or isinstance(v, str) else str(v))


def _extra_json(extra: pd.DataFrame) -> pd.Series:
    """One JSON object per row holding the dump's other columns, typed as the file typed them."""
    lines = extra.to_json(orient="records", lines=True, date_format="iso").splitlines()
    return pd.Series(lines, index=extra.index, dtype=object)


@functools.lru_cache(maxsize=1)
def _public_suffixes() -> tldextract.TLDExtract:
    # The public suffix list bundled with the installed tldextract: no network, no disk cache,
    # so the same email gives the same company on every machine until the library is upgraded.
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def company_from_email(email: object) -> str:
    """The main label of the email's registrable domain: ``jane@mail.acme.co.uk`` -> ``acme``.

    Free-mail providers give ``(personal email)``; empty, malformed or non-public domains
    (``bob@``, ``a@b@c``, ``x@localhost``, ``x@10.0.0.1``) give ``Unknown company``.
    """
    if not isinstance(email, str):
        return UNKNOWN_COMPANY
    match = _EMAIL.match(email.strip())
    if not match:
        return UNKNOWN_COMPANY
    domain = match.group(1).lower().rstrip(".")
    if not all(_DOMAIN_LABEL.match(label) for label in domain.split(".")):
        return UNKNOWN_COMPANY
    parts = _public_suffixes()(domain)
    if not parts.suffix or not parts.domain:
        return UNKNOWN_COMPANY
    return PERSONAL_EMAIL if parts.domain in FREE_MAIL_PROVIDERS else parts.domain


def companies(emails: pd.Series) -> pd.Series:
    """:func:`company_from_email` for each email, computed once per distinct email."""
    distinct = {email: company_from_email(email) for email in emails.dropna().unique()}
    return emails.map(distinct).fillna(UNKNOWN_COMPANY)


def split_tags(tags: pd.Series) -> pd.Series:
    """One entry per (event, tag): ``|``-separated, trimmed, empty parts dropped, no repeats."""
    parts = tags.dropna().astype(str).str.split(TAG_SEPARATOR, regex=False).explode().str.strip()
    parts = parts[parts.notna() & (parts != "")]
    pairs = parts.rename("tag").rename_axis("_event").reset_index().drop_duplicates()
    return pairs["tag"].reset_index(drop=True)


def count_values(values: pd.Series, column: str) -> pd.DataFrame:
    """Events per value as ``(column, _count)``, most first, ties by value; missing values skipped."""
    counts = values.dropna().value_counts(sort=False)
    frame = pd.DataFrame({column: counts.index.to_numpy(dtype=object),
                          "_count": counts.to_numpy(dtype="int64")})
    return _ordered(frame, column).reset_index(drop=True)


def aggregate_month(events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The seed's per-month count tables, keyed by table name, each ``(value, _count)``:
    ``country (country)``, ``userbase (email)``, ``dateevent (_date)``, ``companies (company)``,
    ``tags (tag)``.

    Countries are kept as given (trimmed); users are emails trimmed and lower-cased; the day is
    the UTC calendar day of the timestamp; every event has a company, Unknown ones included.
    """
    emails = events["email"].astype(object).where(events["email"].notna(), None)
    users = emails.map(lambda e: e.strip().lower() if isinstance(e, str) else None)
    return {
        "country": count_values(events["country"].map(_stripped), "country"),
        "userbase": count_values(users, "email"),
        "dateevent": count_values(events["timestamp"].dt.tz_convert("UTC").dt.date, "_date"),
        "companies": count_values(companies(emails), "company"),
        "tags": count_values(split_tags(events["tags"]), "tag"),
    }


def _stripped(value: object) -> str | None:
    return value.strip() if isinstance(value, str) else None


def top_n(counts: pd.DataFrame, column: str, n: int) -> pd.DataFrame:
    """The ``n`` values with most events as ``(column, _count, rank)``; ties go to the smaller value."""
    top = _ordered(counts[[column, "_count"]], column).head(n).reset_index(drop=True)
    top["_count"] = top["_count"].astype("int64")
    top["rank"] = pd.Series(range(1, len(top) + 1), dtype="int64")
    return top


def _ordered(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    # Stable sort by value first, then by count: equal counts keep the value order.
    return frame.sort_values(column, kind="stable").sort_values("_count", ascending=False, kind="stable")
