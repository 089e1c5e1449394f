"""The code location loads the way Dagster's tools load it."""

import os
import sys
from pathlib import Path

import dagster as dg

from pipeline.definitions import build_definitions
from pipeline.settings import Settings
from pipeline_tests import processes

ROOT = Path(__file__).resolve().parents[2]


def test_dagster_definitions_validate_passes(tmp_path):
    env = {**os.environ, "PIPELINE_HOME": str(tmp_path), "PIPELINE_PARTITIONS_START": "2019-10-01",
           "PIPELINE_PARTITIONS_END": "2019-10-08", "DAGSTER_HOME": str(tmp_path)}
    result = processes.run([str(Path(sys.executable).with_name("dagster")), "definitions", "validate",
                             "-w", str(ROOT / "workspace.yaml")], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_every_asset_explains_itself():
    defs = build_definitions(Settings.from_env({"PIPELINE_PARTITIONS_START": "2019-10-01"}))
    specs = list(defs.resolve_all_asset_specs())
    events = {s.key.to_user_string(): s for s in specs if s.group_name == "events"}
    assert set(events) == {f"events/{name}" for name in ("raw_files", "t1_minute", "t2_hour", "rankings", "archive",
                                                          "t1_retention", "t2_retention", "dashboard")}
    groups = {s.group_name for s in specs}
    for spec in specs:  # one naming scheme: every key starts with its group
        assert spec.key.path[0] == spec.group_name, f"{spec.key} is not under its group {spec.group_name}"
    assert groups == {"events", "insights", "clickstream", "b2b", "basket"}
    for spec in specs:
        assert spec.description, f"{spec.key} has no description"
        assert spec.owners, f"{spec.key} has no owner"
        assert spec.kinds, f"{spec.key} has no kinds"
        assert spec.group_name != "default", f"{spec.key} has no group"
    assert events["events/t1_minute"].metadata["dagster/table_name"] == "events.purchase_product_id_minute"
    hourly = events["events/t1_minute"].partitions_def
    assert isinstance(hourly, dg.HourlyPartitionsDefinition)
    sensors = {s.name for s in defs.sensors}
    assert {"landing_sensor", "archive_sensor", "events_automation"} <= sensors


def test_loading_the_code_location_imports_no_library_only_one_group_uses():
    """Every run starts a process that loads the code location: libraries of one group's work are
    imported where that work happens, not when the definitions load."""
    heavy = ["altair", "vl_convert", "jinja2", "pymongo", "user_agents", "tldextract", "openpyxl", "duckdb",
             "pyspark", "dagster_pyspark", "boto3", "matplotlib"]
    code = ("import sys, pipeline.definitions as d; from pipeline.settings import Settings; "
            "d.build_definitions(Settings.from_env()).get_repository_def(); "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    env = {**os.environ, "PIPELINE_PARTITIONS_START": "2019-10-01", "PIPELINE_PARTITIONS_END": "2019-10-08",
           "PIPELINE_ENGINE": "pandas"}
    result = processes.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
