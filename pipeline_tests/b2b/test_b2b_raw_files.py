"""``b2b/raw_files`` uses the day's files a user landed, generates a day only when none of its three
raw files is there, and refuses a day with some of them (issue 15: it overwrote every day)."""

import datetime as dt

import dagster as dg
import pytest

from pipeline.b2b import generate, storage
from pipeline.b2b.assets import RAW_FILES, build_assets
from pipeline.b2b.transform import PandasEngine
from pipeline.resources.lake import LakeResource

START = dt.date(2024, 1, 1)


@pytest.fixture
def raw_files(lake):
    """The asset, and the init files in the lake (what ``b2b/init`` leaves there)."""
    tables = generate.init_tables(until=START - dt.timedelta(days=1), rows=300, seed=0)
    for key, text in generate.init_files(tables).items():
        lake.write_text(key, text)
    [asset] = [a for a in build_assets(START, PandasEngine()) if RAW_FILES in a.keys]
    return asset


def materialize(asset, lake, day: dt.date, **config):
    return dg.materialize(
        [asset], partition_key=day.isoformat(), resources={"lake": LakeResource(url=str(lake.root))},
        run_config={"ops": {RAW_FILES.to_python_identifier(): {"config": {"rows": 50, **config}}}},
        raise_on_error=False,
    )


def day_keys(day: dt.date) -> list[str]:
    return ([storage.raw_key(day, name) for name in storage.RAW_FILES]
            + [storage.change_key(kind, day) for kind in storage.CHANGE_KINDS])


def snapshot(lake, day: dt.date) -> dict[str, bytes]:
    return {key: lake.read_bytes(key) for key in day_keys(day) if lake.exists(key)}


def test_a_users_own_day_is_kept_byte_for_byte(raw_files, lake):
    # The user's files: another seed than the asset's default, so a regeneration would differ.
    universe = generate.init_tables(until=START - dt.timedelta(days=1), rows=300, seed=0)
    own = generate.day_files(START, universe, rows=40, seed=7)
    own[storage.raw_key(START, storage.WEBLOG_FILE)] += "a line only the user wrote\n"
    for key, text in own.items():
        lake.write_text(key, text)
    result = materialize(raw_files, lake, START)
    assert result.success
    assert snapshot(lake, START) == {key: text.encode() for key, text in own.items()}
    metadata = result.asset_materializations_for_node("b2b__raw_files")[0].metadata
    assert metadata["generated"].value == []
    assert metadata["kept"].value == [lake.uri(key) for key in day_keys(START)]
    assert metadata["dagster/row_count"].value == sum(text.count("\n") for text in own.values())


def test_an_absent_day_is_generated_once_and_never_overwritten(raw_files, lake):
    day = START + dt.timedelta(days=1)
    first = materialize(raw_files, lake, day, seed=0)
    assert first.success
    generated = snapshot(lake, day)
    assert sorted(generated) == sorted(day_keys(day))
    universe = generate.init_tables(until=START - dt.timedelta(days=1), rows=300, seed=0)
    assert generated == {k: t.encode() for k, t in generate.day_files(day, universe, rows=50, seed=0).items()}
    # Materialized again with another seed (as the demo did): the day keeps its files.
    again = materialize(raw_files, lake, day, seed=3)
    assert again.success and snapshot(lake, day) == generated
    # ... unless asked to replace them.
    replaced = materialize(raw_files, lake, day, seed=3, regenerate=True)
    assert replaced.success
    assert snapshot(lake, day) == {k: t.encode() for k, t in generate.day_files(day, universe, rows=50, seed=3).items()}


def test_a_generated_day_keeps_a_company_file_the_user_landed(raw_files, lake):
    day = START + dt.timedelta(days=2)
    mine = "900001,Acme Landed By Hand\n"
    lake.write_text(storage.change_key("insert", day), mine)
    assert materialize(raw_files, lake, day).success
    assert lake.read_text(storage.change_key("insert", day)) == mine
    assert all(lake.exists(storage.raw_key(day, name)) for name in storage.RAW_FILES)


def test_a_day_with_only_some_of_its_raw_files_fails_naming_them(raw_files, lake):
    day = START + dt.timedelta(days=3)
    quotes = storage.raw_key(day, storage.QUOTES_FILE)
    lake.write_text(quotes, "only,this,file\n")
    result = materialize(raw_files, lake, day)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "2024-01-04: companycsv.csv is in" in message
    assert "but leadcsv.csv, weblogs.log are missing" in message
    assert "land the missing file(s), or remove the present one(s)" in message
    assert lake.read_text(quotes) == "only,this,file\n"  # nothing written
    assert sorted(o.key for o in lake.list(f"b2b/raw/{day}/")) == [quotes]
    assert not lake.exists(storage.change_key("insert", day))
