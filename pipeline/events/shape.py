"""The two shapes of synthetic traffic: ``realistic`` (the public data set's October 2019 month,
the default) and ``simple`` (the project's first generator: a small catalogue and long sessions).

Every figure of ``REALISTIC`` and where it comes from is listed in ``bench/README.md``; the shape
drives what the platform pays for (t1 rows per minute, COPY volume, view dedupe), so a change here
changes what ``make bench`` measures.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENT_TYPES = ("view", "cart", "remove_from_cart", "purchase")


@dataclass(frozen=True)
class Shape:
    name: str
    event_shares: tuple[float, float, float, float]  # in EVENT_TYPES order
    missing_brand_share: float  # of events, not of products: popular products count more
    missing_category_code_share: float
    products: int  # catalogue size when the config does not name one
    # Product popularity: Zipf-Mandelbrot (rank + offset) ** -exponent up to the knee (a share of
    # the catalogue), then a steeper power law, so that a long run leaves part of the tail unseen.
    zipf_exponent: float
    zipf_offset: float
    knee_share: float  # 1.0: no knee
    tail_exponent: float
    category_codes: int  # the first this many of catalog.CATEGORY_CODES
    code_exponent: float  # popularity of the codes after the first, Zipf over their rank
    first_code_share: float  # of events with a code; 0: the first code follows the Zipf law too
    unnamed_categories: int  # category ids without a code
    brands: int
    brand_exponent: float  # Zipf over the brands after the named head
    brand_head: tuple[float, ...]  # shares of branded events of the first named brands
    # Users and sessions. When the config names no user count, the pool is ``default_users`` if
    # set, else the events x ``users_per_event``. A session's expected events are its weight x
    # ``session_events``, the weight drawn from an exponential law (``session_weights=
    # "exponential"``: sessions then hold 1 + ``session_events`` events on average, counting only
    # those with an event) or fixed ("constant"); its events fall in consecutive minutes, as many as
    # ``session_minutes_max`` or, with ``random_session_minutes``, 1 .. ``session_minutes_max``.
    users_per_event: float
    default_users: int
    session_events: float
    session_weights: str
    session_minutes_max: int
    random_session_minutes: bool
    view_repeat_chance: float  # a view repeats the session's previous product in the minute
    promotion_chance: float = 0.05  # an event priced below its product's base price (<= 15 % off)


REALISTIC = Shape(
    name="realistic",
    # October 2019: 40,779,399 views, 926,516 carts, 742,849 purchases of 42,448,764 events (no
    # remove_from_cart in that month); 0.3 % removals added so the platform meets the fourth type.
    event_shares=(0.960, 0.020, 0.003, 0.017),
    missing_brand_share=0.15,
    missing_category_code_share=0.30,
    products=200_000,
    # Calibrated so that 42M events touch ~167k of the 200k products (one minute of 40,000 events
    # touches ~11k, sessions repeating products): see bench/README.md.
    zipf_exponent=1.1,
    zipf_offset=20.0,
    knee_share=0.275,
    tail_exponent=4.0,
    category_codes=130,
    code_exponent=0.6,
    first_code_share=0.23,  # electronics.smartphone, about 16 % of all events
    unnamed_categories=500,
    brands=3_400,
    brand_exponent=0.8,
    # samsung, apple, xiaomi, huawei: 12.4 %, 9.7 %, 7.3 %, 2.6 % of all events.
    brand_head=(0.145, 0.114, 0.086, 0.031),
    users_per_event=3_022_290 / 42_448_764 / 0.95,  # ~5 % of the pool never shows up
    default_users=0,
    session_events=3.6,  # 42.4M events / 9.2M sessions = 4.6 = 1 + 3.6
    session_weights="exponential",
    session_minutes_max=5,
    random_session_minutes=True,
    view_repeat_chance=0.35,
)

SIMPLE = Shape(
    name="simple",
    event_shares=(0.90, 0.05, 0.02, 0.03),
    missing_brand_share=0.15,
    missing_category_code_share=0.30,
    products=5_000,
    zipf_exponent=1.1,
    zipf_offset=10.0,
    knee_share=1.0,
    tail_exponent=1.1,
    category_codes=46,
    code_exponent=0.8,
    first_code_share=0.0,
    unnamed_categories=40,
    brands=460,
    brand_exponent=0.8,
    brand_head=(),
    users_per_event=0.0,
    default_users=20_000,
    session_events=20.0,  # 4 events a minute for 5 minutes
    session_weights="constant",
    session_minutes_max=5,
    random_session_minutes=False,
    view_repeat_chance=0.3,
)

SHAPES = {shape.name: shape for shape in (REALISTIC, SIMPLE)}
