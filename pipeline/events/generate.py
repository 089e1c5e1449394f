"""Synthetic event files in the seed's schema, shaped like a real store's traffic.

The platform is tested, demonstrated and benchmarked on these files, so what matters is the
shape the transforms must cope with, not the values. The default shape (``shape="realistic"``,
``pipeline/events/shape.py``) follows the public data set's October 2019 month: a catalogue of
200,000 products with Zipf-like popularity, ~3,400 brands and ~130 category codes, 30 % of events
without category_code and 15 % without brand, 96 % views, and sessions of ~4.6 events over a few
minutes whose events are spread over the servers; sessions view the same product again within a
minute, so view dedupe has work. ``shape="simple"`` is the project's first, easier shape. Every
server writes one file per minute whose events all fall inside that minute.

Every random draw of minute ``m`` comes from a generator seeded by ``(seed, m)`` and every
session's attributes from ``(seed, session block)``, so a configuration always yields the same
bytes however the work is chunked. Values are drawn with numpy and rendered with Arrow's CSV
writer: Python never loops over events.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.events.catalog import Catalog, build_catalog, distinct_ids
from pipeline.events.shape import EVENT_TYPES, SHAPES, Shape

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
_VIEW = EVENT_TYPES.index("view")
_SESSION_BLOCK = 1024
_CHUNK_EVENTS = 250_000  # rendering batch: bounds memory, does not change the output
GZIP_LEVEL = 3  # twice as fast as the default 6 for 10% larger files; mtime=0 keeps bytes reproducible

# Streams of independent random numbers, so that adding a draw to one never shifts another.
_CATALOG_STREAM, _SESSION_STREAM, _MINUTE_STREAM, _USER_STREAM = 1, 2, 3, 4


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. ``events_per_minute`` is the exact total over all servers; ``products``
    and ``users`` default to the shape's (realistic: 200,000 products, users in proportion to the
    events as in the public data set; simple: 5,000 and 20,000)."""

    start: dt.datetime  # UTC and minute aligned; a naive value is read as UTC
    minutes: int = 60
    events_per_minute: int = 2000
    servers: int = 4
    products: int | None = None
    users: int | None = None
    seed: int = 0
    gzip: bool = False
    shape: str = "realistic"

    def __post_init__(self) -> None:
        start = self.start if self.start.tzinfo else self.start.replace(tzinfo=dt.timezone.utc)
        start = start.astimezone(dt.timezone.utc)
        if start.second or start.microsecond:
            raise ValueError(f"start must be a whole minute, got {self.start.isoformat()}")
        object.__setattr__(self, "start", start)
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, got {self.shape!r}")
        profile = SHAPES[self.shape]
        if self.products is None:
            object.__setattr__(self, "products", profile.products)
        if self.users is None:
            events = self.minutes * self.events_per_minute
            users = profile.default_users or round(events * profile.users_per_event)
            object.__setattr__(self, "users", max(1, users))
        for name in ("minutes", "servers", "products", "users"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.events_per_minute < self.servers:
            raise ValueError(
                f"events_per_minute ({self.events_per_minute}) must be at least servers ({self.servers}) "
                "so that every server's file holds events"
            )
        if self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")

    @property
    def profile(self) -> Shape:
        return SHAPES[self.shape]

    @property
    def total_events(self) -> int:
        return self.minutes * self.events_per_minute

    def file_name(self, minute: int, server: int) -> str:
        """Name of server ``server`` (0-based)'s file for minute ``minute`` (0-based)."""
        stamp = self.start + dt.timedelta(minutes=minute)
        return f"{stamp:%Y-%m-%d-%H-%M-%S}-server{server + 1}.csv" + (".gz" if self.gzip else "")


def generate_files(config: GeneratorConfig) -> Iterator[tuple[str, bytes]]:
    """Yield ``(file_name, file_bytes)`` per server per minute, minutes in order, servers in order."""
    for name, data, _rows in _generate(config):
        yield name, data


def write_files(
    config: GeneratorConfig, target_dir: Path, progress: Callable[[int], None] | None = None
) -> list[Path]:
    """Write the files into ``target_dir`` (the source folder of a replay) and return their paths.

    ``progress`` is called after each file with the number of events it holds, so a progress bar
    can count up to ``config.total_events``.
    """
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data, rows in _generate(config):
        path = target_dir / name
        path.write_bytes(data)
        paths.append(path)
        if progress is not None:
            progress(rows)
    return paths


# --- sessions -------------------------------------------------------------------------------


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, index])))


