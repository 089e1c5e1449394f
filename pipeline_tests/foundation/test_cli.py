"""`clickflow generate` and `clickflow replay` do what they say, through the real entry point."""


import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.events.schema import COLUMNS, parse_file_name
from pipeline.resources.lake import LocalLake


def test_generate_then_replay(tmp_path, monkeypatch):
    out = tmp_path / "files"
    assert main(["generate", "--out", str(out), "--start", "2019-10-01T05:00", "--minutes", "5",
                 "--events-per-minute", "400", "--servers", "3", "--seed", "3"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 15
    assert names[0] == "2019-10-01-05-00-00-server1.csv" and names[-1] == "2019-10-01-05-04-00-server3.csv"
    frames = []
    for path in out.iterdir():
        frame = pd.read_csv(path)
        assert tuple(frame.columns) == COLUMNS
        minute = parse_file_name(path.name).minute
        times = pd.to_datetime(frame["event_time"].str.replace(" UTC", ""), utc=True)
        assert (times.dt.floor("min") == minute).all()
        frames.append(frame)
    events = pd.concat(frames)
    assert len(events) == 5 * 400
    assert 0.10 <= events["brand"].isna().mean() <= 0.20
    assert 0.24 <= events["category_code"].isna().mean() <= 0.36
    assert 0.94 <= (events["event_type"] == "view").mean() <= 0.98  # the realistic shape: 96 % views

    lake_dir = tmp_path / "lake"
    monkeypatch.setenv("PIPELINE_LAKE_URL", str(lake_dir))
    monkeypatch.setenv("PIPELINE_HOME", str(tmp_path / "home"))
    assert main(["replay", str(out), "--late", "0.2", "--seed", "1"]) == 0
    landed = sorted(o.name for o in LocalLake(lake_dir).list("landing/"))
    assert landed == names  # every file landed once (late ones last)
    assert LocalLake(lake_dir).read_bytes(f"landing/{names[0]}") == (out / names[0]).read_bytes()


def test_generate_simple_gives_the_first_generators_shape(tmp_path):
    out = tmp_path / "files"
    assert main(["generate", "--out", str(out), "--minutes", "5", "--events-per-minute", "400", "--simple"]) == 0
    events = pd.concat([pd.read_csv(path) for path in out.iterdir()])
    assert len(events) == 5 * 400
    assert 0.86 <= (events["event_type"] == "view").mean() <= 0.94  # 90 % views
    assert events["user_session"].nunique() == pytest.approx(5 * 20 + 80, rel=0.05)  # 20 new a minute + 80


def test_a_bad_setting_is_a_clear_error_and_exit_code_2(monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_T1_RETENTION_HOURS", "-3")
    assert main(["status"]) == 2
    assert "PIPELINE_T1_RETENTION_HOURS='-3'" in capsys.readouterr().out


def test_replay_of_a_missing_folder_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_LAKE_URL", str(tmp_path / "lake"))
    assert main(["replay", str(tmp_path / "nope")]) == 2
    assert "clickflow generate" in capsys.readouterr().out


def test_generate_writes_each_groups_sample_input_into_the_lake(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("PIPELINE_HOME", str(tmp_path / "home"))
    lake = LocalLake(tmp_path / "lake")
    for group, prefix in [("insights", "insights/events/"), ("clickstream", "clickstream/"), ("b2b", "b2b/"),
                          ("basket", "basket/")]:
        assert main(["generate", group]) == 0
        assert list(lake.list(prefix)), f"{group} wrote nothing under {prefix}"
