"""Pure transforms against frames computed by hand."""

import datetime as dt

import pandas as pd
import pytest

from pipeline.clickstream import transform

D = pd.Timestamp


def daily_frame(rows: list[tuple]) -> pd.DataFrame:
    """(grouping, key, day, clicks[, rows]) tuples -> a daily-clicks frame."""
    return pd.DataFrame(
        [(g, k, D(day), clicks, extra[0] if extra else 1) for g, k, day, clicks, *extra in rows],
        columns=list(transform.DAILY_COLUMNS),
    )


def report_rows(frame: pd.DataFrame) -> list[tuple]:
    return [
        (
            r.grouping,
            r.key,
            r.date.strftime("%m-%d"),
            r.daily_clicks,
            r.rolling_clicks,
            r.start_date.strftime("%m-%d"),
        )
        for r in frame.itertuples()
    ]


@pytest.mark.parametrize(
    "value, unit, day",
    [
        (1704067200, "s", "2024-01-01"),  # 2024-01-01 00:00:00 UTC
        (1704153599, "s", "2024-01-01"),  # 23:59:59, still the 1st
        ("1704153600", "s", "2024-01-02"),  # CSV text
        (1704153600000, None, "2024-01-02"),  # pandas' JSON: milliseconds
        (1704153600, None, "2024-01-02"),  # seconds
        ("2024-01-02", None, "2024-01-02"),
        ("2024-01-02T01:00:00+02:00", None, "2024-01-01"),  # the UTC day, not the local one
        ("2024-01-02 23:30:00", None, "2024-01-02"),  # naive means UTC
        (dt.datetime(2024, 1, 2, 12), None, "2024-01-02"),  # Excel cell
        ("yesterday", None, None),
        (-5, None, None),
        (None, None, None),
    ],
)
def test_to_day_gives_the_utc_calendar_day(value, unit, day):
    result = transform.to_day(pd.Series([value], dtype=object), epoch_unit=unit).iloc[0]
    assert (result == D(day)) if day else pd.isna(result)


def test_normalize_renames_the_raw_columns_and_sets_aside_unusable_rows_with_reasons():
    raw = pd.DataFrame(
        {
            "user": [1, 2, 3, 4, 5],
            "time_stamp": [1704067200, "soon", 1704067200, 1704067200, 1704067200],
            "adgroup_id": ["A", "A", "A", None, "B"],
            "pid": ["p", "p", "p", "p", "q"],
            "nonclk": [0, 0, 0, 0, 1],
            "clk": [1, 1, -1, 1.5, 0],
        },
        dtype=object,
    )
    result = transform.normalize(
        raw,
        date_column="date",
        target_column="click_event",
        group_columns=["product_category", "product_name"],
    )
    expected = pd.DataFrame(
        {
            "date": [D("2024-01-01")] * 2,
            "click_event": [1, 0],
            "product_category": ["A", "B"],
            "product_name": ["p", "q"],
        }
    )
    pd.testing.assert_frame_equal(result.rows, expected, check_dtype=False)
    assert result.rejected["user"].tolist() == [2, 3, 4]
    assert result.rejected["reason"].tolist() == [
        "date: not a date or epoch time",
        "click_event: not a whole number >= 0",
        "click_event: not a whole number >= 0; product_category: missing",
    ]


def test_normalize_names_missing_columns_and_refuses_raw_and_renamed_together():
    with pytest.raises(transform.MissingColumns, match="missing column.*product_name") as error:
        transform.normalize(
            pd.DataFrame({"date": ["2024-01-01"], "click_event": [1], "product_category": ["A"]}),
            date_column="date",
            target_column="click_event",
            group_columns=["product_category", "product_name"],
        )
    assert error.value.missing == ("product_name",)
    with pytest.raises(transform.FileError, match="clk and click_event"):
        transform.rename_raw(pd.DataFrame({"clk": [1], "click_event": [1]}))


def test_daily_clicks_sums_per_key_and_day_for_single_and_joint_groupings():
    rows = pd.DataFrame(
        {
            "date": [D("2024-01-01")] * 4 + [D("2024-01-02")],
            "click_event": [1, 1, 0, 1, 0],
            "product_category": ["A", "A", "A", "B", "A"],
            "product_name": ["p", "q", "q", "p", "p"],
        }
    )
    daily = transform.daily_clicks(
        rows,
        [("product_category",), ("product_category", "product_name")],
        date_column="date",
        target_column="click_event",
    )
    expected = daily_frame(
        [
            ("product_category", "A", "2024-01-01", 2, 3),
            ("product_category", "A", "2024-01-02", 0, 1),  # seen, no click: kept with 0
            ("product_category", "B", "2024-01-01", 1, 1),
            ("product_category+product_name", '["A", "p"]', "2024-01-01", 1, 1),
            ("product_category+product_name", '["A", "p"]', "2024-01-02", 0, 1),
            ("product_category+product_name", '["A", "q"]', "2024-01-01", 1, 2),
            ("product_category+product_name", '["B", "p"]', "2024-01-01", 1, 1),
        ]
    )
    pd.testing.assert_frame_equal(daily, expected)