def _user_ids(config: GeneratorConfig) -> np.ndarray:
    """Nine-digit ids like the seed's, however many users."""
    gap = min(3000, 900_000_000 // config.users)
    return distinct_ids(_rng(config.seed, _USER_STREAM), config.users, 500_000_000, gap)


def _new_sessions_per_minute(config: GeneratorConfig) -> int:
    return max(1, round(config.events_per_minute / config.profile.session_events))


def _session_range(config: GeneratorConfig, minute: int) -> tuple[int, int]:
    """Sessions that may have events in ``minute``: those started in the ``session_minutes_max``
    minutes up to it. Session ``g`` starts in minute ``g // per_minute - (session_minutes_max - 1)``,
    so the first minute already has sessions under way."""
    per_minute = _new_sessions_per_minute(config)
    return per_minute * minute, per_minute * (minute + config.profile.session_minutes_max)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_HEX_COLUMNS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


@dataclass(frozen=True)
class _Sessions:
    """Sessions ``first .. first + len - 1``: user, id text, weight (expected share of the events)
    and the number of minutes their events span."""

    first: int
    users: np.ndarray
    ids: pa.Array
    weight: np.ndarray
    minutes: np.ndarray


def _session_block(config: GeneratorConfig, user_ids: np.ndarray, block: int):
    rng = _rng(config.seed, _SESSION_STREAM, block)
    profile = config.profile
    users = user_ids[rng.integers(0, config.users, _SESSION_BLOCK)]
    raw = rng.integers(0, 256, (_SESSION_BLOCK, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = np.empty((_SESSION_BLOCK, 32), dtype=np.uint8)
    hexed[:, 0::2], hexed[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 0x0F]
    text = np.full((_SESSION_BLOCK, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_COLUMNS] = hexed
    exponential = rng.exponential(1.0, _SESSION_BLOCK)
    weight = exponential if profile.session_weights == "exponential" else np.ones(_SESSION_BLOCK)
    span = rng.integers(1, profile.session_minutes_max + 1, _SESSION_BLOCK)
    minutes = span if profile.random_session_minutes else np.full(_SESSION_BLOCK, profile.session_minutes_max)
    return users, text, weight, minutes


def _sessions(config: GeneratorConfig, user_ids: np.ndarray, first: int, stop: int) -> _Sessions:
    blocks = range(first // _SESSION_BLOCK, (stop - 1) // _SESSION_BLOCK + 1)
    parts = list(zip(*(_session_block(config, user_ids, block) for block in blocks)))
    skip = first - blocks[0] * _SESSION_BLOCK
    users, text, weight, minutes = (np.concatenate(p)[skip : skip + stop - first] for p in parts)
    offsets = np.arange(0, 36 * (len(text) + 1), 36, dtype=np.int32)
    ids = pa.StringArray.from_buffers(len(text), pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))
    return _Sessions(first, users, ids, weight, minutes)


# --- events ---------------------------------------------------------------------------------


def _minute_events(
    config: GeneratorConfig, catalog: Catalog, sessions: _Sessions, minute: int
) -> dict[str, np.ndarray]:
    """All events of one minute, ordered by server then time."""
    profile = config.profile
    rng = _rng(config.seed, _MINUTE_STREAM, minute)
    n = config.events_per_minute
    lo, hi = _session_range(config, minute)
    local = slice(lo - sessions.first, hi - sessions.first)
    age = minute - (np.arange(lo, hi) // _new_sessions_per_minute(config) - (profile.session_minutes_max - 1))
    minutes = sessions.minutes[local]
    # A session's weight is spread evenly over its minutes; ended sessions weigh nothing.
    share = np.cumsum(np.where(age < minutes, sessions.weight[local] / minutes, 0.0))
    session = lo + np.minimum(np.searchsorted(share, rng.random(n) * share[-1], side="right"), hi - lo - 1)
    second = rng.integers(0, 60, n)
    kind = np.searchsorted(np.cumsum(profile.event_shares)[:-1], rng.random(n), side="right")
    cumulative = catalog.cumulative_weight
    product = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    product = np.minimum(product, len(cumulative) - 1)  # guards the float edge u * total == total
    view_repeats = rng.random(n) < profile.view_repeat_chance  # independent draws: row order does not matter
    promoted = rng.random(n) < profile.promotion_chance
    discount = rng.uniform(0.85, 0.99, n)
    balancer = rng.permutation(n)

    # Within a session, follow-up events act on the product of the session's previous event.
    order = np.lexsort((second, session))
    session, second, kind, product = session[order], second[order], kind[order], product[order]
    follows = np.zeros(n, dtype=bool)
    follows[1:] = (session[1:] == session[:-1]) & ((kind[1:] != _VIEW) | view_repeats[1:])
    source = np.maximum.accumulate(np.where(follows, 0, np.arange(n)))
    product = product[source]

    price = catalog.price_cents[product]
    price = np.where(promoted, np.maximum(1, np.round(price * discount)).astype(np.int64), price)
    server = np.empty(n, dtype=np.int64)
    server[balancer] = np.arange(n) % config.servers  # round-robin over a shuffled stream

    by_file = np.lexsort((second, server))
    return {
        "second": second[by_file], "kind": kind[by_file], "product": product[by_file],
        "price": price[by_file], "session": session[by_file], "server": server[by_file],
    }


def _render(config: GeneratorConfig, catalog: Catalog, user_ids: np.ndarray, minutes: range) -> bytes:
    """CSV body (no header) of the given minutes, one line per event, in file order."""
    first, _ = _session_range(config, minutes.start)
    _, stop = _session_range(config, minutes.stop - 1)
    sessions = _sessions(config, user_ids, first, stop)
    parts = [_minute_events(config, catalog, sessions, m) for m in minutes]
    events = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    rows = len(events["second"])
    # Format each second of the chunk once, then pick per row: strftime per row is the slow part.
    chunk_seconds = int(config.start.timestamp()) + 60 * minutes.start + np.arange(60 * len(minutes))
    times = pc.strftime(pa.array(chunk_seconds, pa.timestamp("s", tz="UTC")), format="%Y-%m-%d %H:%M:%S UTC")
    minute_of_row = np.repeat(np.arange(len(minutes)), config.events_per_minute)

    local_session = events["session"] - first
    product = pa.array(events["product"])
    prices = np.zeros((rows, 2), dtype=np.int64)  # decimal128: low word = cents, high word = 0
    prices[:, 0] = events["price"]

    table = pa.table({
        "event_time": times.take(pa.array(60 * minute_of_row + events["second"])),
        "event_type": pa.array(EVENT_TYPES).take(pa.array(events["kind"])),
        "product_id": catalog.product_id[events["product"]],
        "category_id": catalog.category_id[events["product"]],
        "category_code": catalog.category_code.take(product),
        "brand": catalog.brand.take(product),
        "price": pa.Array.from_buffers(pa.decimal128(15, 2), rows, [None, pa.py_buffer(prices)]),
        "user_id": sessions.users[local_session],
        "user_session": sessions.ids.take(pa.array(local_session)),
    })
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return sink.getvalue()


def _generate(config: GeneratorConfig) -> Iterator[tuple[str, bytes, int]]:
    catalog = build_catalog(config.profile, config.products, _rng(config.seed, _CATALOG_STREAM))
    user_ids = _user_ids(config)
    header = (HEADER + "\n").encode()
    per_chunk = max(1, _CHUNK_EVENTS // config.events_per_minute)
    # Rows come in (minute, server) order and the round-robin gives each server a fixed count.
    rows_per_server = np.bincount(
        np.arange(config.events_per_minute) % config.servers, minlength=config.servers
    ).tolist()
    for chunk_start in range(0, config.minutes, per_chunk):
        minutes = range(chunk_start, min(config.minutes, chunk_start + per_chunk))
        body = _render(config, catalog, user_ids, minutes)
        line_ends = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == ord("\n")) + 1
        start = 0
        rows_done = 0
        for minute in minutes:
            for server, rows in enumerate(rows_per_server):
                rows_done += rows
                end = int(line_ends[rows_done - 1])
                data = header + body[start:end]
                start = end
                if config.gzip:
                    data = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
                yield config.file_name(minute, server), data, rows
