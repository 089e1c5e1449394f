"""The synthetic store's catalogue: products with popularity, category, brand and price.

Shares are shares of *events*, so groups (categories, brands) are filled on the popularity scale:
the hits, the products that make half of the events, fill the groups' intervals in order (the
biggest category and brand get the best sellers, as smartphones and samsung do in the data set),
and every other product draws its group in proportion to the shares, so that small groups get a
few small products instead of vanishing under one best seller. The missing brand and code groups
take the products of a random order whose midpoints fall in their interval, which gives them
their share of the events to within one product's weight. A few numpy calls, no loop over
products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.events.shape import Shape

HITS_SHARE = 0.5  # the best sellers making this share of the events fill the groups in order

# 130 codes in the public data set's style, most viewed first (its head: smartphones, then clocks,
# TVs, notebooks, headphones, shoes, vacuums, refrigerators, washers). Most have two or three
# levels like the real ones; two have a single level (so the platform's level padding has work)
# and one has four, as a few real codes do.
CATEGORY_CODES = tuple("""
electronics.smartphone electronics.clocks electronics.video.tv computers.notebook electronics.audio.headphone
apparel.shoes appliances.environment.vacuum appliances.kitchen.refrigerators appliances.kitchen.washer
computers.desktop electronics.tablet auto.accessories.player appliances.kitchen.microwave apparel.shoes.keds
appliances.environment.water_heater furniture.living_room.sofa appliances.iron electronics.telephone
appliances.environment.air_heater construction.tools.drill appliances.kitchen.kettle
electronics.audio.subwoofer computers.peripherals.printer appliances.personal.hair_cutter apparel
appliances.kitchen.hood furniture.bedroom.bed sport.bicycle apparel.costume appliances.kitchen.blender
computers.components.videocards kids.carriage appliances.kitchen.oven electronics.camera.photo
appliances.sewing_machine furniture.living_room.cabinet auto.accessories.videoregister kids.toys
computers.peripherals.monitor appliances.kitchen.mixer kids appliances.kitchen.dishwasher
construction.tools.saw appliances.environment.air_conditioner electronics.audio.acoustic
computers.peripherals.mouse apparel.shoes.sandals furniture.kitchen.table appliances.kitchen.meat_grinder
appliances.personal.massager computers.peripherals.keyboard apparel.jeans appliances.kitchen.coffee_machine
electronics.video.projector auto.accessories.compressor appliances.kitchen.juicer construction.tools.welding
apparel.shirt furniture.living_room.chair computers.components.cpu appliances.environment.fan
sport.trainer apparel.tshirt computers.components.motherboard furniture.bedroom.blanket
construction.tools.generator appliances.kitchen.grill computers.network.router apparel.shoes.slipons
electronics.camera.video kids.skates appliances.personal.scales furniture.bathroom.bath
auto.accessories.alarm appliances.kitchen.toster construction.tools.pump computers.components.memory
apparel.trousers sport.ski electronics.audio.microphone furniture.living_room.shelving
appliances.kitchen.steam_cooker accessories.bag computers.components.hdd apparel.underwear
construction.tools.light kids.dolls appliances.kitchen.coffee_grinder auto.accessories.radar
computers.components.power_supply apparel.shoes.moccasins furniture.bedroom.pillow sport.snowboard
appliances.ironing_board electronics.audio.dictaphone apparel.dress computers.components.cooler
construction.tools.screw kids.swing appliances.kitchen.fryer country_yard.lawn_mower furniture.kitchen.chair
auto.accessories.winch apparel.jacket computers.ebooks medicine.tools.tonometer accessories.umbrella
appliances.environment.climate sport.tennis apparel.skirt construction.components.faucet
electronics.audio.music_tools.piano furniture.universal.light kids.fmcg.diapers apparel.shoes.boots
computers.peripherals.scanner country_yard.cultivator auto.accessories.parktronic apparel.belt
appliances.kitchen.hob stationery.cartrige furniture.bathroom.toilet apparel.scarf kids.bottles
accessories.wallet computers.components.sound_card country_yard.watering apparel.glove
furniture.universal.mirror apparel.shoes.espadrilles
""".split())

# Typical price by top level (a code's typical price is drawn around it, a product's around that).
TYPICAL_PRICE = {
    "electronics": 260.0, "computers": 480.0, "appliances": 170.0, "apparel": 55.0, "furniture": 190.0,
    "kids": 45.0, "sport": 230.0, "construction": 110.0, "auto": 80.0, "accessories": 40.0,
    "medicine": 50.0, "country_yard": 150.0, "stationery": 20.0,
}
UNNAMED_PRICE = 30.0  # categories without a code: accessories, spare parts, consumables
CODE_PRICE = {"electronics.smartphone": 420.0, "computers.notebook": 620.0, "electronics.video.tv": 430.0}

# The data set's best sellers, most events first (October 2019: samsung 12.4 % of all events, apple
# 9.7 %, xiaomi 7.3 %, huawei 2.6 %); the other brands get made-up names.
NAMED_BRANDS = (
    "samsung", "apple", "xiaomi", "huawei", "lucente", "lg", "bosch", "oppo", "sony", "respect", "acer",
    "lenovo", "artel", "indesit", "elenberg", "casio", "hp", "asus", "beko", "redmond", "philips", "tefal",
    "polaris", "vitek", "jbl", "nike", "adidas", "puma", "askona", "brw", "stels", "makita", "dewalt",
    "pioneer", "cordiant", "samsonite", "lego", "chicco", "karcher", "canon",
)
_SYLLABLES = ("ka", "lo", "mi", "ro", "ve", "ta", "ni", "so", "ber", "lux", "tan", "ko", "pra", "del", "vi",
              "ma", "sen", "tro", "fa", "gel", "ri", "on", "ex", "al", "zo", "ny", "qu", "pe", "dor", "sta")


@dataclass(frozen=True)
class Catalog:
    cumulative_weight: np.ndarray  # product index 0 is the most popular
    product_id: np.ndarray
    category_id: np.ndarray
    category_code: pa.Array  # null where the store has no code for the category
    brand: pa.Array  # null where the product has no brand
    price_cents: np.ndarray


def popularity(shape: Shape, n: int) -> np.ndarray:
    """Each product's share of events, most popular first."""
    rank = np.arange(1, n + 1, dtype=np.float64)
    weight = (rank + shape.zipf_offset) ** -shape.zipf_exponent
    knee = max(1, int(shape.knee_share * n))
    tail = rank > knee
    at_knee = (knee + shape.zipf_offset) ** -shape.zipf_exponent
    weight[tail] = at_knee * (rank[tail] / knee) ** -shape.tail_exponent
    return weight / weight.sum()


