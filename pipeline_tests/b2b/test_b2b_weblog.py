"""Web-log parsing: fields, country mapping, device names and quarantined lines."""

import pandas as pd
import pytest

from pipeline.b2b.weblog import COUNTRY_NETWORKS, country_of, device_of, parse_weblog

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36"
)
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def entry(ip, user, time, request, status="200", size="1", referer="-", agent=WINDOWS):
    return f'{ip} - {user} [{time}] "{request}" {status} {size} "{referer}" "{agent}"'


# fmt: off
LOG = "\n".join([
    entry("23.1.2.3", "alice", "10/Oct/2024:13:55:36 -0700", "GET /products/42 HTTP/1.1", agent=IPHONE),
    entry("8.8.8.8", "-", "10/Oct/2024:00:00:00 +0000", "GET / HTTP/1.1", "304", "-", "https://x.example/"),
    "",
    "garbage",
    entry("999.1.1.1", "bob", "10/Oct/2024:00:00:00 +0000", "GET / HTTP/1.1"),
    entry("23.1.2.3", "bob", "10/Oct/2024h13:55:36 +0000", "GET / HTTP/1.1"),
    entry("2001:db8::1", "carol", "10/Oct/2024:23:59:59 +0000", "GET /products/7?ref=x HTTP/1.1", agent=BOT),
    entry("180.9.9.9", "dave", "10/Oct/2024:12:00:00 +0000", "GET /products/42x HTTP/1.1", agent="curl/8.5"),
    entry("23.1.2.3", "erin", "10/Oct/2024:12:00:00 +0000", "GET / HTTP/1.1", status="2000"),
]) + "\n"
# fmt: on


def test_parse_weblog_extracts_user_country_device_product_and_utc_time():
    hits, _ = parse_weblog(LOG)
    assert hits["line_number"].tolist() == [1, 2, 7, 8]
    assert hits["user_name"].tolist() == ["alice", None, "carol", "dave"]
    assert hits["country"].tolist() == ["USA", None, None, "AUS"]  # 8.8.8.8 unlisted, IPv6 unmapped
    assert hits["device"].tolist() == ["iPhone", "PC", "Spider", "Other"]
    assert hits["prod_id"].tolist()[0] == 42 and hits["prod_id"].tolist()[2] == 7
    assert pd.isna(hits["prod_id"].tolist()[1]) and pd.isna(hits["prod_id"].tolist()[3])
    assert hits["created_date"].tolist()[0] == pd.Timestamp("2024-10-10 20:55:36", tz="UTC")


def test_parse_weblog_quarantines_bad_lines_with_reasons_and_skips_blank_ones():
    _, rejects = parse_weblog(LOG)
    assert rejects[["line_number", "reason"]].values.tolist() == [
        [4, "does not match the Apache combined log format"],
        [5, "client address is not an IP address"],
        [6, "timestamp is not dd/Mon/yyyy:HH:MM:SS +zzzz"],
        [9, "does not match the Apache combined log format"],  # a 4-digit status
    ]
    assert rejects.loc[0, "line"] == "garbage"


def test_parse_weblog_of_an_empty_file():
    hits, rejects = parse_weblog("")
    assert hits.empty and rejects.empty
    assert list(hits.columns) == ["line_number", "user_name", "country", "device", "prod_id", "created_date"]


@pytest.mark.parametrize(
    "ip,country",
    [
        ("23.0.0.0", "USA"),
        ("23.255.255.255", "USA"),
        ("24.0.0.0", None),
        ("22.255.255.255", None),
        ("180.1.2.3", "AUS"),
        ("81.0.0.1", "BRA"),
        ("10.0.0.1", None),
    ],
)
def test_country_of_follows_the_documented_networks(ip, country):
    assert country_of(ip) == country


def test_country_table_has_distinct_alpha3_codes_and_networks():
    codes = [code for code, _, _ in COUNTRY_NETWORKS]
    networks = [cidr for _, _, cidr in COUNTRY_NETWORKS]
    assert len(set(codes)) == len(codes) and all(len(c) == 3 and c.isupper() for c in codes)
    assert len(set(networks)) == len(networks)


def test_device_names():
    assert device_of(IPHONE) == "iPhone"
    assert device_of(WINDOWS) == "PC"
    assert (
        device_of(
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.0.0 Mobile Safari/537.36"
        )
        == "Samsung SM-S918B"
    )


def test_readme_documents_the_mapping_the_code_uses():
    import re
    from pathlib import Path

    import pipeline.b2b

    readme = (Path(pipeline.b2b.__file__).parent / "README.md").read_text()
    documented = dict(re.findall(r"\| (\d+\.0\.0\.0/8) \| ([A-Z]{3}) ", readme))
    assert documented == {cidr: code for code, _, cidr in COUNTRY_NETWORKS}
