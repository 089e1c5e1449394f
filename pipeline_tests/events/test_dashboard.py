"""The dashboard's pure page building, against hand-computed frames."""

import json
import re
from decimal import Decimal

import pandas as pd
import pytest

from pipeline.events import dashboard

T = pd.Timestamp("2019-10-01 00:00", tz="UTC")


def _m(minutes: int) -> pd.Timestamp:
    return T + pd.Timedelta(minutes=minutes)


def _at(seconds: int) -> pd.Timestamp:
    return pd.Timestamp("2026-11-01 10:00:00", tz="UTC") + pd.Timedelta(seconds=seconds)


def test_combine_totals_outer_joins_events_and_fills_missing_with_zero():
    views = pd.DataFrame({"minute": [_m(0), _m(2)], "views": [Decimal(5), Decimal(7)]})  # SQL sum(bigint) is numeric
    purchases = pd.DataFrame({"minute": [_m(2), _m(1)], "purchases": [Decimal(2), Decimal(1)], "gmv": [3.0, 10.5]})
    out = dashboard.combine_totals({"view": views, "purchase": purchases}, "minute")
    expected = pd.DataFrame({"minute": [_m(0), _m(1), _m(2)], "views": [5, 0, 7], "purchases": [0, 1, 2],
                             "gmv": [0.0, 10.5, 3.0]})
    pd.testing.assert_frame_equal(out, expected, check_dtype=False)
    assert out["views"].dtype == "int64" and out["gmv"].dtype == "float64"


def test_combine_totals_of_a_single_event_or_nothing():
    views = pd.DataFrame({"hour": [T], "views": [3]})
    out = dashboard.combine_totals({"view": views}, "hour")
    assert out.to_dict("records") == [{"hour": T, "views": 3, "purchases": 0, "gmv": 0.0}]
    assert dashboard.combine_totals({"view": views.iloc[:0]}, "hour").empty


def _manifest(*entries):
    return {"hour": T.isoformat(), "files": {
        name: {"name": name, "minute": minute.isoformat(), "server": server, "status": status,
               "claimed_at": claimed.isoformat(), "size": 1, "sha256": "x"}
        for name, minute, server, status, claimed in entries}}


def test_a_file_claimed_after_a_later_minute_is_late():
    files = dashboard.manifest_frame([
        _manifest(("a", _m(0), "s1", "accepted", _at(0)),   # before every later minute's claim
                  ("c", _m(0), "s2", "accepted", _at(7)),   # minute 2 was claimed at :04
                  ("b", _m(1), "s1", "accepted", _at(5))),  # minute 2 was claimed at :04
        _manifest(("e", _m(2), "s1", "accepted", _at(4)),   # newest minute: never late
                  ("f", _m(2), "s2", "quarantined", _at(4))),
    ])
    late = dict(zip(files["name"], files["late"]))
    assert late == {"a": False, "c": True, "b": True, "e": False, "f": False}


def test_same_second_claims_are_on_time():
    files = dashboard.manifest_frame([_manifest(("a", _m(0), "s1", "accepted", _at(3)),
                                                ("b", _m(1), "s1", "accepted", _at(3)))])
    assert not files["late"].any()


def test_files_per_minute_by_server_and_by_arrival():
    files = dashboard.manifest_frame([_manifest(
        ("a", _m(0), "s1", "accepted", _at(0)), ("b", _m(0), "s2", "accepted", _at(9)),
        ("c", _m(0), "s2", "quarantined", _at(9)), ("d", _m(1), "s1", "accepted", _at(5)))])
    by_server = dashboard.files_per_minute(files, "server")
    assert by_server.values.tolist() == [[_m(0), "s1", 1], [_m(0), "s2", 2], [_m(1), "s1", 1]]
    by_arrival = dashboard.files_per_minute(files, "arrival")
    # b is late (minute 1 claimed at :05); c was claimed late too, but quarantined wins
    assert by_arrival.values.tolist() == [[_m(0), "late", 1], [_m(0), "on time", 1], [_m(0), "quarantined", 1],
                                          [_m(1), "on time", 1]]


def test_no_manifests_give_an_empty_frame_with_the_columns():
    files = dashboard.manifest_frame([])
    assert files.empty and list(files.columns) == ["name", "minute", "server", "status", "claimed_at", "landed_at",
                                              "in_t1_at", "late"]


