"""Synthetic event files in the seed's schema, shaped like a real store's traffic.

The platform is tested, demonstrated and benchmarked on these files, so what matters is the
shape the transforms must cope with, not the values: a few products take most of the traffic
(Zipf-like), sessions view the same product several times within a minute (view dedupe has
work to do), brand and category code are often missing (the cleaning fallbacks are exercised),
category codes have one to three levels, and every server writes one file per minute whose
events all fall inside that minute.

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

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")
EVENT_SHARES = (0.90, 0.05, 0.02, 0.03)
_VIEW = EVENT_TYPES.index("view")
MISSING_BRAND_SHARE = 0.15  # of events, not of products: popular products count more
MISSING_CATEGORY_CODE_SHARE = 0.30
# A view repeats the session's previous product with this chance; cart, removal and purchase
# always act on it (when the session has an earlier event in the minute).
VIEW_REPEAT_CHANCE = 0.3
EVENTS_PER_SESSION_MINUTE = 4
SESSION_MINUTES = 5
PROMOTION_CHANCE = 0.05  # an event priced below the product's base price (at most 15% off)

_ZIPF_EXPONENT = 1.1
_ZIPF_OFFSET = 10.0  # Zipf-Mandelbrot: the head is heavy but no single product dominates
_SESSION_BLOCK = 1024
_UNNAMED_CATEGORIES = 40
_LONG_TAIL_BRANDS = 400
_CHUNK_EVENTS = 250_000  # rendering batch: bounds memory, does not change the output
GZIP_LEVEL = 3  # twice as fast as the default 6 for 10% larger files; mtime=0 keeps bytes reproducible

# Streams of independent random numbers, so that adding a draw to one never shifts another.
_CATALOG_STREAM, _SESSION_STREAM, _MINUTE_STREAM = 1, 2, 3

# top level -> (typical price, its codes from most to least popular, its brands from most to least sold).
_TAXONOMY: dict[str, tuple[float, tuple[str, ...], tuple[str, ...]]] = {
    "electronics": (
        250.0,
        ("electronics.smartphone", "electronics.audio.headphone", "electronics.video.tv",
         "electronics.clocks", "electronics.tablet", "electronics.camera.photo", "electronics"),
        ("samsung", "apple", "xiaomi", "huawei", "sony", "lg", "jbl", "oppo"),
    ),
    "appliances": (
        150.0,
        ("appliances.kitchen.refrigerators", "appliances.kitchen.washer", "appliances.environment.vacuum",
         "appliances.kitchen.kettle", "appliances.environment.air_conditioner", "appliances.iron"),
        ("bosch", "samsung", "lg", "indesit", "beko", "philips", "tefal", "redmond"),
    ),
    "computers": (
        450.0,
        ("computers.notebook", "computers.desktop", "computers.peripherals.printer",
         "computers.peripherals.mouse", "computers.components.videocards"),
        ("lenovo", "hp", "asus", "acer", "dell", "logitech", "msi"),
    ),
    "apparel": (
        40.0,
        ("apparel.shoes", "apparel", "apparel.shoes.keds", "apparel.costume", "apparel.jeans"),
        ("nike", "adidas", "puma", "reebok", "levis", "respect"),
    ),
    "furniture": (
        180.0,
        ("furniture.living_room.sofa", "furniture.bedroom.bed", "furniture.kitchen.table", "furniture"),
        ("ikea", "askona", "brw", "sonline"),
    ),
    "kids": (30.0, ("kids.toys", "kids", "kids.carriage"), ("lego", "chicco", "hasbro", "mattel")),
    "sport": (120.0, ("sport.bicycle", "sport.trainer"), ("stels", "forward", "nordictrack")),
    "construction": (
        80.0, ("construction.tools.drill", "construction.tools.saw"), ("makita", "dewalt", "bosch")
    ),
    "auto": (
        60.0, ("auto.accessories.player", "auto.accessories.compressor"), ("pioneer", "alpine", "kenwood")
    ),
    "accessories": (25.0, ("accessories.bag", "accessories.umbrella"), ("samsonite", "xiaomi", "tigernu")),
}
_UNNAMED_PRICE = 30.0
_SYLLABLES = ("ka", "lo", "mi", "ro", "ve", "ta", "ni", "so", "ber", "lux", "tan", "ko", "pra", "del", "vi",
              "ma", "sen", "tro", "fa", "gel", "ri", "on", "ex", "al", "zo", "ny", "qu", "pe", "dor", "sta")


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. ``events_per_minute`` is the exact total over all servers."""

    start: dt.datetime  # UTC and minute aligned; a naive value is read as UTC
    minutes: int = 60
    events_per_minute: int = 2000
    servers: int = 4
    products: int = 5000
    users: int = 20000
    seed: int = 0
    gzip: bool = False

    def __post_init__(self) -> None:
        start = self.start if self.start.tzinfo else self.start.replace(tzinfo=dt.timezone.utc)
        start = start.astimezone(dt.timezone.utc)
        if start.second or start.microsecond:
            raise ValueError(f"start must be a whole minute, got {self.start.isoformat()}")
        object.__setattr__(self, "start", start)
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


