import datetime as dt
from pathlib import Path

import pytest

from pipeline.settings import Settings, SettingsError


def test_defaults_follow_the_design_table():
    s = Settings.from_env({}, today=dt.date(2026, 11, 26))
    assert s.home == Path("./.clickflow").absolute()
    assert s.pg_url is None
    assert s.lake_url == str(Path("./.clickflow").absolute() / "lake")
    assert s.partitions_start == "2026-11-01"
    assert s.events == ("purchase", "view")
    assert s.dimensions == ("product_id", "brand", "category_l3")
    assert (s.t1_retention_hours, s.t2_retention_days, s.archive_block, s.engine) == (24, 31, "day", "pandas")
    assert s.spark_master == "local[*]"


def test_values_are_read_and_lists_deduplicated():
    s = Settings.from_env({
        "PIPELINE_HOME": "/tmp/x", "PIPELINE_EVENTS": "view, view", "PIPELINE_DIMENSIONS": "brand,category_l1",
        "PIPELINE_T1_RETENTION_HOURS": "6", "PIPELINE_ARCHIVE_BLOCK": "hour", "PIPELINE_LAKE_URL": "s3://my-bucket/lake",
        "PIPELINE_PARTITIONS_START": "2019-10-01", "PIPELINE_ENGINE": "spark",
    })
    assert s.events == ("view",) and s.dimensions == ("brand", "category_l1")
    assert (s.t1_retention_hours, s.archive_block, s.lake_url) == (6, "hour", "s3://my-bucket/lake")
    assert (s.partitions_start, s.engine, s.pg_dir) == ("2019-10-01", "spark", Path("/tmp/x/pg"))


@pytest.mark.parametrize("name,value,accepted", [
    ("PIPELINE_EVENTS", "purchase,click", "purchase, view"),
    ("PIPELINE_DIMENSIONS", "", "product_id"),
    ("PIPELINE_T1_RETENTION_HOURS", "0", "greater than 0"),
    ("PIPELINE_T2_RETENTION_DAYS", "ten", "whole number"),
    ("PIPELINE_ARCHIVE_BLOCK", "week", "hour or day"),
    ("PIPELINE_ENGINE", "duckdb", "pandas or spark"),
    ("PIPELINE_PARTITIONS_START", "2019-13-01", "ISO date"),
    ("PIPELINE_LAKE_URL", "ftp://host/x", "s3://bucket/prefix"),
    ("PIPELINE_LAKE_URL", "s3://Bad_Bucket", "valid bucket name"),
])
def test_invalid_values_name_the_variable_value_and_what_is_accepted(name, value, accepted):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({name: value})
    message = str(error.value)
    assert name in message and repr(value) in message and accepted in message


def test_a_bad_database_url_is_refused_without_echoing_it():
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"PIPELINE_PG_URL": "mysql://user:s3cret@host/db"})
    assert "PIPELINE_PG_URL" in str(error.value) and "s3cret" not in str(error.value)
