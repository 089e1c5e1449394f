"""JSON (records, lines, pandas' column orientation), CSV and Excel give the same rows."""

import io
import json

import pandas as pd
import pytest

from pipeline.clickstream import readers, transform

# Raw Kaggle layout. time_stamp in epoch seconds (UTC):
# 1704067200 = 2024-01-01 00:00:00, 1704153599 = 2024-01-01 23:59:59,
# 1704153600 = 2024-01-02 00:00:00, 1704243600 = 2024-01-03 01:00:00.
RAW = pd.DataFrame(
    {
        "user": [1, 2, 3, 4],
        "time_stamp": [1704067200, 1704153599, 1704153600, 1704243600],
        "adgroup_id": ["Apparel", "Apparel", "Sale", "Apparel"],
        "pid": ["007", "Tee", "007", "Tee"],  # "007" must not become 7 in any format
        "nonclk": [0, 1, 0, 0],
        "clk": [1, 0, 1, 1],
    }
)
EXPECTED = pd.DataFrame(
    {
        "date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-03"]),
        "click_event": [1, 0, 1, 1],
        "product_category": ["Apparel", "Apparel", "Sale", "Apparel"],
        "product_name": ["007", "Tee", "007", "Tee"],
    }
)
# Hand-computed daily clicks of EXPECTED (rows = source rows of the key that day).
EXPECTED_DAILY = pd.DataFrame(
    {
        "grouping": ["product_category"] * 3 + ["product_name"] * 4,
        "key": ["Apparel", "Apparel", "Sale", "007", "007", "Tee", "Tee"],
        "date": pd.to_datetime(
            ["2024-01-01", "2024-01-03", "2024-01-02", "2024-01-01", "2024-01-02", "2024-01-01", "2024-01-03"]
        ),
        "clicks": [1, 1, 1, 1, 1, 0, 1],
        "rows": [2, 1, 1, 1, 1, 1, 1],
    }
)


def renamed_seed_layout() -> pd.DataFrame:
    """The seed's mock data: renamed columns, ``date`` a datetime, nonclk dropped."""
    frame = RAW.drop(columns="nonclk").rename(columns=transform.RENAMES)
    frame["date"] = pd.to_datetime(frame["date"], unit="s")
    return frame


def excel(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False, engine="openpyxl")
    return buffer.getvalue()


FILES = {
    "records.json": lambda: RAW.to_json(orient="records").encode(),
    "lines.json": lambda: RAW.to_json(orient="records", lines=True).encode(),
    "lines.jsonl": lambda: RAW.to_json(orient="records", lines=True).encode(),
    # df.reset_index().to_json(): pandas' default column orientation, dates as epoch milliseconds
    "seed-columns.json": lambda: renamed_seed_layout().reset_index().to_json().encode(),
    "split.json": lambda: RAW.to_json(orient="split").encode(),
    "iso-records.json": lambda: renamed_seed_layout().to_json(orient="records", date_format="iso").encode(),
    "raw.csv": lambda: RAW.to_csv(index=False).encode(),
    "renamed.csv": lambda: renamed_seed_layout().to_csv(index=False).encode(),
    "raw.xlsx": lambda: excel(RAW),
    "renamed.xlsx": lambda: excel(renamed_seed_layout()),
}


def normalized(name: str, data: bytes) -> pd.DataFrame:
    frame = readers.read_table(data, name)
    result = transform.normalize(
        frame,
        date_column="date",
        target_column="click_event",
        group_columns=["product_category", "product_name"],
    )
    assert result.rejected.empty, result.rejected
    return result.rows


@pytest.mark.parametrize("name", sorted(FILES))
def test_every_format_and_layout_gives_the_same_rows(name):
    pd.testing.assert_frame_equal(normalized(name, FILES[name]()), EXPECTED, check_dtype=False)


def test_the_three_formats_give_identical_aggregates():
    groupings = [("product_category",), ("product_name",)]
    results = {
        name: transform.daily_clicks(
            normalized(name, FILES[name]()), groupings, date_column="date", target_column="click_event"
        )
        for name in ("seed-columns.json", "raw.csv", "renamed.xlsx")
    }
    for name, daily in results.items():
        pd.testing.assert_frame_equal(daily, EXPECTED_DAILY, obj=name)


def test_numbers_and_text_give_the_same_key_whatever_the_format():
    as_json = readers.read_table(
        json.dumps([{"k": 7}, {"k": 7.0}, {"k": None}, {"k": "7"}]).encode(), "a.json"
    )
    as_csv = readers.read_table(b"k,n\n7,1\n7.0,2\n,3\n7,4\n", "a.csv")
    assert list(transform.key_text(as_json["k"])) == ["7", "7", None, "7"]
    assert list(transform.key_text(as_csv["k"])) == ["7", "7", None, "7"]
    assert list(transform.key_text(pd.Series(["007", " Tee ", "", "1.5"]))) == ["007", "Tee", None, "1.5"]


def test_csv_keeps_values_that_look_like_missing_markers():
    frame = readers.read_table(b"k,v\nNA,1\nnull,\n", "a.csv")
    assert frame["k"].tolist() == ["NA", "null"]
    assert frame["v"].isna().tolist() == [False, True]


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("a.json", b"", "empty"),
        ("a.json", b"{not json", "not valid JSON"),
        ("a.json", b"[1, 2]", "must be objects"),
        ("a.json", b"42", "not a table"),
        ("a.xlsx", b"PK\x03\x04garbage", "not a valid XLSX"),
        ("a.csv", b"\xff\xfe\x00binary", "not a valid CSV"),
        ("a.txt", b"a,b\n1,2\n", "unsupported file type '.txt'"),
        ("noext", b"a,b\n1,2\n", r"unsupported file type '\(none\)'"),
        ("a.csv", b"a,a\n1,2\n", "duplicate column"),
    ],
)
def test_a_file_that_is_not_a_table_says_why(name, data, reason):
    with pytest.raises(readers.UnreadableFile, match=reason):
        readers.read_table(data, name)