def test_quarantine_entries_newest_first_with_their_reason():
    frame = dashboard.quarantine_frame([
        ("quarantine/20261101T100000000001-bad.csv.reason.json", json.dumps({"file": "bad.csv", "reason": "empty"})),
        ("quarantine/20261101T110000000000-2019-10-01-00-01-00-s1.csv.reason.json", "{not json"),
    ])
    assert frame["file"].tolist() == ["2019-10-01-00-01-00-s1.csv", "bad.csv"]
    assert frame["reason"].tolist() == ["unreadable reason file", "empty"]
    assert frame["when"].tolist() == [pd.Timestamp("2026-11-01 11:00", tz="UTC"),
                                      pd.Timestamp("2026-11-01 10:00:00.000001", tz="UTC")]


def test_last_hour_is_the_60_minutes_ending_at_the_newest():
    minutes = pd.DataFrame({"minute": [_m(0), _m(1), _m(60)], "views": [100, 2, 3], "purchases": [100, 1, 1],
                            "gmv": [1000.0, 2.5, 4.0]})
    assert dashboard.last_hour(minutes, _m(60)) == {"views": 5, "purchases": 2, "gmv": 6.5}  # minute 0 is out
    assert dashboard.last_hour(minutes, None) == {"views": 0, "purchases": 0, "gmv": 0.0}


def _rank(dimension, keys, metric, values):
    return pd.DataFrame({dimension: keys, metric: values, "rank": range(1, len(keys) + 1)})


def test_top_markdown_puts_dimensions_side_by_side_purchases_first():
    top = {
        ("purchase", "product_id"): _rank("product_id", [7, 3], "gmv", [120.5, 99.0]),
        ("purchase", "brand"): _rank("brand", ["acme|co"], "gmv", [219.5]),
        ("view", "product_id"): _rank("product_id", [3], "view_count", [40]),  # purchases shown instead
        ("view", "category_l3"): _rank("category_l3", ["tv"], "view_count", [1234]),  # no purchase ranking
    }
    assert dashboard.top_markdown(top) == "\n".join([
        "| # | products | gmv | brands | gmv | categories | view_count |",
        "|---:|---|---:|---|---:|---|---:|",
        "| 1 | 7 | 120.50 | acme\\|co | 219.50 | tv | 1,234 |",
        "| 2 | 3 | 99.00 |  |  |  |  |",
    ])
    assert dashboard.top_markdown({("purchase", "brand"): _rank("brand", [], "gmv", [])}) == "no rankings yet"


def _data(**overrides) -> dashboard.DashboardData:
    fields = dict(
        generated_at=pd.Timestamp("2026-11-01 12:00", tz="UTC"), newest_minute=_m(1),
        minutes=pd.DataFrame({"minute": [_m(0), _m(1)], "views": [10, 20], "purchases": [1, 2], "gmv": [5.0, 7.25]}),
        hours=pd.DataFrame({"hour": [T], "views": [30], "purchases": [3], "gmv": [12.25]}),
        top={("purchase", "brand"): _rank("brand", ["</script><b>x"], "gmv", [12.25]),
             ("view", "brand"): _rank("brand", ["acme"], "view_count", [30])},
        files=dashboard.manifest_frame([_manifest(("a", _m(0), "s1", "accepted", _at(0)),
                                                  ("b", _m(1), "s1", "accepted", _at(1)))]),
        quarantine=dashboard.quarantine_frame([("quarantine/20261101T100000000000-<img src=x>.reason.json",
                                                '{"reason": "bad file name"}')]),
        quarantined_total=1, waiting=4)
    fields.update(overrides)
    return dashboard.DashboardData(**fields)


def _specs(page: str) -> dict:
    return json.loads(re.search(r"const specs = (\{.*\});\n", page).group(1))


