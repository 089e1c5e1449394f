"""The Dagster UI and the dashboard in a real browser.

Headless Chromium (Debian's package; `make browser` installs it) loads the pages a user opens
after `make dev`, served by the real webserver while the real daemon processes landed files.
Assertions read the rendered DOM (``--dump-dom``); screenshots are kept under
``pipeline_tests/artifacts/`` for a person to look at.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile

import pytest

from pipeline.events.dashboard_asset import DASHBOARD_KEY
from pipeline_tests.events.platform_fixture import sample_files
from pipeline_tests import processes
from pipeline_tests.live_dagster import ROOT, live_dagster

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = ROOT / "pipeline_tests" / "artifacts"
EVENT_ASSETS = ("raw_files", "t1_minute", "t2_hour", "rankings", "archive", "t1_retention", "t2_retention",
                "dashboard")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH: `make browser` installs Debian's package"),
]

SENSOR_RUNS = """
query { runsOrError(filter: {tags: [{key: "dagster/sensor_name", value: "landing_sensor"}]}) {
  ... on Runs { results { runId status jobName } } } }"""
DASHBOARD_MATERIALIZATIONS = """
query { assetOrError(assetKey: {path: ["events", "dashboard"]}) {
  ... on Asset { assetMaterializations(limit: 1) { runId } } } }"""


def browse(url: str, name: str, window: tuple[int, int] = (1600, 1000)) -> str:
    """Load ``url`` in headless Chromium; save its screenshot and DOM as artifacts; return the DOM."""
    ARTIFACTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cf-chromium-") as profile:
        result = processes.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}", "--virtual-time-budget=15000",
             f"--screenshot={ARTIFACTS / (name + '.png')}", "--dump-dom", url],
            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    dom = result.stdout.decode()
    (ARTIFACTS / f"{name}.html").write_text(dom)
    return dom


def visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.DOTALL)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


@pytest.fixture(scope="module")
def dagster(tmp_path_factory):
    """The platform after one minute batch: the sensor's ingest run and the automation's
    rankings + dashboard run have finished."""
    root = tmp_path_factory.mktemp("ui")
    with live_dagster(root / "lake", ARTIFACTS / "logs") as live:
        for name, data in sample_files("2019-10-01 00:00", 3, events_per_minute=400):
            live.lake.write_bytes(f"landing/{name}", data)
        live.lake.write_bytes("landing/2019-10-01-00-01-00-broken.csv", b"")  # an empty file: quarantined

        def sensor_runs_done():
            runs = live.graphql(SENSOR_RUNS)["runsOrError"]["results"]
            return runs if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs) else None

        runs = live.wait(sensor_runs_done, 150, "the sensor-triggered run")
        assert [(r["jobName"], r["status"]) for r in runs] == [("events_ingest", "SUCCESS")]
        live.wait(lambda: live.graphql(DASHBOARD_MATERIALIZATIONS)["assetOrError"]["assetMaterializations"], 150,
                  "the automation sensor to build the dashboard")

        def t1_fresh():
            evaluation = live.latest_check(["events", "t1_minute"], "t1_freshness")
            return evaluation and evaluation["metadata"].get("newest_minute") == "2019-10-01 00:02:00+00:00"

        live.wait(t1_fresh, 120, "the daemon's freshness check of t1 after the run")
        yield live


def test_asset_graph_shows_every_event_asset(dagster):
    text = visible_text(browse(f"{dagster.url}/locations/clickflow/asset-groups/events", "graph"))
    for asset in EVENT_ASSETS:
        assert asset in text, f"{asset} is not on the events graph"
    assert "4 / 4 Passed" in text  # t1_minute's blocking checks (the sensor's run) and its freshness (the daemon)


def test_partition_page_counts_the_hours_and_shows_the_materialization(dagster):
    url = f"{dagster.url}/assets/events/t1_minute?view=partitions&partition=2019-10-01-00%3A00"
    text = visible_text(browse(url, "partitions"))
    assert "48 Partitions" in text  # two days of hours (PIPELINE_PARTITIONS_START/END)
    assert "Materialized (1)" in text and "Missing (47)" in text
    # the selected hour's metadata, as the asset reported it: 3 minutes from 6 files
    assert re.search(r"minutes_recomputed\s+3\b", text) and re.search(r"files_read\s+6\b", text)


def test_runs_list_shows_the_sensor_run_and_the_automation_run(dagster):
    text = visible_text(browse(f"{dagster.url}/runs", "runs"))
    assert "events_ingest" in text and "landing_sensor" in text
    assert "events_automation" in text and "dashboard" in text
    assert text.count("Success") >= 2 and "Failure" not in text


def test_dashboard_renders_its_charts_offline(dagster):
    path = dagster.lake.path(DASHBOARD_KEY)
    page = path.read_text()
    charts = list(json.loads(re.search(r"const specs = (\{.*\});\n", page).group(1)))
    assert len(charts) == 12  # GMV and views per minute and per hour, 6 top charts, 2 health charts
    dom = browse(path.as_uri(), "dashboard", window=(1600, 2000))
    for chart_id in charts:  # vega-embed replaced each placeholder with an SVG drawing
        assert re.search(rf'id="{chart_id}"[^>]*>\s*<svg', dom), f"chart {chart_id} did not render"
    text = visible_text(dom)
    assert "chart failed" not in text
    assert "top brands by GMV" in text and "files per minute by server" in text
    assert "2019-10-01-00-01-00-broken.csv" in text and "file is empty" in text
