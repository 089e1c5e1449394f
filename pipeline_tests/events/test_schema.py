"""File-name grammar and hour keys of the event stream (DESIGN section 3)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.events.schema import (
    COLUMNS,
    EVENT_TYPES,
    BadFileName,
    FileName,
    hour_key,
    minute_of_hour_key,
    parse_file_name,
)


def test_contract_columns_and_event_types():
    assert COLUMNS == (
        "event_time", "event_type", "product_id", "category_id", "category_code",
        "brand", "price", "user_id", "user_session",
    )
    assert EVENT_TYPES == ("view", "cart", "remove_from_cart", "purchase")


@pytest.mark.parametrize("name, minute, server, compressed", [
    ("2019-10-01-00-00-00-server1.csv", "2019-10-01 00:00", "server1", False),
    ("2019-10-01-05-07-59-server1.csv.gz", "2019-10-01 05:07", "server1", True),
    ("2020-02-29-23-59-30-eu_west-2.csv", "2020-02-29 23:59", "eu_west-2", False),
    ("2019-10-01-00-00-00-" + "s" * 64 + ".csv", "2019-10-01 00:00", "s" * 64, False),
])
def test_parse_file_name(name, minute, server, compressed):
    assert parse_file_name(name) == FileName(
        name=name, minute=pd.Timestamp(minute, tz="UTC"), server=server, compressed=compressed,
    )


def test_minute_is_utc_and_floored():
    parsed = parse_file_name("2019-10-01-00-00-45-a.csv")
    assert parsed.minute == pd.Timestamp("2019-10-01 00:00:00", tz="UTC")
    assert str(parsed.minute.tz) == "UTC"


@pytest.mark.parametrize("name, problem", [
    ("", "the name is empty"),
    ("landing/2019-10-01-00-00-00-server1.csv", "path separator"),
    ("..\\2019-10-01-00-00-00-server1.csv", "path separator"),
    ("2019-10-01-00-00-00-..csv", "'..'"),
    ("2019-10-01-00-00-00-server1.txt", "extension must be .csv or .csv.gz"),
    ("2019-10-01-00-00-00-server1.csv.zip", "extension must be .csv or .csv.gz"),
    ("2019-10-01-00-00-00-server1.CSV", "extension must be .csv or .csv.gz"),
    ("2019-13-01-00-00-00-server1.csv", "is not a real date and time"),
    ("2019-02-30-00-00-00-server1.csv", "is not a real date and time"),
    ("2019-10-01-24-00-00-server1.csv", "is not a real date and time"),
    ("2019-10-01-00-00-00.csv", "does not start with a YYYY-MM-DD-HH-MM-SS time"),
    ("2019-10-01-00-00-00-.csv", "server part is missing"),
    ("2019-10-01-00-00-server1.csv", "does not start with a YYYY-MM-DD-HH-MM-SS time"),
    ("2019-10-01-00-00-00--server1.csv", "server part"),
    ("2019-10-01-00-00-00-server 1.csv", "server part"),
    ("2019-10-01-00-00-00-" + "s" * 65 + ".csv", "server part"),
    ("19-10-01-00-00-00-server1.csv", "does not start with a YYYY-MM-DD-HH-MM-SS time"),
    ("\uff12019-10-01-00-00-00-server1.csv", "does not start with a YYYY-MM-DD-HH-MM-SS time"),
])
def test_bad_file_names_say_what_is_wrong_and_what_is_expected(name, problem):
    with pytest.raises(BadFileName) as error:
        parse_file_name(name)
    message = str(error.value)
    assert problem in message
    assert "expected YYYY-MM-DD-HH-MM-SS-<server>.csv or .csv.gz" in message
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("ts, key", [
    (pd.Timestamp("2019-10-01 05:00:00", tz="UTC"), "2019-10-01-05:00"),
    (pd.Timestamp("2019-10-01 05:59:59.999", tz="UTC"), "2019-10-01-05:00"),
    (pd.Timestamp("2019-10-01 07:30", tz="Europe/Paris"), "2019-10-01-05:00"),  # UTC+2 in October
    (pd.Timestamp("2019-12-31 23:10"), "2019-12-31-23:00"),  # naive: taken as UTC
    ("2019-10-01 00:00:00+00:00", "2019-10-01-00:00"),
])
def test_hour_key(ts, key):
    assert hour_key(ts) == key


def test_minute_of_hour_key():
    assert minute_of_hour_key("2019-10-01-05:00") == pd.Timestamp("2019-10-01 05:00", tz="UTC")
    assert hour_key(minute_of_hour_key("2019-12-31-23:00")) == "2019-12-31-23:00"


@pytest.mark.parametrize("key", ["2019-10-01-05:30", "2019-10-01 05:00", "2019-10-1-5:00", "2019-10-01", ""])
def test_minute_of_hour_key_refuses_non_hour_keys(key):
    with pytest.raises(ValueError, match="is not an hourly partition key"):
        minute_of_hour_key(key)
