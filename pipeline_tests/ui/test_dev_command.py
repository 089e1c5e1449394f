"""`make dev` opens the UI on processed data: the demo runs first on a lake with nothing processed."""

import os

from pipeline import cli
from pipeline.resources.lake import LocalLake


def test_dev_runs_the_demo_only_while_nothing_is_processed(tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIPELINE_LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    calls = []
    monkeypatch.setattr(cli, "cmd_demo", lambda args: calls.append(("demo", args.minutes)) or 0)
    monkeypatch.setattr("pipeline.instance.prepare_instance", lambda settings: calls.append(("instance",)))
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append(("exec", argv[1:3])))

    assert cli.main(["dev"]) == 0
    assert calls == [("demo", 120), ("instance",), ("exec", ["dev", "-h"])]

    LocalLake(tmp_path / "lake").write_text("manifests/2019-10-01-00.json", "{}")  # the demo's first hour
    calls.clear()
    assert cli.main(["dev"]) == 0
    assert calls == [("instance",), ("exec", ["dev", "-h"])]

    LocalLake(tmp_path / "lake").delete("manifests/2019-10-01-00.json")
    calls.clear()
    assert cli.main(["dev", "--no-demo"]) == 0
    assert calls == [("instance",), ("exec", ["dev", "-h"])]