def test_page_holds_every_chart_with_its_data_and_the_tiles():
    page = dashboard.render_page(_data(), bundle="/* vega bundle */")
    assert "/* vega bundle */" in page and "cdn" not in page.lower() and "<script src" not in page
    specs = _specs(page)
    assert list(specs) == ["minute-gmv", "minute-views", "hour-gmv", "hour-views", "top-purchase-brand",
                           "top-view-brand", "files-server", "files-arrival"]
    for chart_id in specs:
        assert f'id="{chart_id}"' in page
    minute_rows = next(iter(specs["minute-gmv"]["datasets"].values()))
    assert [(r["minute"], r["gmv"]) for r in minute_rows] == [("2019-10-01T00:00:00Z", 5.0),
                                                               ("2019-10-01T00:01:00Z", 7.25)]
    tiles = re.findall(r'<div class="label">([^<]*)</div><div class="value">([^<]*)</div>', page)
    assert tiles == [("t1 lag, wall clock", "n/a"), ("t1 lag, landing", "n/a"), ("landing → t1 p95", "n/a"),
                     ("GMV, last hour", "12.25"), ("purchases, last hour", "3"), ("views, last hour", "30"),
                     ("files claimed", "2"), ("late files", "0"), ("quarantined", "1"), ("waiting in landing/", "4")]


def _timed(name, minute, claimed, landed, in_t1):
    """A manifest entry with the times the claim and t1 record (ISO, as layout.FileEntry holds them)."""
    return {"name": name, "minute": minute.isoformat(), "server": "s1", "status": "accepted",
            "claimed_at": claimed.isoformat(), "landed_at": landed.isoformat() if landed is not None else "",
            "in_t1_at": in_t1.isoformat() if in_t1 is not None else "", "size": 1, "sha256": "x"}


def test_landing_to_t1_p95_of_the_last_hour_for_every_file_and_the_live_ones():
    files = dashboard.manifest_frame([{"hour": T.isoformat(), "files": {e["name"]: e for e in [
        _timed("a", _m(0), _at(5), _at(0), _at(8)),  # 8 s
        _timed("b", _m(0), _at(6), _at(1), _at(13)),  # 12 s
        _timed("c", _m(1), _at(65), _at(60), _at(80)),  # 20 s
        _timed("d", _m(0), _at(125), _at(120), _at(160)),  # 40 s, late: minute 1 was claimed at :65
        _timed("e", _m(1), _at(66), _at(-9000), _at(-7000)),  # reached t1 more than an hour before now
        _timed("f", _m(1), _at(67), _at(62), None),  # not in t1 (yet)
    ]}}])
    assert dict(zip(files["name"], files["late"]))["d"]
    latency = dashboard.landing_to_t1(files, now=_at(1800))
    # p95 with the higher value: of [8, 12, 20, 40] the 4th, of the live [8, 12, 20] the 3rd
    assert latency == {"p95_s": 40.0, "files": 4, "live_p95_s": 20.0, "live_files": 3}
    page = dashboard.render_page(_data(files=files, generated_at=_at(1800), lag_wall_clock=pd.Timedelta(seconds=45),
                                       lag_landing=pd.Timedelta(minutes=3)), bundle="")
    tiles = re.findall(r'<div class="label">([^<]*)</div><div class="value">([^<]*)</div>', page)
    assert tiles[:3] == [("t1 lag, wall clock", "45 s"), ("t1 lag, landing", "3.0 min"),
                         ("landing → t1 p95", "40.0 s")]
    assert "4 files in t1 in the last hour; live files 20.0 s" in page


def test_data_cannot_break_out_of_the_page():
    page = dashboard.render_page(_data(), bundle="")
    assert "</script><b>x" not in page  # a brand name inside the specs' JSON stays inside its <script>
    assert "<img src=x>" not in page and "&lt;img src=x&gt;" in page  # a file name in the quarantine table
    rows = next(iter(_specs(page)["top-purchase-brand"]["datasets"].values()))
    assert rows[0]["key"] == "</script><b>x"  # ... and still reaches the chart as it is


def test_an_empty_platform_renders_placeholders_and_no_charts():
    empty = _data(newest_minute=None, minutes=dashboard.combine_totals({}, "minute"),
                  hours=dashboard.combine_totals({}, "hour"),
                  top={("purchase", "brand"): _rank("brand", [], "gmv", [])},
                  files=dashboard.manifest_frame([]), quarantine=dashboard.quarantine_frame([]), quarantined_total=0)
    page = dashboard.render_page(empty, bundle="")
    assert _specs(page) == {}
    assert page.count("no data yet") == 7 and "nothing quarantined" in page and "newest minute none yet" in page


@pytest.mark.slow
def test_the_bundle_is_the_offline_vega_embed_from_the_wheel():
    bundle = dashboard.vega_bundle()
    assert "window.vegaEmbed" in bundle and "</script" not in bundle.lower()