def _zipf_shares(count: int, exponent: float, head: tuple[float, ...] = ()) -> np.ndarray:
    """Shares of ``count`` groups: ``head`` for the first ones, a Zipf law over the rest."""
    head = np.asarray(head[:count], dtype=np.float64)
    rest = np.arange(1, count - len(head) + 1, dtype=np.float64) ** -exponent
    rest *= (1.0 - head.sum()) / rest.sum() if len(rest) else 0.0
    shares = np.concatenate([head, rest])
    return shares / shares.sum()


def _assign(weights: np.ndarray, order: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Group of each product: in ``order``, products fill the groups' intervals of the event scale."""
    ordered = weights[order]
    midpoints = (np.cumsum(ordered) - ordered / 2) / ordered.sum()
    group = np.empty(len(weights), dtype=np.int64)
    group[order] = np.minimum(np.searchsorted(np.cumsum(shares), midpoints, side="right"), len(shares) - 1)
    return group


def _assign_by_popularity(
    weights: np.ndarray, products: np.ndarray, shares: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Group of each of ``products`` (in popularity order): the hits fill the intervals, the others
    draw theirs (see the module's docstring)."""
    mine = weights[products]
    hits = np.cumsum(mine) - mine < HITS_SHARE * mine.sum()
    group = np.empty(len(products), dtype=np.int64)
    group[hits] = _assign(mine[hits], np.arange(hits.sum()), shares)
    group[~hits] = np.minimum(
        np.searchsorted(np.cumsum(shares), rng.random((~hits).sum()), side="right"), len(shares) - 1
    )
    return group


def distinct_ids(rng: np.random.Generator, n: int, base: int, max_gap: int) -> np.ndarray:
    """``n`` distinct increasing ids above ``base``, irregularly spaced like real ones."""
    return base + np.cumsum(rng.integers(1, max(2, max_gap), n, dtype=np.int64))


def _synthetic_brands(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    names: dict[str, None] = {}
    while len(names) < n:
        parts = rng.choice(len(_SYLLABLES), rng.integers(2, 5))
        name = "".join(_SYLLABLES[p] for p in parts)
        if name not in taken:
            names[name] = None
    return list(names)


def build_catalog(shape: Shape, products: int, rng: np.random.Generator) -> Catalog:
    n = products
    weights = popularity(shape, n)

    # Categories: the missing-code group gets the unnamed categories, the others the codes.
    codes = CATEGORY_CODES[: shape.category_codes]
    no_code = _assign(weights, rng.permutation(n), np.array([shape.missing_category_code_share, 1.0])) == 0
    coded = np.flatnonzero(~no_code)
    code_index = np.full(n, -1)
    first_code = (shape.first_code_share,) if shape.first_code_share else ()
    code_index[coded] = _assign_by_popularity(
        weights, coded, _zipf_shares(len(codes), shape.code_exponent, first_code), rng
    )
    unnamed_index = np.zeros(n, dtype=np.int64)
    unnamed = np.flatnonzero(no_code)
    unnamed_index[unnamed] = _assign_by_popularity(
        weights, unnamed, _zipf_shares(shape.unnamed_categories, shape.code_exponent), rng
    )
    category = np.where(no_code, unnamed_index, shape.unnamed_categories + code_index)
    category_ids = np.concatenate([
        distinct_ids(rng, shape.unnamed_categories, 2110187000000000000, 10**12),
        distinct_ids(rng, len(codes), 2053013550000000000, 10**12),
    ])
    code_array = pa.array(codes, pa.string()).take(pa.array(np.maximum(code_index, 0), mask=no_code))

    # Prices: heavy-tailed around a typical price per category.
    typical = np.concatenate([
        UNNAMED_PRICE * rng.lognormal(0.0, 0.6, shape.unnamed_categories),
        np.array([CODE_PRICE.get(code, TYPICAL_PRICE[code.split(".")[0]]) for code in codes])
        * rng.lognormal(0.0, 0.3, len(codes)),
    ])
    price = typical[category] * rng.lognormal(0.0, 0.8, n)
    price_cents = np.maximum(50, np.round(price * 100)).astype(np.int64)

    # Brands: the data set's best sellers first, then made-up names.
    no_brand = _assign(weights, rng.permutation(n), np.array([shape.missing_brand_share, 1.0])) == 0
    named = list(NAMED_BRANDS[: shape.brands])
    names = named + _synthetic_brands(rng, shape.brands - len(named), set(named))
    branded = np.flatnonzero(~no_brand)
    brand_of = np.zeros(n, dtype=np.int64)
    brand_of[branded] = _assign_by_popularity(
        weights, branded, _zipf_shares(len(names), shape.brand_exponent, shape.brand_head), rng
    )
    brand_array = pa.array(names, pa.string()).take(pa.array(brand_of, mask=no_brand))

    return Catalog(
        cumulative_weight=np.cumsum(weights),
        product_id=rng.permutation(distinct_ids(rng, n, 1_000_000, 500)),  # popularity does not follow id
        category_id=category_ids[category],
        category_code=code_array,
        brand=brand_array,
        price_cents=price_cents,
    )
