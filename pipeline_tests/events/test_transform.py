"""Pure transforms of the event stream against hand-computed expectations (DESIGN section 3).

Every expected frame below is written out literally; the two property tests at the end check
that results do not depend on file or row order and that hours merged from minutes equal hours
aggregated directly.
"""

from __future__ import annotations

import gzip
import hashlib
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.events.schema import COLUMNS
from pipeline.events.transform import (
    MAX_LINE_BYTES,
    TEXT,
    WRONG_FIELD_COUNT,
    BadFile,
    aggregate,
    aggregate_minutes,
    clean,
    dedupe_views,
    keep_events,
    merge_partials,
    metric_columns,
    read_events,
    read_file,
    read_table,
    rows_digest,
    stage,
    to_hour,
    validate,
)

HEADER = ",".join(COLUMNS)
MINUTE = pd.Timestamp("2019-10-01 00:00", tz="UTC")
NAN = np.nan


def csv(*rows: str, header: str = HEADER, newline: str = "\n") -> bytes:
    return newline.join([header, *rows, ""]).encode()


def text(*values) -> pd.array:
    return pd.array([NAN if v is None else v for v in values], dtype=TEXT)


def utc(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), utc=True)).astype("datetime64[ns, UTC]")


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def assert_frame(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(actual.reset_index(drop=True), expected, check_exact=True)


# ----------------------------------------------------------------------------------- read_events

ROW_A = '2019-10-01 00:00:05 UTC,view,1,10,electronics.smartphone,"samsung, inc",35.79,100,s1'
ROW_B = "2019-10-01 00:00:07 UTC,purchase,2,20,,NA,0.50,200,"

RAW_AB = pd.DataFrame({
    "event_time": text("2019-10-01 00:00:05 UTC", "2019-10-01 00:00:07 UTC"),
    "event_type": text("view", "purchase"),
    "product_id": text("1", "2"),
    "category_id": text("10", "20"),
    "category_code": text("electronics.smartphone", None),
    "brand": text("samsung, inc", "NA"),  # quoted comma kept; "NA" is a brand, not a missing value
    "price": text("35.79", "0.50"),
    "user_id": text("100", "200"),
    "user_session": text("s1", None),
    "_line": ints(2, 4),
})


def test_read_events_keeps_raw_text_and_line_numbers():
    data = csv(ROW_A, "", ROW_B)  # line 3 is blank: skipped, but still counted
    assert_frame(read_events(data, "2019-10-01-00-00-00-a.csv"), RAW_AB)


def test_read_events_crlf_gzip_and_byte_order_mark():
    data = csv(ROW_A, "", ROW_B, newline="\r\n")
    assert_frame(read_events(data, "x.csv"), RAW_AB)
    assert_frame(read_events(gzip.compress(data), "x.csv.gz"), RAW_AB)
    assert_frame(read_events(b"\xef\xbb\xbf" + data, "x.csv"), RAW_AB)


def test_read_events_accepts_columns_in_any_order():
    header = ",".join(reversed(COLUMNS))
    row = "s1,100,35.79,samsung,electronics.smartphone,10,1,view,2019-10-01 00:00:05 UTC"
    raw = read_events(csv(row, header=header), "x.csv")
    assert list(raw.columns) == [*COLUMNS, "_line"]
    assert raw.iloc[0].tolist() == [
        "2019-10-01 00:00:05 UTC", "view", "1", "10", "electronics.smartphone", "samsung", "35.79", "100",
        "s1", 2,
    ]


def test_read_events_accepts_a_line_at_the_limit():
    prefix = "2019-10-01 00:00:05 UTC,view,1,10,,"
    suffix = ",1.00,100,s1"
    brand = "b" * (MAX_LINE_BYTES - len(prefix) - len(suffix))
    raw = read_events(csv(prefix + brand + suffix, ROW_A), "x.csv")
    assert raw["brand"].str.len().tolist() == [MAX_LINE_BYTES - len(prefix) - len(suffix), 12]
    assert raw["_line"].tolist() == [2, 3]


EXPECTED_HEADER = "expected " + HEADER
TOO_LONG = "2019-10-01 00:00:05 UTC,view,1,10,,{},1.00,100,s1"


@pytest.mark.parametrize("data, name, message", [
    (b"", "x.csv", "file is empty"),
    (b"\n \r\n\t\n", "x.csv", "file is empty"),
    (gzip.compress(b""), "x.csv.gz", "file is empty"),
    (csv(), "x.csv", "file has a header but no rows"),
    (csv("", ""), "x.csv", "file has a header but no rows"),
    (csv(ROW_A, header=HEADER.replace("price", "prize")), "x.csv",
     f"header does not match: missing columns ['price'], unexpected ['prize']; {EXPECTED_HEADER}"),
    (csv(ROW_A + ",1", header=HEADER + ",price"), "x.csv",
     f"header does not match: repeated ['price']; {EXPECTED_HEADER}"),
    (csv(ROW_A + ",1", header=HEADER + ","), "x.csv", f"header does not match: column 10 has no name; {EXPECTED_HEADER}"),
    (csv("1,2", header="a,b"), "x.csv", "header does not match: missing columns ['event_time', 'event_type', "
     "'product_id', 'category_id', 'category_code', 'brand', 'price', 'user_id', 'user_session'], "
     f"unexpected ['a', 'b']; {EXPECTED_HEADER}"),
    (b"PK\x03\x04\x00\x00binary", "x.csv", "not UTF-8 text (binary?): NUL byte at offset 4"),
    (bytes([0xFF, 0xFE, 0x80, 0x81, 0x0A, 0x41]), "x.csv", "not UTF-8 text (binary?): the header line"),
    (csv(ROW_A, "") + ROW_A.replace("samsung", "samsXung").encode().replace(b"X", b"\xff") + b"\n",
     "x.csv", "not UTF-8 text (binary?): line 4"),
    (gzip.compress(csv(ROW_A, ROW_B))[:-12], "x.csv.gz", "gzip stream is truncated"),
    (csv(ROW_A), "x.csv.gz", "not a valid gzip file"),
    (gzip.compress(csv(ROW_A)), "x.csv", "gzip-compressed data in a file whose name does not end in .gz"),
    (csv(ROW_A, TOO_LONG.format("b" * MAX_LINE_BYTES)), "x.csv",
     f"line 3 is {len(TOO_LONG) - 2 + MAX_LINE_BYTES} bytes long; the limit is 1000000"),
    (csv('2019-10-01 00:00:05 UTC,view,1,10,,"a\nb",1.00,100,s1'), "x.csv",
     "found 1 rows on 2 lines: a quoted value contains a line break"),
    # A quoted line break in a line that also has a wrong field count is still a file problem.
    (csv(ROW_A, '2019-10-01 00:00:05 UTC,view,1,10,,"a\nb",1.00'), "x.csv",
     "found 2 rows on 3 lines: a quoted value contains a line break"),
])
def test_read_events_refuses_unusable_files(data, name, message):
    with pytest.raises(BadFile) as error:
        read_events(data, name)
    assert str(error.value).startswith(message)


SHORT = "2019-10-01 00:00:05 UTC,view,1,10,,b,1.00,100"  # 8 fields


def test_read_file_sets_aside_lines_with_a_wrong_field_count_and_keeps_the_others():
    data = csv(ROW_A, SHORT, "", ROW_A + ",extra", ROW_B, "  ")
    parsed = read_file(data, "x.csv")
    assert parsed.rows.column("_line").to_pylist() == [2, 6]
    assert parsed.rows.column("brand").to_pylist() == ["samsung, inc", "NA"]
    assert parsed.malformed.to_pylist() == [
        {"_line": 3, "_text": SHORT},
        {"_line": 5, "_text": ROW_A + ",extra"},
        {"_line": 7, "_text": "  "},
    ]
    assert parsed.extra is None and parsed.extra_columns == ()
    # CRLF line ends are not part of the kept text; gzip gives the same lines.
    crlf = read_file(gzip.compress(csv(ROW_A, SHORT, newline="\r\n")), "x.csv.gz")
    assert crlf.malformed.to_pylist() == [{"_line": 3, "_text": SHORT}]
    # A file whose every line is malformed is still a file of rows, all of them set aside.
    only = read_file(csv(SHORT, SHORT), "x.csv")
    assert only.rows.num_rows == 0 and only.malformed.column("_line").to_pylist() == [2, 3]


def test_read_file_finds_the_malformed_lines_of_a_large_file():
    """Large files are read on several threads; the set-aside lines must still be the right ones."""
    rows = [ROW_A] * 80_000  # ~ 8 MB: several read blocks
    rows[70_000] = "2019-10-01 00:00:05 UTC,view,1"
    rows[79_999] = ROW_A + ",x,y"
    parsed = read_file(csv(*rows), "x.csv")
    assert parsed.malformed.to_pylist() == [
        {"_line": 70_002, "_text": "2019-10-01 00:00:05 UTC,view,1"}, {"_line": 80_001, "_text": ROW_A + ",x,y"}]
    lines = parsed.rows.column("_line").to_numpy()
    assert len(lines) == 79_998 and 70_002 not in lines and 80_001 not in lines
    assert lines[70_000] == 70_003  # the row after the set-aside line keeps its own number
    data = bytearray(csv(*[ROW_A] * 80_000))
    data[data.rindex(b"samsung")] = 0xFF  # inside the last row
    with pytest.raises(BadFile, match=r"^not UTF-8 text \(binary\?\): line 80001$"):
        read_events(bytes(data), "x.csv")


def test_read_file_keeps_extra_columns_apart_in_any_column_order():
    header = "coupon," + ",".join(reversed(COLUMNS)) + ",channel"
    data = csv("C1,s1,100,35.79,samsung,electronics.smartphone,10,1,view,2019-10-01 00:00:05 UTC,web",
               ",,200,0.50,NA,,20,2,purchase,2019-10-01 00:00:07 UTC,app", header=header)
    parsed = read_file(data, "x.csv")
    assert parsed.extra_columns == ("coupon", "channel")
    assert parsed.extra.to_pylist() == [{"coupon": "C1", "channel": "web"}, {"coupon": None, "channel": "app"}]
    assert parsed.rows.column_names == [*COLUMNS, "_line"]
    assert parsed.rows.slice(0, 1).to_pylist() == [{
        "event_time": "2019-10-01 00:00:05 UTC", "event_type": "view", "product_id": "1", "category_id": "10",
        "category_code": "electronics.smartphone", "brand": "samsung", "price": "35.79", "user_id": "100",
        "user_session": "s1", "_line": 2}]
    # A line must have the header's field count, extra columns included.
    short = read_file(csv("C1,s1,100,35.79,samsung,,10,1,view,2019-10-01 00:00:05 UTC", header=header), "x.csv")
    assert short.rows.num_rows == 0 and short.malformed.column("_line").to_pylist() == [2]


def test_stage_rejects_malformed_lines_with_their_text_and_counts_every_line():
    header = HEADER + ",coupon"
    data = csv(ROW_A + ",C1", SHORT, ROW_B.replace("0.50", "x") + ",", ROW_A, header=header)
    staged = stage(data, "2019-10-01-00-00-00-a.csv", MINUTE)
    assert staged.rows == 4 and staged.malformed_rows == 2 and staged.extra_columns == ("coupon",)
    assert staged.cleaned.column("brand").to_pylist() == ["samsung, inc"]
    rejected = staged.rejected.to_pydict()
    assert rejected["_line"] == [3, 4, 5]
    assert rejected["reason"] == [WRONG_FIELD_COUNT, "bad price", WRONG_FIELD_COUNT]
    assert rejected["_text"] == [SHORT, None, ROW_A]
    assert rejected["price"] == [None, "x", None]
    assert staged.rejected.column_names == [*COLUMNS, "_line", "reason", "_text"]
    # Without malformed lines the rejected rows keep their columns, as before.
    plain = stage(csv(ROW_A, ROW_B.replace("0.50", "x")), "2019-10-01-00-00-00-a.csv", MINUTE)
    assert plain.rejected.column_names == [*COLUMNS, "_line", "reason"] and plain.malformed_rows == 0


# -------------------------------------------------------------------------------------- validate

def raw_frame(rows: list[dict]) -> pd.DataFrame:
    """Raw rows as a hand-built (object dtype) frame; unspecified fields take a valid default."""
    default = {
        "event_time": "2019-10-01 00:00:05 UTC", "event_type": "view", "product_id": "1",
        "category_id": "10", "category_code": "a.b", "brand": "acme", "price": "1.50",
        "user_id": "100", "user_session": "s1",
    }
    frame = pd.DataFrame([{**default, **row} for row in rows], columns=list(COLUMNS), dtype=object)
    frame["_line"] = np.arange(2, len(rows) + 2, dtype=np.int64)
    return frame


def test_validate_types_good_rows_and_gives_one_reason_per_rejected_row():
    raw = raw_frame([
        {},                                                                                   # 2 good
        {"event_time": "2019-10-01T00:00:59", "event_type": "purchase", "product_id": "2",
         "category_code": NAN, "brand": NAN, "price": "0", "user_session": NAN},             # 3 good
        {"event_time": "2019-10-01 00:00:00Z", "event_type": "cart",
         "product_id": "9223372036854775807", "price": "1e2"},                                # 4 good
        {"event_time": "2019-10-01 00:01:00 UTC"},                                            # 5
        {"event_time": "2019-09-30 23:59:59 UTC"},                                            # 6
        {"event_time": "2019-02-30 00:00:05 UTC"},                                            # 7
        {"event_time": NAN},                                                                  # 8
        {"event_type": "click"},                                                              # 9
        {"event_type": NAN},                                                                  # 10
        {"product_id": "12.0"},                                                               # 11
        {"product_id": "9223372036854775808"},                                                # 12
        {"category_id": NAN},                                                                 # 13
        {"price": "-1"},                                                                      # 14
        {"price": "nan"},                                                                     # 15
        {"price": "abc"},                                                                     # 16
        {"price": NAN},                                                                       # 17
        {"user_id": " 5"},                                                                    # 18
        {"event_time": "yesterday", "price": "abc", "user_id": "x"},                          # 19
    ])
    good, rejected = validate(raw, MINUTE)

    assert_frame(good, pd.DataFrame({
        "event_time": utc("2019-10-01 00:00:05", "2019-10-01 00:00:59", "2019-10-01 00:00:00"),
        "event_type": text("view", "purchase", "cart"),
        "product_id": ints(1, 2, 9223372036854775807),
        "category_id": ints(10, 10, 10),
        "category_code": text("a.b", None, "a.b"),
        "brand": text("acme", None, "acme"),
        "price": [1.5, 0.0, 100.0],
        "user_id": ints(100, 100, 100),
        "user_session": text("s1", None, "s1"),
        "minute": utc("2019-10-01 00:00", "2019-10-01 00:00", "2019-10-01 00:00"),
    }))
    assert list(rejected.columns) == [*COLUMNS, "_line", "reason"]
    assert rejected["_line"].tolist() == list(range(5, 20))
    assert rejected["reason"].tolist() == [
        "event_time outside the file's minute", "event_time outside the file's minute",
        "bad event_time", "bad event_time", "unknown event_type", "unknown event_type",
        "bad product_id", "bad product_id", "bad category_id",
        "bad price", "bad price", "bad price", "bad price", "bad user_id", "bad event_time",
    ]
    # Rejected rows are the raw text, untouched.
    assert rejected.loc[rejected["_line"] == 16, "price"].item() == "abc"
    assert rejected.loc[rejected["_line"] == 11, "product_id"].item() == "12.0"


@pytest.mark.parametrize("value, expected", [
    ("2019-10-01 00:00:42 UTC", "2019-10-01 00:00:42"),
    ("2019-10-01 00:00:42", "2019-10-01 00:00:42"),
    ("2019-10-01T00:00:42", "2019-10-01 00:00:42"),
    ("2019-10-01T00:00:42Z", "2019-10-01 00:00:42"),
])
def test_validate_event_time_formats(value, expected):
    good, rejected = validate(raw_frame([{"event_time": value}]), MINUTE)
    assert rejected.empty
    assert good["event_time"].tolist() == [pd.Timestamp(expected, tz="UTC")]


@pytest.mark.parametrize("column, value, reason", [
    ("event_time", "2019-10-01 00:00:42 CET", "bad event_time"),
    ("event_time", "2019-10-01 0:0:42", "bad event_time"),
    ("event_time", "2019-10-01 00:00:60", "bad event_time"),
    ("event_time", "2019-10-01 24:00:00", "bad event_time"),
    ("event_time", "2019-10-01", "bad event_time"),
    ("event_time", "2019-10-01 00:00:42.5", "bad event_time"),
    ("event_time", "", "bad event_time"),
    ("event_type", "VIEW", "unknown event_type"),
    ("event_type", "view ", "unknown event_type"),
    ("product_id", "-5", "bad product_id"),
    ("product_id", "0x10", "bad product_id"),
    ("product_id", "+5", "bad product_id"),
    ("product_id", NAN, "bad product_id"),
    ("category_id", "1.5", "bad category_id"),
    ("price", "inf", "bad price"),
    ("price", "-0.01", "bad price"),
    ("price", "1,5", "bad price"),
    ("price", "1e400", "bad price"),
    ("user_id", NAN, "bad user_id"),
    ("user_id", "١٢", "bad user_id"),  # Arabic-Indic digits are not plain digits
])
def test_validate_rejects_bad_values(column, value, reason):
    good, rejected = validate(raw_frame([{}, {column: value}]), MINUTE)
    assert len(good) == 1
    assert rejected["reason"].tolist() == [reason]
    assert rejected["_line"].tolist() == [3]


def test_validate_only_accepts_the_given_event_types():
    raw = raw_frame([{"event_type": "view"}, {"event_type": "purchase"}])
    good, rejected = validate(raw, MINUTE, event_types=("view",))
    assert good["event_type"].tolist() == ["view"]
    assert rejected["reason"].tolist() == ["unknown event_type"]


def test_validate_on_read_events_output():
    good, rejected = validate(read_events(csv(ROW_A, ROW_B), "x.csv"), MINUTE)
    assert rejected.empty
    assert good["brand"].tolist() == ["samsung, inc", "NA"]
    assert good["price"].tolist() == [35.79, 0.5]


# ----------------------------------------------------------------------------------------- clean

def test_clean_fills_brand_and_category_and_splits_levels():
    good = pd.DataFrame({
        "product_id": ints(1, 2, 3, 4, 5),
        "category_id": ints(10, 20, 30, 40, 50),
        "category_code": text("electronics.smartphone", None, "a.b.c.d", "appliances", "a..c"),
        "brand": text("samsung", None, "x", "y", "z"),
        "price": [1.0, 2.0, 3.0, 4.0, 5.0],
    })
    assert_frame(clean(good), pd.DataFrame({
        "product_id": ints(1, 2, 3, 4, 5),
        "category_id": ints(10, 20, 30, 40, 50),
        "category_code": text("electronics.smartphone", "20", "a.b.c.d", "appliances", "a..c"),
        "brand": text("samsung", "2", "x", "y", "z"),
        "price": [1.0, 2.0, 3.0, 4.0, 5.0],
        "category_l1": text("electronics", "20", "a", "appliances", "a"),
        "category_l2": text("smartphone", "20", "b", "appliances", "a"),
        "category_l3": text("smartphone", "20", "c", "appliances", "c"),
    }))


def test_clean_of_no_rows():
    good, _ = validate(raw_frame([{"price": "-1"}]), MINUTE)
    cleaned = clean(good)
    assert cleaned.empty
    assert list(cleaned.columns)[-3:] == ["category_l1", "category_l2", "category_l3"]


# ------------------------------------------------------------------------------- keep and dedupe

def test_keep_events():
    df = pd.DataFrame({
        "event_type": text("view", "cart", "purchase", "remove_from_cart"), "n": ints(1, 2, 3, 4),
    })
    assert keep_events(df, ["purchase", "view"])["n"].tolist() == [1, 3]
    with pytest.raises(ValueError, match=r"unknown event types \['click'\]"):
        keep_events(df, ["view", "click"])


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    """(event_type, event_time, product_id, user_session, price, brand) -> a cleaned-like frame."""
    columns = ["event_type", "event_time", "product_id", "user_session", "price", "brand"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True).astype("datetime64[ns, UTC]")
    frame["minute"] = frame["event_time"].dt.floor("min")
    for column in ("event_type", "user_session", "brand"):
        frame[column] = frame[column].astype(TEXT)
    return frame


DEDUPE_INPUT = [
    ("view", "2019-10-01 00:00:10", 1, "s1", 5.0, "b"),       # 0 same key as 1, later: dropped
    ("view", "2019-10-01 00:00:03", 1, "s1", 6.0, "b"),       # 1 earliest of its key: kept
    ("view", "2019-10-01 00:00:10", 1, "s2", 5.0, "b"),       # 2 other session: kept
    ("view", "2019-10-01 00:00:20", 2, "s1", 5.0, "b"),       # 3 other product: kept
    ("purchase", "2019-10-01 00:00:01", 1, "s1", 5.0, "b"),   # 4 purchases untouched
    ("purchase", "2019-10-01 00:00:01", 1, "s1", 5.0, "b"),   # 5 ... even identical ones
    ("view", "2019-10-01 00:00:30", 1, None, 7.0, "b"),       # 6 no session = one session: kept
    ("view", "2019-10-01 00:00:31", 1, None, 8.0, "b"),       # 7 same (no) session, later: dropped
    ("view", "2019-10-01 00:00:40", 3, "s3", 9.0, "b"),       # 8 tie on time, higher price: dropped
    ("view", "2019-10-01 00:00:40", 3, "s3", 2.0, "b"),       # 9 tie on time, lower price: kept
    ("view", "2019-10-01 00:01:05", 1, "s1", 5.0, "b"),       # 10 next minute: kept
    ("view", "2019-10-01 00:00:50", 4, "s4", 3.0, "zeta"),    # 11 tie on time and price: by brand, dropped
    ("view", "2019-10-01 00:00:50", 4, "s4", 3.0, "alpha"),   # 12 ... kept
    ("cart", "2019-10-01 00:00:50", 4, "s4", 3.0, "alpha"),   # 13 other events untouched
]


def test_dedupe_views_keeps_the_earliest_view_per_minute_session_and_product():
    df = events_frame(DEDUPE_INPUT)
    kept = dedupe_views(df)
    assert kept.index.tolist() == [1, 2, 3, 4, 5, 6, 9, 10, 12, 13]
    pd.testing.assert_frame_equal(kept, df.loc[[1, 2, 3, 4, 5, 6, 9, 10, 12, 13]])


def test_dedupe_views_does_not_depend_on_row_order():
    df = events_frame(DEDUPE_INPUT)
    for seed in range(5):
        shuffled = df.sample(frac=1, random_state=seed)
        assert sorted(dedupe_views(shuffled).index) == [1, 2, 3, 4, 5, 6, 9, 10, 12, 13]


def test_dedupe_views_without_views():
    df = events_frame([("purchase", "2019-10-01 00:00:01", 1, "s1", 5.0, "b")])
    pd.testing.assert_frame_equal(dedupe_views(df), df)


# ------------------------------------------------------------------------------------ aggregates

def test_metric_columns():
    assert metric_columns("view", "product_id") == ("view_count", "avg_price")
    assert metric_columns("view", "brand") == ("view_count",)
    assert metric_columns("purchase", "category_l3") == ("gmv", "purchase_count", "avg_price")
    with pytest.raises(ValueError, match="no aggregates for event type 'cart'"):
        metric_columns("cart", "brand")


AGG_INPUT = [
    ("purchase", "2019-10-01 00:01:30", 1, "s", 1.00, "apple"),
    ("purchase", "2019-10-01 00:00:10", 1, "s", 10.00, "apple"),
    ("view", "2019-10-01 00:00:05", 2, "s", 3.00, "sony"),
    ("purchase", "2019-10-01 00:00:20", 2, "s", 5.25, "apple"),
    ("view", "2019-10-01 00:00:15", 1, "s", 12.00, "apple"),
    ("purchase", "2019-10-01 00:00:30", 1, "s", 20.50, "apple"),
    ("cart", "2019-10-01 00:00:40", 1, "s", 99.00, "apple"),
    ("view", "2019-10-01 00:00:25", 1, "t", 10.00, "apple"),
]


@pytest.mark.parametrize("event, dimension, expected", [
    ("purchase", "product_id", {
        "minute": utc("2019-10-01 00:00", "2019-10-01 00:00", "2019-10-01 00:01"),
        "product_id": ints(1, 2, 1),
        "gmv": [30.5, 5.25, 1.0], "purchase_count": ints(2, 1, 1), "avg_price": [15.25, 5.25, 1.0],
    }),
    ("purchase", "brand", {
        "minute": utc("2019-10-01 00:00", "2019-10-01 00:01"),
        "brand": text("apple", "apple"),
        "gmv": [35.75, 1.0], "purchase_count": ints(3, 1), "avg_price": [35.75 / 3, 1.0],
    }),
    ("view", "product_id", {
        "minute": utc("2019-10-01 00:00", "2019-10-01 00:00"),
        "product_id": ints(1, 2), "view_count": ints(2, 1), "avg_price": [11.0, 3.0],
    }),
    ("view", "brand", {
        "minute": utc("2019-10-01 00:00", "2019-10-01 00:00"),
        "brand": text("apple", "sony"), "view_count": ints(2, 1),
    }),
])
def test_aggregate(event, dimension, expected):
    assert_frame(aggregate(events_frame(AGG_INPUT), event, dimension), pd.DataFrame(expected))


def test_aggregate_by_hour():
    assert_frame(aggregate(to_hour(events_frame(AGG_INPUT)), "purchase", "product_id", time_col="hour"),
                 pd.DataFrame({
                     "hour": utc("2019-10-01 00:00", "2019-10-01 00:00"), "product_id": ints(1, 2),
                     "gmv": [31.5, 5.25], "purchase_count": ints(3, 1), "avg_price": [10.5, 5.25],
                 }))


def test_money_sums_are_exact_in_any_order():
    """0.1 + 0.2 + 0.3 is 0.6000000000000001 in floats; the gmv must be 0.6 whatever the order."""
    prices = [0.1, 0.2, 0.3]
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        rows = [("purchase", "2019-10-01 00:00:01", 1, "s", prices[i], "b") for i in order]
        result = aggregate(events_frame(rows), "purchase", "brand")
        assert result["gmv"].tolist() == [0.6]
        assert result["avg_price"].tolist() == [0.6 / 3]


def test_aggregate_of_no_rows_has_the_right_columns_and_types():
    empty = aggregate(events_frame(AGG_INPUT[:1]), "view", "product_id")
    assert empty.empty
    assert empty.dtypes.astype(str).to_dict() == {
        "minute": "datetime64[ns, UTC]", "product_id": "int64", "view_count": "int64", "avg_price": "float64",
    }
    assert aggregate(events_frame(AGG_INPUT[:1]), "view", "brand").dtypes["brand"] == TEXT


def test_merge_partials():
    hour = ["2019-10-01 00:00"] * 3
    views = pd.DataFrame({
        "hour": utc(*hour), "product_id": ints(1, 2, 1),
        "view_count": ints(2, 3, 1), "avg_price": [11.0, 1.5, 2.0],
    })
    assert_frame(merge_partials(views, "view", "product_id", "hour"), pd.DataFrame({
        "hour": utc(*hour[:2]), "product_id": ints(1, 2), "view_count": ints(3, 3), "avg_price": [8.0, 1.5],
    }))
    purchases = pd.DataFrame({
        "hour": utc(*hour), "brand": ["sony", "apple", "apple"],  # object dtype, as read back from a store
        "gmv": [4.5, 30.5, 1.0], "purchase_count": ints(3, 2, 1), "avg_price": [1.5, 15.25, 1.0],
    })
    assert_frame(merge_partials(purchases, "purchase", "brand", "hour"), pd.DataFrame({
        "hour": utc(*hour[:2]), "brand": text("apple", "sony"),
        "gmv": [31.5, 4.5], "purchase_count": ints(3, 3), "avg_price": [10.5, 1.5],
    }))
    counts = pd.DataFrame({"hour": utc(*hour[:2]), "brand": text("a", "a"), "view_count": ints(2, 5)})
    counts["hour"] = counts["hour"].astype("datetime64[us, UTC]")  # Parquet may give microseconds
    assert_frame(merge_partials(counts, "view", "brand", "hour"), pd.DataFrame({
        "hour": utc(hour[0]), "brand": text("a"), "view_count": ints(7),
    }))


def test_aggregate_minutes_dedupes_views_and_returns_every_key():
    rows = events_frame([
        ("view", "2019-10-01 00:00:05", 1, "s", 3.0, "apple"),
        ("view", "2019-10-01 00:00:06", 1, "s", 9.0, "apple"),  # duplicate view: dropped
        ("view", "2019-10-01 00:00:07", 2, "s", 4.0, "sony"),
        ("cart", "2019-10-01 00:00:08", 2, "s", 4.0, "sony"),
    ])
    rows["category_l3"] = text("phone", "phone", "tv", "tv")
    result = aggregate_minutes(rows, ["purchase", "view"], ["product_id", "category_l3"])
    assert sorted(result) == [("purchase", "category_l3"), ("purchase", "product_id"),
                              ("view", "category_l3"), ("view", "product_id")]
    minute = utc("2019-10-01 00:00", "2019-10-01 00:00")
    assert_frame(result[("view", "product_id")], pd.DataFrame({
        "minute": minute, "product_id": ints(1, 2), "view_count": ints(1, 1), "avg_price": [3.0, 4.0],
    }))
    assert_frame(result[("view", "category_l3")], pd.DataFrame({
        "minute": minute, "category_l3": text("phone", "tv"), "view_count": ints(1, 1),
    }))
    assert_frame(result[("purchase", "product_id")], pd.DataFrame({
        "minute": utc(), "product_id": ints(), "gmv": np.array([], float),
        "purchase_count": ints(), "avg_price": np.array([], float),
    }))
    assert result[("purchase", "category_l3")].dtypes["category_l3"] == TEXT


def test_to_hour():
    df = pd.DataFrame({"minute": utc("2019-10-01 05:59", "2019-10-01 06:00"), "n": ints(1, 2)})
    expected = pd.DataFrame({"hour": utc("2019-10-01 05:00", "2019-10-01 06:00"), "n": ints(1, 2)})
    assert_frame(to_hour(df), expected)


# ------------------------------------------------------------------------------------ properties

EVENT = st.tuples(
    st.integers(0, 2),                                          # minute of the hour
    st.integers(0, 59),                                         # second
    st.sampled_from(["view", "view", "view", "purchase", "cart"]),
    st.integers(1, 4),                                          # product_id
    st.sampled_from(["s1", "s2", ""]),                          # user_session ("" = missing)
    st.sampled_from(["0.10", "0.20", "0.30", "19.99", "5"]),   # price
    st.sampled_from(["apple", "sony", ""]),                     # brand
    st.sampled_from(["electronics.smartphone", "appliances.kitchen.oven", ""]),
    st.integers(0, 2),                                          # server
)


def to_files(events: list[tuple]) -> dict[str, list[str]]:
    """CSV rows per file, one file per (minute, server) as the landing servers write them."""
    files: dict[str, list[str]] = {}
    for minute, second, kind, product, session, price, brand, code, server in events:
        name = f"2019-10-01-05-{minute:02d}-00-server{server}.csv"
        files.setdefault(name, []).append(
            f"2019-10-01 05:{minute:02d}:{second:02d} UTC,{kind},{product},{100 + product},{code},{brand},"
            f"{price},7,{session}"
        )
    return files


def cleaned_union(files: dict[str, list[str]], names: list[str], rng: random.Random | None) -> pd.DataFrame:
    """Every file through read -> validate -> clean, concatenated in the given order."""
    frames = []
    for name in names:
        rows = list(files[name])
        if rng is not None:
            rng.shuffle(rows)
        minute = pd.Timestamp(f"2019-10-01 05:{name[14:16]}", tz="UTC")
        good, rejected = validate(read_events(csv(*rows), name), minute)
        assert rejected.empty
        frames.append(clean(good))
    return pd.concat(frames, ignore_index=True)


PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIMENSIONS = ("product_id", "brand", "category_l3")


@PROPERTY
@given(events=st.lists(EVENT, min_size=1, max_size=40), rng=st.randoms(use_true_random=False))
def test_aggregates_do_not_depend_on_file_or_row_order(events, rng):
    files = to_files(events)
    names = sorted(files)
    expected = aggregate_minutes(cleaned_union(files, names, None), ["purchase", "view"], DIMENSIONS)
    shuffled = names[:]
    rng.shuffle(shuffled)
    actual = aggregate_minutes(cleaned_union(files, shuffled, rng), ["purchase", "view"], DIMENSIONS)
    assert actual.keys() == expected.keys()
    for key in expected:
        pd.testing.assert_frame_equal(actual[key], expected[key], check_exact=True)


@PROPERTY
@given(events=st.lists(EVENT, min_size=1, max_size=40))
def test_hours_merged_from_minutes_equal_hours_aggregated_directly(events):
    files = to_files(events)
    cleaned = cleaned_union(files, sorted(files), None)
    minutes = aggregate_minutes(cleaned, ["purchase", "view"], DIMENSIONS)
    # Views are deduplicated per minute, so the direct hour is built from the deduplicated rows.
    direct_rows = {"purchase": to_hour(cleaned), "view": to_hour(dedupe_views(cleaned))}
    for (event, dimension), per_minute in minutes.items():
        merged = merge_partials(to_hour(per_minute), event, dimension, "hour")
        direct = aggregate(direct_rows[event], event, dimension, time_col="hour")
        pd.testing.assert_frame_equal(merged, direct, check_exact=True)


def test_rows_digest_is_the_length_prefixed_rows_of_the_file():
    # Another column order, a quoted separator, a missing value and a multi-byte character: the
    # digest is over the values as parsed, in COLUMNS order, missing as empty, lengths in bytes.
    data = ("user_session,event_time,event_type,product_id,category_id,category_code,brand,price,user_id\n"
            's1,2019-10-01 00:00:01 UTC,view,1,2,,"a,b",1.5,3\n'
            ",2019-10-01 00:00:02 UTC,purchase,4,5,c.d,\u00e9,2,6\n").encode()
    rows = [["2019-10-01 00:00:01 UTC", "view", "1", "2", "", "a,b", "1.5", "3", "s1"],
            ["2019-10-01 00:00:02 UTC", "purchase", "4", "5", "c.d", "\u00e9", "2", "6", ""]]
    text = "".join(",".join(f"{len(v.encode())}:{v}" for v in row) + "\n" for row in rows)
    table = read_table(data, "2019-10-01-00-00-00-a.csv")
    assert rows_digest(table) == hashlib.sha256(text.encode()).hexdigest()
    assert rows_digest(table.slice(1)) == hashlib.sha256(text.split("\n", 1)[1].encode()).hexdigest()
    assert rows_digest(table.slice(0, 0)) == hashlib.sha256(b"").hexdigest()