# --- catalog and sessions -------------------------------------------------------------------


@dataclass(frozen=True)
class _Catalog:
    cumulative_weight: np.ndarray  # product index 0 is the most popular
    product_id: np.ndarray
    category_id: np.ndarray
    category_code: pa.Array  # null where the store has no code for the category
    brand: pa.Array  # null where the product has no brand
    price_cents: np.ndarray
    user_ids: np.ndarray


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, stream, index])))


def _distinct_ids(rng: np.random.Generator, n: int, base: int, max_gap: int) -> np.ndarray:
    """``n`` distinct increasing ids above ``base``, irregularly spaced like real ones."""
    return base + np.cumsum(rng.integers(1, max_gap, n, dtype=np.int64))


def _subset_with_weight(weights: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A random set of items whose weights add up to ``share`` of the total, as closely as possible.

    Missing values are a property of a product, but the contract's shares are shares of events:
    drawing products at random would let the few heavy products swing the event share widely.
    """
    gap = share * weights.sum()
    chosen = np.zeros(len(weights), dtype=bool)
    order = rng.permutation(len(weights))
    for _ in range(8):  # each pass fills the gap left by the previous one with smaller items
        candidates = order[~chosen[order] & (weights[order] <= gap)]
        if len(candidates) == 0:
            break
        taken = candidates[np.cumsum(weights[candidates]) <= gap]
        chosen[taken] = True
        gap -= weights[taken].sum()
    return chosen


def _brand_names(rng: np.random.Generator, n: int) -> list[str]:
    names: dict[str, None] = {}
    while len(names) < n:
        parts = rng.choice(len(_SYLLABLES), rng.integers(2, 4))
        names["".join(_SYLLABLES[p] for p in parts)] = None
    return list(names)


def _zipf_choice(rng: np.random.Generator, size: int, n: int, exponent: float = 0.8) -> np.ndarray:
    weights = 1.0 / np.arange(1, size + 1) ** exponent
    return rng.choice(size, n, p=weights / weights.sum())


def _catalog(config: GeneratorConfig) -> _Catalog:
    rng = _rng(config.seed, _CATALOG_STREAM)
    n = config.products
    ranks = np.arange(1, n + 1, dtype=np.float64)
    weights = (ranks + _ZIPF_OFFSET) ** -_ZIPF_EXPONENT

    codes = [code for _, codes, _ in _TAXONOMY.values() for code in codes]
    code_top = [top for top, (_, tops_codes, _) in _TAXONOMY.items() for _ in tops_codes]
    named_ids = _distinct_ids(rng, len(codes), 2053013550000000000, 10**12)
    unnamed_ids = _distinct_ids(rng, _UNNAMED_CATEGORIES, 2110187000000000000, 10**12)

    no_code = _subset_with_weight(weights, MISSING_CATEGORY_CODE_SHARE, rng)
    no_brand = _subset_with_weight(weights, MISSING_BRAND_SHARE, rng)
    code_index = _zipf_choice(rng, len(codes), n)
    unnamed_index = rng.integers(0, _UNNAMED_CATEGORIES, n)
    category_id = np.where(no_code, unnamed_ids[unnamed_index], named_ids[code_index])
    product_code = [None if missing else codes[i] for missing, i in zip(no_code, code_index)]

    long_tail = _brand_names(rng, _LONG_TAIL_BRANDS)
    from_pool = rng.random(n) < 0.7
    tail_pick = rng.integers(0, _LONG_TAIL_BRANDS, n)
    pool_skew = rng.random(n) ** 2  # the pool's first brands sell most
    typical = np.full(n, _UNNAMED_PRICE)
    brands: list[str | None] = []
    for i in range(n):  # per product, not per event: a few thousand items
        brand = long_tail[tail_pick[i]]
        if not no_code[i]:
            price, _, pool = _TAXONOMY[code_top[code_index[i]]]
            typical[i] = price
            if from_pool[i]:
                brand = pool[int(len(pool) * pool_skew[i])]
        brands.append(None if no_brand[i] else brand)
    price_cents = np.maximum(50, np.round(typical * rng.lognormal(0.0, 0.8, n) * 100)).astype(np.int64)

    return _Catalog(
        cumulative_weight=np.cumsum(weights),
        product_id=rng.permutation(_distinct_ids(rng, n, 1_000_000, 4000)),  # popularity does not follow id
        category_id=category_id.astype(np.int64),
        category_code=pa.array(product_code, pa.string()),
        brand=pa.array(brands, pa.string()),
        price_cents=price_cents,
        user_ids=_distinct_ids(rng, config.users, 500_000_000, 3000),
    )


def _active_sessions(config: GeneratorConfig) -> int:
    return max(1, -(-config.events_per_minute // EVENTS_PER_SESSION_MINUTE))


def _first_session(config: GeneratorConfig, minute: int) -> int:
    """Sessions form a sliding window: each stays active for ``SESSION_MINUTES`` minutes."""
    return minute * _active_sessions(config) // SESSION_MINUTES


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_HEX_COLUMNS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def _session_block(config: GeneratorConfig, catalog: _Catalog, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Users and UUID4 texts (as an ``(n, 36)`` byte matrix) of one block of sessions."""
    rng = _rng(config.seed, _SESSION_STREAM, block)
    users = catalog.user_ids[rng.integers(0, config.users, _SESSION_BLOCK)]
    raw = rng.integers(0, 256, (_SESSION_BLOCK, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    hexed = np.empty((_SESSION_BLOCK, 32), dtype=np.uint8)
    hexed[:, 0::2], hexed[:, 1::2] = _HEX[raw >> 4], _HEX[raw & 0x0F]
    text = np.full((_SESSION_BLOCK, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_COLUMNS] = hexed
    return users, text


def _sessions(
    config: GeneratorConfig, catalog: _Catalog, first: int, stop: int
) -> tuple[np.ndarray, pa.Array]:
    """User ids and session ids of sessions ``first .. stop - 1``."""
    blocks = range(first // _SESSION_BLOCK, (stop - 1) // _SESSION_BLOCK + 1)
    parts = [_session_block(config, catalog, block) for block in blocks]
    skip = first - blocks[0] * _SESSION_BLOCK
    users = np.concatenate([users for users, _ in parts])[skip : skip + stop - first]
    text = np.concatenate([text for _, text in parts])[skip : skip + stop - first]
    offsets = np.arange(0, 36 * (len(text) + 1), 36, dtype=np.int32)
    ids = pa.StringArray.from_buffers(len(text), pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))
    return users, ids


# --- events ---------------------------------------------------------------------------------


def _minute_events(config: GeneratorConfig, catalog: _Catalog, minute: int) -> dict[str, np.ndarray]:
    """All events of one minute, ordered by server then time."""
    rng = _rng(config.seed, _MINUTE_STREAM, minute)
    n = config.events_per_minute
    session = _first_session(config, minute) + rng.integers(0, _active_sessions(config), n)
    second = rng.integers(0, 60, n)
    kind = np.searchsorted(np.cumsum(EVENT_SHARES)[:-1], rng.random(n), side="right")
    cumulative = catalog.cumulative_weight
    product = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    product = np.minimum(product, len(cumulative) - 1)  # guards the float edge u * total == total
    view_repeats = rng.random(n) < VIEW_REPEAT_CHANCE  # independent draws: row order does not matter
    promoted = rng.random(n) < PROMOTION_CHANCE
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


def _render(config: GeneratorConfig, catalog: _Catalog, minutes: range) -> bytes:
    """CSV body (no header) of the given minutes, one line per event, in file order."""
    parts = [_minute_events(config, catalog, m) for m in minutes]
    events = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    rows = len(events["second"])
    # Format each second of the chunk once, then pick per row: strftime per row is the slow part.
    chunk_seconds = int(config.start.timestamp()) + 60 * minutes.start + np.arange(60 * len(minutes))
    times = pc.strftime(pa.array(chunk_seconds, pa.timestamp("s", tz="UTC")), format="%Y-%m-%d %H:%M:%S UTC")
    minute_of_row = np.repeat(np.arange(len(minutes)), config.events_per_minute)

    first = _first_session(config, minutes.start)
    stop = _first_session(config, minutes.stop - 1) + _active_sessions(config)
    users, session_ids = _sessions(config, catalog, first, stop)
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
        "user_id": users[local_session],
        "user_session": session_ids.take(pa.array(local_session)),
    })
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return sink.getvalue()


def _generate(config: GeneratorConfig) -> Iterator[tuple[str, bytes, int]]:
    catalog = _catalog(config)
    header = (HEADER + "\n").encode()
    per_chunk = max(1, _CHUNK_EVENTS // config.events_per_minute)
    # Rows come in (minute, server) order and the round-robin gives each server a fixed count.
    rows_per_server = np.bincount(
        np.arange(config.events_per_minute) % config.servers, minlength=config.servers
    ).tolist()
    for chunk_start in range(0, config.minutes, per_chunk):
        minutes = range(chunk_start, min(config.minutes, chunk_start + per_chunk))
        body = _render(config, catalog, minutes)
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