def test_joint_keys_stay_distinct_whatever_the_values_contain():
    rows = pd.DataFrame({"date": [D("2024-01-01")] * 2, "n": [1, 1], "a": ["x+y", "x"], "b": ["z", "y+z"]})
    daily = transform.daily_clicks(rows, [("a", "b")], date_column="date", target_column="n")
    assert sorted(daily["key"]) == ['["x", "y+z"]', '["x+y", "z"]']


# Daily clicks of one grouping g, used by the report tests below:
#   a: 01-01 -> 2, 01-03 -> 1, 01-07 -> 4
#   b: 01-02 -> 0 (rows, no clicks), 01-03 -> 5
DAILY = daily_frame(
    [
        ("g", "a", "2024-01-01", 2),
        ("g", "a", "2024-01-03", 1),
        ("g", "a", "2024-01-07", 4),
        ("g", "b", "2024-01-02", 0),
        ("g", "b", "2024-01-03", 5),
    ]
)


def test_report_fills_missing_days_with_zero_and_sums_the_trailing_period():
    report = transform.report(DAILY, pd.date_range("2024-01-01", "2024-01-08"), period=3)
    # (key, day, daily, rolling over the 3 days ending that day, start_date = day - 3)
    assert report_rows(report) == [
        ("g", "a", "01-01", 2, 2, "12-29"),
        ("g", "a", "01-02", 0, 2, "12-30"),
        ("g", "a", "01-03", 1, 3, "12-31"),
        ("g", "a", "01-04", 0, 1, "01-01"),
        ("g", "a", "01-05", 0, 1, "01-02"),
        # 01-06: nothing in 01-04..01-06, the key is not in that day's report
        ("g", "a", "01-07", 4, 4, "01-04"),
        ("g", "a", "01-08", 0, 4, "01-05"),
        ("g", "b", "01-02", 0, 0, "12-30"),
        ("g", "b", "01-03", 5, 5, "12-31"),
        ("g", "b", "01-04", 0, 5, "01-01"),
        ("g", "b", "01-05", 0, 5, "01-02"),
    ]


def test_period_one_is_the_daily_count_on_days_with_rows():
    report = transform.report(DAILY, pd.date_range("2024-01-01", "2024-01-08"), period=1)
    assert [(r[1], r[2], r[3], r[4]) for r in report_rows(report)] == [
        ("a", "01-01", 2, 2),
        ("a", "01-03", 1, 1),
        ("a", "01-07", 4, 4),
        ("b", "01-02", 0, 0),
        ("b", "01-03", 5, 5),
    ]


def test_a_weekly_report_carries_a_click_for_seven_days():
    daily = daily_frame([("g", "a", "2024-01-01", 1)])
    report = transform.report(daily, pd.date_range("2024-01-01", "2024-01-09"), period=7)
    assert [(r[2], r[3], r[4]) for r in report_rows(report)] == [
        ("01-01", 1, 1),
        ("01-02", 0, 1),
        ("01-03", 0, 1),
        ("01-04", 0, 1),
        ("01-05", 0, 1),
        ("01-06", 0, 1),
        ("01-07", 0, 1),
    ]


def test_a_single_day_reads_only_its_look_back_window():
    # Day 01-04 with period 3 reads 01-02..01-04; 01-01 and 01-07 must not count.
    report = transform.report(DAILY, [D("2024-01-04")], period=3)
    assert report_rows(report) == [("g", "a", "01-04", 0, 1, "01-01"), ("g", "b", "01-04", 0, 5, "01-01")]


def test_groupings_do_not_mix():
    daily = daily_frame(
        [("x", "k", "2024-01-01", 1), ("y", "k", "2024-01-01", 10), ("y", "k", "2024-01-02", 3)]
    )
    report = transform.report(daily, pd.date_range("2024-01-01", "2024-01-02"), period=2)
    assert report_rows(report) == [
        ("x", "k", "01-01", 1, 1, "12-30"),
        ("x", "k", "01-02", 0, 1, "12-31"),
        ("y", "k", "01-01", 10, 10, "12-30"),
        ("y", "k", "01-02", 3, 13, "12-31"),
    ]


def test_nothing_in_gives_an_empty_report_with_the_columns():
    assert list(transform.report(transform.empty_daily(), [D("2024-01-01")], 7).columns) == list(
        transform.REPORT_COLUMNS
    )
    assert transform.report(DAILY, [D("2024-03-01")], 7).empty


def test_marker_days():
    assert transform.marker_days(pd.DataFrame({"date": ["2024-01-02", "2024-01-01", "2024-01-02"]})) == [
        dt.date(2024, 1, 1),
        dt.date(2024, 1, 2),
    ]
    assert transform.marker_days(pd.DataFrame({"latest": ["2024-01-02"]})) is None
    assert transform.marker_days(pd.DataFrame({"date": ["2024-01-02", "soon"]})) is None
