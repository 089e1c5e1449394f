"""The ini is read strictly: every mistake stops with a message naming the section and key."""

import textwrap
from pathlib import Path

import pytest

from pipeline.clickstream.config import DEFAULT_INI, ConfigError, interval_cron, load_config, parse_config


def ini(body: str = "", **sections: dict) -> str:
    """Ini text: ``body`` as written, then sections given as dicts."""
    text = textwrap.dedent(body)
    for name, values in sections.items():
        text += f"\n[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())
    return text


# The seed's own file, as published with it.
SEED_INI = """
[environment]
is_local_environment = True

[rescheduling]
time_interval_hours = 0.1

[path]
source_path = s3://ecommmerce
destination_path = ./data_folder/

[postgres_database]
insert_into_postgre = False
postgres_server = localhost
postgres_password = 3231
postgres_data_append = True
table_name = click_through_weekly
"""


def test_the_packaged_default_file_gives_the_documented_values():
    config = load_config(DEFAULT_INI, env={})
    assert config.period == 7
    assert config.groupings == (("product_category",), ("product_name",))
    assert (config.target_column, config.date_column) == ("click_event", "date")
    assert config.source_prefix == "clickstream/source/"
    assert config.work_dir is None
    assert (config.postgres.enabled, config.postgres.table_name, config.postgres.append) == (
        True,
        "click_through_weekly",
        True,
    )
    assert (config.mongo.enabled, config.mongo.host, config.mongo.database) == (
        False,
        "localhost:27017",
        "Ecommerce",
    )
    assert config.cron_schedule == "0 0 * * *"


def test_an_empty_file_means_every_default():
    assert parse_config("", {}) == parse_config(DEFAULT_INI.read_text(), {}, origin="<text>")


def test_the_path_comes_from_the_environment_and_a_missing_file_names_the_variable(tmp_path):
    path = tmp_path / "mine.ini"
    path.write_text(ini(aggregation={"period": 3}))
    assert load_config(env={"PIPELINE_CLICKSTREAM_INI": str(path)}).period == 3
    with pytest.raises(ConfigError, match="PIPELINE_CLICKSTREAM_INI"):
        load_config(env={"PIPELINE_CLICKSTREAM_INI": str(tmp_path / "absent.ini")})


@pytest.mark.parametrize(
    "text, named",
    [
        (ini(aggregation={"periode": 7}), r"\[aggregation\] periode: unknown key"),
        (ini(foo={"a": 1}), r"unknown section \[foo\]"),
        (SEED_INI, r"unknown section \[environment\]"),
        (
            ini(postgres_database={"postgres_password": "x"}),
            r"\[postgres_database\] postgres_password: .*PIPELINE_PG_URL",
        ),
        (ini(aggregation={"period": "seven"}), r"\[aggregation\] period = 'seven': not a whole number"),
        (ini(aggregation={"period": "0"}), r"\[aggregation\] period = '0'"),
        (ini(aggregation={"period": "2.5"}), r"\[aggregation\] period = '2.5'"),
        (ini(rescheduling={"time_interval_hours": "abc"}), r"\[rescheduling\] time_interval_hours = 'abc'"),
        (ini(rescheduling={"time_interval_hours": "5"}), r"\[rescheduling\] time_interval_hours = 5: a cron"),
        (
            ini(mongodb={"insert_into_mongo": "maybe"}),
            r"\[mongodb\] insert_into_mongo = 'maybe': not a boolean",
        ),
        (
            ini(postgres_database={"table_name": "Click-Through"}),
            r"\[postgres_database\] table_name = 'Click-Through'",
        ),
        (ini(path={"source_path": "s3://ecommmerce"}), r"\[path\] source_path = 's3://ecommmerce'"),
        (
            ini(path={"source_path": "clickstream/metadata"}),
            r"\[path\] source_path .*overlaps clickstream/metadata/",
        ),
        (ini(columns={"column_names": "a,,b"}), r"\[columns\] column_names = 'a,,b': '' is not a column"),
        (ini(columns={"column_names": "a+a"}), r"\[columns\] column_names .*names a column twice"),
        (ini(columns={"column_names": "a,a"}), r"\[columns\] column_names .*listed twice"),
        (ini(columns={"column_names": "a+date"}), r"groups by the date or target column"),
        (ini(aggregation={"target_column": "date"}), r"target_column and date_column are both 'date'"),
        (ini(postgres_database={"insert_into_postgre": "false"}), r"enable at least one sink"),
        ("[aggregation\nperiod = 1", r"not a valid ini file"),
    ],
)
def test_a_mistake_stops_with_a_message_naming_it(text, named):
    with pytest.raises(ConfigError, match=named) as error:
        parse_config(text, {}, origin="my.ini")
    assert str(error.value).startswith("my.ini: ")


def test_booleans_are_booleans_not_strings():
    config = parse_config(
        ini(
            postgres_database={"insert_into_postgre": "False"},
            mongodb={"insert_into_mongo": "yes", "mongodb_data_append": "0"},
        ),
        {},
    )
    assert (config.postgres.enabled, config.mongo.enabled, config.mongo.append) == (False, True, False)


def test_joint_groupings_and_spaces():
    config = parse_config(
        ini(columns={"column_names": " product_category , product_category + product_name "}), {}
    )
    assert config.groupings == (("product_category",), ("product_category", "product_name"))
    assert config.grouping_names == ("product_category", "product_category+product_name")
    assert config.group_columns == ("product_category", "product_name")


def test_variables_expand_from_the_environment():
    text = ini(
        mongodb={"host": "mongodb://report:${MONGO_PASSWORD}@db.example:27017", "database": "${DB}"},
        path={"destination_path": "${HOME_DIR}/work$$1"},
    )
    config = parse_config(text, {"MONGO_PASSWORD": "s3cret", "DB": "shop", "HOME_DIR": "/data"})
    assert config.mongo.host == "mongodb://report:s3cret@db.example:27017"
    assert config.mongo.database == "shop"
    assert config.work_dir == Path("/data/work$1")


def test_an_unset_variable_is_named_with_its_key():
    text = ini(mongodb={"host": "mongodb://report:${MONGO_PASSWORD}@db:27017"})
    with pytest.raises(
        ConfigError, match=r"\[mongodb\] host: environment variable MONGO_PASSWORD is not set"
    ):
        parse_config(text, {})


def test_a_password_written_in_the_file_is_refused_without_echoing_it():
    with pytest.raises(ConfigError, match=r"\[mongodb\] host = '<hidden>': holds a password") as error:
        parse_config(ini(mongodb={"host": "mongodb://report:hunter2@db:27017"}), {})
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize(
    "hours, cron",
    [
        (0.1, "*/6 * * * *"),
        (0.25, "*/15 * * * *"),
        (0.5, "*/30 * * * *"),
        (1, "0 */1 * * *"),
        (6, "0 */6 * * *"),
        (24, "0 0 * * *"),
    ],
)
def test_the_rescheduling_interval_becomes_a_cron(hours, cron):
    assert interval_cron(hours) == cron


@pytest.mark.parametrize("hours", [0.01, 0.7, 5, 48])
def test_an_interval_cron_cannot_express_is_refused(hours):
    with pytest.raises(ConfigError, match="time_interval_hours"):
        interval_cron(hours)
