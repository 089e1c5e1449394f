"""`clickflow generate` and `clickflow replay` do what they say, through the real entry point;
`clickflow process` says in one line when PostgreSQL cannot be reached."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.events.schema import COLUMNS, parse_file_name
from pipeline.resources.lake import LocalLake
from pipeline_tests import processes


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


def _closed_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process(tmp_path, **env) -> subprocess.CompletedProcess:
    """The real `clickflow process` command, in a clean environment pointed at ``env``."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PIPELINE_", "DAGSTER_", "CLICKFLOW_"))}
    home = Path(tempfile.mkdtemp(prefix="cf-pg-", dir="/tmp"))  # short: unix sockets
    clean.update(PIPELINE_HOME=str(home), PIPELINE_LAKE_URL=str(tmp_path / "lake"), **env)
    try:
        return processes.run([str(Path(sys.executable).with_name("clickflow")), "process"], env=clean,
                             capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_an_unreachable_postgresql_is_one_clear_line_without_the_password(tmp_path, pg_url):
    """Issue 15: `clickflow process` ended with a DagsterPostgresException traceback."""
    port = _closed_port()
    result = _process(tmp_path, PIPELINE_PG_URL=f"postgresql://clicky:s3cr3t-pw@127.0.0.1:{port}/analytics")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output and "s3cr3t-pw" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith(f"error: cannot reach PostgreSQL at 127.0.0.1:{port} (database analytics, from "
                               "PIPELINE_PG_URL): Connection refused. Check that the server is running")
    assert "PIPELINE_PG_URL" in lines[0].split("Check", 1)[1]

    # The warehouse reachable, Dagster's storage not: the line names the other variable.
    dagster_url = f"postgresql://dagster:0ther-secret@127.0.0.1:{port}/dagster"
    result = _process(tmp_path, PIPELINE_PG_URL=pg_url, PIPELINE_DAGSTER_PG_URL=dagster_url)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output and "0ther-secret" not in output
    [line] = [line for line in output.splitlines() if line.strip()]
    assert line.startswith(f"error: cannot reach PostgreSQL at 127.0.0.1:{port} (database dagster, from "
                           "PIPELINE_DAGSTER_PG_URL): Connection refused.")


def test_a_refused_login_names_the_server_not_the_password(pg_url):
    from pipeline.resources.warehouse import WarehouseError, check_reachable

    parts = urlsplit(pg_url)
    query = f"?{parts.query}" if parts.query else ""
    wrong = f"postgresql://nobody_here:pa55word-x@{parts.hostname or ''}{parts.path}{query}"
    with pytest.raises(WarehouseError) as error:
        check_reachable(wrong, "PIPELINE_PG_URL")
    message = str(error.value)
    assert "pa55word-x" not in message and "\n" not in message
    assert 'role "nobody_here" does not exist' in message
    socket_dir = parse_qs(parts.query)["host"][0]
    assert message.startswith(f"cannot reach PostgreSQL at the unix socket in {socket_dir} (database {parts.path[1:]}, "
                              "from PIPELINE_PG_URL): ")
