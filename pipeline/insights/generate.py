"""Sample monthly dumps for demos and tests: realistic enough to exercise every rule.

A month of events from a few hundred users at companies with simple and multi-level public
suffixes (``acme.co.uk``, ``umbrella.com.au``, ``soylent.co.jp``), sub-domains
(``mail.acme.co.uk``), free-mail users, some empty or malformed emails, countries as names and
ISO codes (``NA`` is Namibia), ``|``-separated tags, extra columns, and a few rows with bad or
out-of-month timestamps that the pipeline must quarantine.
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd

from pipeline.insights.partitions import FORMATS, Month
from pipeline.resources.lake import Lake

COMPANY_DOMAINS = ("acme.co.uk", "mail.acme.co.uk", "globex.com", "initech.io", "umbrella.com.au",
                   "hooli.com", "soylent.co.jp", "eu.wayne-enterprises.com", "stark.de")
FREE_MAIL_DOMAINS = ("gmail.com", "yahoo.fr", "hotmail.co.uk", "outlook.com", "icloud.com", "gmx.de")
MALFORMED_EMAILS = ("no-at-sign.example.com", "bob@", "@acme.co.uk", "a@b@globex.com", "carol@localhost",
                    "dave at hooli.com", "eve@10.0.0.1")
BAD_TIMESTAMPS = ("not a date", "2024-02-30 25:61:00", "31/01/2024 10:00", "yesterday", "")
COUNTRIES = ("France", "FR", "United Kingdom", "GB", "Germany", "DE", "United States", "US", "Japan", "JP",
             "Australia", "AU", "Namibia", "NA", "Brazil")
TAGS = ("promo", "newsletter", "mobile", "desktop", "checkout", "search", "returning", "vip")
EVENT_TYPES = ("page_view", "add_to_cart", "purchase", "signup")
FIRST_NAMES = ("ann", "ben", "chloe", "dan", "emma", "farid", "gina", "hugo", "ines", "jon", "kim", "leo",
               "mia", "nils", "olga", "paul", "rita", "sam", "tara", "yuki")


def previous_month(today: dt.date) -> Month:
    last_day = today.replace(day=1) - dt.timedelta(days=1)
    return Month(last_day.year, last_day.month)


def sample_events(month: Month, rows: int = 3000, seed: int = 0) -> pd.DataFrame:
    """One month of events as the dumps hold them: every column text, as in a CSV export."""
    rng = np.random.default_rng(seed)
    users = _users(rng, 400)
    # A few very active users and a long tail, as in real traffic.
    weights = 1.0 / np.arange(1, len(users) + 1) ** 0.9
    who = users.iloc[rng.choice(len(users), size=rows, p=weights / weights.sum())].reset_index(drop=True)

    start = pd.Timestamp(year=month.year, month=month.month, day=1, tz="UTC")
    seconds = int((start + pd.offsets.MonthBegin(1) - start).total_seconds())
    stamps = start + pd.to_timedelta(np.sort(rng.integers(0, seconds, size=rows)), unit="s")
    style = rng.random(rows)
    timestamp = np.where(
        style < 0.6, stamps.strftime("%Y-%m-%d %H:%M:%S"),
        np.where(style < 0.9, stamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 stamps.tz_convert("Europe/Paris").map(lambda t: t.isoformat())))

    email = who["email"].to_numpy(dtype=object).copy()
    damage = rng.random(rows)
    email[damage < 0.02] = ""
    malformed = (damage >= 0.02) & (damage < 0.03)
    email[malformed] = rng.choice(MALFORMED_EMAILS, size=int(malformed.sum()))
    broken = rng.random(rows)
    bad = broken < 0.005
    timestamp[bad] = rng.choice(BAD_TIMESTAMPS, size=int(bad.sum()))
    late = (broken >= 0.005) & (broken < 0.007)  # rows of the next month in this month's dump
    next_month = start + pd.offsets.MonthBegin(1)
    timestamp[late] = (next_month + pd.Timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")

    events = rng.choice(EVENT_TYPES, size=rows, p=(0.7, 0.15, 0.1, 0.05))
    amount = np.where(events == "purchase", np.round(rng.gamma(2.0, 30.0, size=rows), 2).astype(str), "")
    return pd.DataFrame({
        "timestamp": timestamp,
        "email": email,
        "country": who["country"].to_numpy(),
        "tags": [_tags(rng) for _ in range(rows)],
        "event": events,
        "session_id": [f"{x:012x}" for x in rng.integers(0, 2**48, size=rows)],
        "amount": amount,
    })


def _users(rng: np.random.Generator, count: int) -> pd.DataFrame:
    domains = np.where(rng.random(count) < 0.7, rng.choice(COMPANY_DOMAINS, size=count),
                       rng.choice(FREE_MAIL_DOMAINS, size=count))
    names = rng.choice(FIRST_NAMES, size=count)
    emails = [f"{name}.{i}@{domain}" for i, (name, domain) in enumerate(zip(names, domains))]
    # Some users type their address in capitals: still one user.
    emails = [e.upper() if i % 37 == 0 else e for i, e in enumerate(emails)]
    return pd.DataFrame({"email": emails, "country": rng.choice(COUNTRIES, size=count)})


def _tags(rng: np.random.Generator) -> str:
    if rng.random() < 0.3:
        return ""
    chosen = rng.choice(TAGS, size=int(rng.integers(1, 4)), replace=False)
    return "|".join(chosen) if rng.random() < 0.9 else " | ".join(chosen)  # spaces around | are trimmed


def dump_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return frame.to_csv(index=False).encode("utf-8")
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    raise ValueError(f"dump format {fmt!r} is not one of {FORMATS}")


def generate(lake: Lake, *, month: str | None = None, rows: int = 3000, seed: int = 0, fmt: str = "csv",
             today: dt.date | None = None) -> list[str]:
    """Write one month's sample dump to ``insights/events/YYYY/MM/events.<fmt>``; returns its key.

    ``month`` is ``YYYY-MM`` (default: the month before ``today``, the one the schedule loads
    next). The same seed gives the same file. A dump of the other format for that month is
    removed, since a month must have exactly one dump.
    """
    if month is None:
        target = previous_month(today or dt.datetime.now(dt.timezone.utc).date())
    else:
        target = Month.from_partition_key(f"{month}-01")
    key = target.dump_key(fmt)
    for other in FORMATS:
        if other != fmt:
            lake.delete(target.dump_key(other))
    lake.write_bytes(key, dump_bytes(sample_events(target, rows, seed), fmt))
    return [key]
