"""The synthetic events have the seed's schema and the shape the platform must cope with."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import re

import pandas as pd
import pytest

from pipeline.events import generate
from pipeline.events.generate import GeneratorConfig, generate_files, write_files

UTC = dt.timezone.utc
HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"
START = dt.datetime(2019, 10, 1, 0, 0, tzinfo=UTC)
# 10 minutes x 2000 events = 20,000 events in 40 files of 500 rows.
CONFIG = GeneratorConfig(start=START, minutes=10, events_per_minute=2000, servers=4, products=5000, seed=0)
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
        f"2019-10-01-00-{minute:02d}-00-server{server}.csv" for minute in range(10) for server in (1, 2, 3, 4)
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
    assert events.groupby(events["file"].str.slice(0, 19)).size().tolist() == [2000] * 10
    assert events.groupby("file").size().tolist() == [500] * 40


def test_event_type_shares(events):
    shares = events["event_type"].value_counts(normalize=True)
    assert set(shares.index) == {"view", "cart", "remove_from_cart", "purchase"}
    assert shares["view"] == pytest.approx(0.90, abs=0.03)
    assert shares["cart"] == pytest.approx(0.05, abs=0.015)
    assert shares["remove_from_cart"] == pytest.approx(0.02, abs=0.01)
    assert shares["purchase"] == pytest.approx(0.03, abs=0.01)


def test_missing_brand_and_category_code_shares(events):
    assert (events["brand"] == "").mean() == pytest.approx(0.15, abs=0.03)
    assert (events["category_code"] == "").mean() == pytest.approx(0.30, abs=0.03)
    assert (events["category_id"] != "").all() and (events["product_id"] != "").all()


def test_category_codes_have_one_to_three_levels(events):
    codes = events.loc[events["category_code"] != "", "category_code"].drop_duplicates()
    levels = codes.str.split(".")
    assert set(levels.str.len()) == {1, 2, 3}
    assert all(part and part == part.lower() for parts in levels for part in parts)
    assert {"electronics.smartphone", "appliances.kitchen.refrigerators", "apparel"} <= set(codes)


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


def test_popularity_is_skewed(events):
    counts = events["product_id"].value_counts()
    assert counts.iloc[:50].sum() / len(events) > 0.2  # top 1% of the catalogue
    assert counts.iloc[0] > 20 * counts.median()


def test_sessions_view_the_same_product_again_within_a_minute(events):
    views = events[events["event_type"] == "view"].assign(minute=events["event_time"].str.slice(0, 16))
    repeated = views.duplicated(["minute", "user_session", "product_id"])
    assert 0.05 < repeated.mean() < 0.5
    assert views.duplicated(["file", "user_session", "product_id"]).any()  # also within one file


def test_users_and_sessions_look_like_the_seed(events):
    uuid4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    assert events["user_session"].str.fullmatch(uuid4).all()
    assert events["user_id"].str.fullmatch(r"\d{9}").all()
    assert (events.groupby("user_session")["user_id"].nunique() == 1).all()
    assert events["user_session"].nunique() > 1000


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
    ],
)
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        GeneratorConfig(**{"start": START, **changes})
