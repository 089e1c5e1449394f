"""The synthetic events have the seed's schema and the shape the platform must cope with.

The shape tests compute every figure from the generated files with pandas and compare it with the
targets documented in bench/README.md (the public data set's October 2019 month), typed here
again rather than read from ``pipeline.events.shape``: a drift in either shows up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import re

import numpy as np
import pandas as pd
import pytest

from pipeline.events import generate
from pipeline.events.catalog import build_catalog, popularity
from pipeline.events.generate import GeneratorConfig, generate_files, write_files
from pipeline.events.shape import REALISTIC

UTC = dt.timezone.utc
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
START = dt.datetime(2019, 10, 1, 0, 0, tzinfo=UTC)
# The default (realistic) shape: 60 minutes x 2000 events = 120,000 events in 240 files of 500 rows.
CONFIG = GeneratorConfig(start=START, minutes=60, events_per_minute=2000, servers=4, seed=0)
MINUTES = 60
FILE_NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-server(\d+)\.csv$")


def _read(data: bytes) -> pd.DataFrame:
    """Raw text of every field: an empty field stays '' so missing values are visible as such."""
    return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def files() -> list[tuple[str, bytes]]:
    return list(generate_files(CONFIG))


@pytest.fixture(scope="module")
def events(files) -> pd.DataFrame:
    return pd.concat([_read(data).assign(file=name) for name, data in files], ignore_index=True)


def test_one_file_per_server_per_minute_in_time_order(files):
    expected = [
        f"2019-10-01-00-{minute:02d}-00-server{server}.csv"
        for minute in range(MINUTES)
        for server in (1, 2, 3, 4)
    ]
    assert [name for name, _ in files] == expected


def test_names_parse_back_to_minute_and_server(files):
    for index, (name, _) in enumerate(files):
        year, month, day, hour, minute, second, server = map(int, FILE_NAME.match(name).groups())
        when = dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        assert when == START + dt.timedelta(minutes=index // 4)
        assert server == index % 4 + 1


def test_header_is_exactly_the_seed_header(files):
    for _, data in files:
        assert data.split(b"\n", 1)[0].decode() == HEADER


def test_every_event_time_is_inside_its_file_minute(events):
    assert events["event_time"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC").all()
    # "2019-10-01-00-07-00-server2.csv" -> "2019-10-01 00:07"
    file_minute = events["file"].map(lambda name: f"{name[:10]} {name[11:13]}:{name[14:16]}")
    assert (events["event_time"].str.slice(0, 16) == file_minute).all()
    assert events["event_time"].str.slice(17, 19).nunique() == 60  # spread over the minute


def test_each_minute_holds_exactly_events_per_minute_split_evenly(events):
    assert events.groupby(events["file"].str.slice(0, 19)).size().tolist() == [2000] * MINUTES
    assert events.groupby("file").size().tolist() == [500] * 4 * MINUTES


def test_event_type_shares_follow_the_october_month(events):
    # 40,779,399 views, 926,516 carts, 742,849 purchases of 42,448,764; 0.3 % removals added.
    shares = events["event_type"].value_counts(normalize=True)
    assert set(shares.index) == {"view", "cart", "remove_from_cart", "purchase"}
    assert shares["view"] == pytest.approx(0.96, abs=0.004)
    assert shares["cart"] == pytest.approx(0.02, abs=0.003)
    assert shares["remove_from_cart"] == pytest.approx(0.003, abs=0.0015)
    assert shares["purchase"] == pytest.approx(0.017, abs=0.003)


def test_missing_brand_and_category_code_shares(events):
    assert (events["brand"] == "").mean() == pytest.approx(0.15, abs=0.02)
    assert (events["category_code"] == "").mean() == pytest.approx(0.30, abs=0.02)
    assert (events["category_id"] != "").all() and (events["product_id"] != "").all()


def test_category_codes_have_one_to_four_levels(events):
    coded = events.loc[events["category_code"] != "", "category_code"]
    levels = coded.str.count(r"\.") + 1
    assert set(levels) == {1, 2, 3, 4}
    assert levels.isin([2, 3]).mean() > 0.9  # like the real codes; 1 and 4 levels are rare
    assert all(part and part == part.lower() for code in coded.unique() for part in code.split("."))
    assert {"electronics.smartphone", "appliances.kitchen.refrigerators", "apparel"} <= set(coded)
    # Smartphones lead, as in the data set (about 16 % of all events).
    top = events["category_code"].value_counts(normalize=True)
    assert top.index[:2].tolist() == ["", "electronics.smartphone"]
    assert top["electronics.smartphone"] == pytest.approx(0.16, abs=0.03)


def test_brands_are_heavy_tailed_with_the_data_sets_leaders(events):
    shares = events.loc[events["brand"] != "", "brand"].value_counts() / len(events)
    assert shares.index[:3].tolist() == ["samsung", "apple", "xiaomi"]
    # samsung 12.4 %, apple 9.7 %, xiaomi 7.3 % of all events in October 2019
    assert shares.iloc[:3].tolist() == pytest.approx([0.124, 0.097, 0.073], abs=0.025)
    assert len(shares) > 1000  # a long tail: most brands are seen a few times only
    assert (shares < 0.001).sum() > 0.9 * len(shares)


def test_brand_and_category_are_fixed_per_product(events):
    per_product = events.groupby("product_id")[["brand", "category_id", "category_code"]].nunique()
    assert (per_product == 1).all().all()


def test_price_is_stable_per_product(events):
    assert events["price"].str.fullmatch(r"\d+\.\d{2}").all()
    price = events["price"].astype(float)
    base = price.groupby(events["product_id"]).transform("max")
    assert (price == base).mean() > 0.9  # most events pay the base price
    assert (price >= 0.85 * base - 0.01).all()  # promotions take at most 15% off
    assert price.min() > 0


def test_prices_are_heavy_tailed(events):
    price = events.drop_duplicates("product_id")["price"].astype(float)
    assert price.mean() > 1.3 * price.median()
    assert price.quantile(0.99) > 10 * price.median()


def test_popularity_is_skewed_over_a_large_catalogue(events):
    counts = events["product_id"].value_counts()
    assert len(counts) > 15_000  # of the 200,000 products, many are seen in two hours
    assert counts.iloc[:2000].sum() / len(events) > 0.5  # the top 1% of the catalogue
    assert counts.iloc[0] / len(events) == pytest.approx(0.0085, rel=0.35)


def test_a_minute_of_40000_events_touches_thousands_of_products():
    minute = GeneratorConfig(start=START, minutes=1, events_per_minute=40_000, seed=5)
    products = pd.concat([_read(data)["product_id"] for _, data in generate_files(minute)])
    assert 8_000 < products.nunique() < 16_000


def test_popularity_is_calibrated_on_the_october_month():
    """42M events touch ~167k of the 200k products (expected distinct products of 42M draws)."""
    weights = popularity(REALISTIC, 200_000)
    assert weights[0] > weights[1] > weights[-1] > 0 and weights.sum() == pytest.approx(1.0)
    touched = (1 - np.exp(-42_448_764 * weights)).sum()
    assert touched == pytest.approx(167_000, rel=0.03)


def test_catalogue_holds_the_data_sets_cardinalities():
    catalog = build_catalog(REALISTIC, 200_000, np.random.default_rng(0))
    assert len(np.unique(catalog.product_id)) == 200_000
    brands = catalog.brand.drop_null().unique()
    assert 3_200 < len(brands) <= 3_400
    assert 120 < len(catalog.category_code.drop_null().unique()) <= 130
    assert catalog.brand.null_count > 0 and catalog.category_code.null_count > 0


def test_sessions_have_about_4_6_events_over_a_few_minutes(events):
    per_session = events.groupby("user_session")
    # 42.4M events in 9.2M sessions; sessions cut by the two-hour window's edges count a little less.
    assert len(events) / per_session.ngroups == pytest.approx(4.6, abs=0.25)
    spans = events.assign(minute=events["event_time"].str.slice(0, 16), server=events["file"].str.slice(20))
    minutes = spans.groupby("user_session")["minute"].nunique()
    assert minutes.max() <= 5 and 1.5 < minutes.mean() < 3
    sizes = per_session.size()
    assert (sizes == 1).mean() > 0.1 and sizes.max() > 20  # many short sessions, a few long ones
    servers = spans.groupby("user_session")["server"].nunique()
    assert (servers[sizes >= 4] >= 2).mean() > 0.9  # a session's events are spread over the servers


def test_users_follow_the_october_month(events):
    # 3,022,290 users for 42,448,764 events
    assert events["user_id"].nunique() / len(events) == pytest.approx(3_022_290 / 42_448_764, rel=0.15)
    assert events.groupby("user_id")["user_session"].nunique().mean() > 2


def test_sessions_view_the_same_product_again_within_a_minute(events):
    views = events[events["event_type"] == "view"].assign(minute=events["event_time"].str.slice(0, 16))
    repeated = views.duplicated(["minute", "user_session", "product_id"])
    assert 0.05 < repeated.mean() < 0.4
    assert views.duplicated(["file", "user_session", "product_id"]).any()  # also within one file


def test_users_and_sessions_look_like_the_seed(events):
    uuid4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert events["user_session"].str.fullmatch(uuid4).all()
    assert events["user_id"].str.fullmatch(r"\d{9}").all()
    assert (events.groupby("user_session")["user_id"].nunique() == 1).all()


def test_simple_shape_keeps_the_first_generators_figures():
    config = GeneratorConfig(start=START, minutes=10, events_per_minute=2000, shape="simple")
    assert (config.products, config.users) == (5000, 20000)
    events = pd.concat([_read(data) for _, data in generate_files(config)], ignore_index=True)
    shares = events["event_type"].value_counts(normalize=True)
    assert shares[["view", "cart", "remove_from_cart", "purchase"]].tolist() == pytest.approx(
        [0.90, 0.05, 0.02, 0.03], abs=0.01
    )
    assert events["product_id"].nunique() <= 5000 and events["user_id"].nunique() <= 20000
    # Sessions of 4 events a minute for 5 minutes: 500 under way, 100 new each minute (and the 400
    # under way when the first minute starts).
    assert events["user_session"].nunique() == pytest.approx(1400, rel=0.03)
    assert (events["brand"] == "").mean() == pytest.approx(0.15, abs=0.03)


def test_users_default_to_the_data_sets_ratio_and_explicit_values_win():
    assert GeneratorConfig(start=START, minutes=50, events_per_minute=40_000).users == pytest.approx(
        2_000_000 * 3_022_290 / 42_448_764 / 0.95, rel=0.01
    )
    assert GeneratorConfig(start=START, products=30, users=60).products == 30
    assert GeneratorConfig(start=START, products=30, users=60).users == 60


def test_same_seed_same_bytes_other_seed_other_bytes():
    small = GeneratorConfig(
        start=START, minutes=3, events_per_minute=300, servers=3, products=200, users=500, seed=7
    )
    first = list(generate_files(small))
    assert list(generate_files(small)) == first
    other = list(generate_files(dataclasses.replace(small, seed=8)))
    assert [name for name, _ in other] == [name for name, _ in first]
    assert all(a != b for (_, a), (_, b) in zip(first, other))


def test_output_does_not_depend_on_how_minutes_are_chunked(monkeypatch):
    config = GeneratorConfig(start=START, minutes=4, events_per_minute=500, products=300, users=900, seed=3)
    whole = list(generate_files(config))
    monkeypatch.setattr(generate, "_CHUNK_EVENTS", 1)  # one minute per chunk
    assert list(generate_files(config)) == whole


def test_gzip_files_hold_the_same_csv():
    config = GeneratorConfig(start=START, minutes=2, events_per_minute=200, products=100, users=300, seed=1)
    plain = list(generate_files(config))
    packed = list(generate_files(dataclasses.replace(config, gzip=True)))
    assert [name for name, _ in packed] == [name + ".gz" for name, _ in plain]
    assert [gzip.decompress(data) for _, data in packed] == [data for _, data in plain]
    assert all(data[:2] == b"\x1f\x8b" for _, data in packed)


def test_write_files_writes_the_generated_files_and_reports_events(tmp_path):
    config = GeneratorConfig(start=START, minutes=2, events_per_minute=100, servers=2, products=50, users=80)
    seen: list[int] = []
    paths = write_files(config, tmp_path / "source", progress=seen.append)
    generated = list(generate_files(config))
    assert [path.name for path in paths] == [name for name, _ in generated]
    assert [path.read_bytes() for path in paths] == [data for _, data in generated]
    assert seen == [50, 50, 50, 50] and sum(seen) == config.total_events == 200


def test_names_follow_the_clock_across_midnight():
    start = dt.datetime(2019, 10, 31, 23, 59, tzinfo=UTC)
    files = list(generate_files(GeneratorConfig(start=start, minutes=2, events_per_minute=10, servers=1)))
    assert [name for name, _ in files] == [
        "2019-10-31-23-59-00-server1.csv",
        "2019-11-01-00-00-00-server1.csv",
    ]
    assert _read(files[1][1])["event_time"].str.startswith("2019-11-01 00:00:").all()


def test_config_reads_naive_start_as_utc_and_converts_other_zones():
    naive = dt.datetime(2019, 10, 1, 5, 0)
    assert GeneratorConfig(start=naive).start == dt.datetime(2019, 10, 1, 5, 0, tzinfo=UTC)
    paris = dt.timezone(dt.timedelta(hours=2))
    assert GeneratorConfig(start=dt.datetime(2019, 10, 1, 2, 0, tzinfo=paris)).start == START


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start": dt.datetime(2019, 10, 1, 0, 0, 30, tzinfo=UTC)}, "whole minute"),
        ({"minutes": 0}, "minutes must be at least 1"),
        ({"servers": 5, "events_per_minute": 4}, "at least servers"),
        ({"seed": -1}, "seed"),
        ({"shape": "easy"}, "shape must be one of realistic, simple"),
        ({"products": 0}, "products must be at least 1"),
    ],
)
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        GeneratorConfig(**{"start": START, **changes})
