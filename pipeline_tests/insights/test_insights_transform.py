"""The pure transforms of the insights pipeline, against values worked out by hand."""

import datetime as dt
import io
import json

import pandas as pd
import pytest

from pipeline.insights import transform
from pipeline.insights.transform import PERSONAL_EMAIL, UNKNOWN_COMPANY
from pipeline_tests.insights.samples import SMALL_CSV



def prepared_small():
    return transform.prepare_events(transform.read_dump(SMALL_CSV.encode(), "csv"), 2024, 2)


@pytest.mark.parametrize("email, company", [
    ("aa@google.com", "google"),
    ("jane@mail.acme.co.uk", "acme"),  # the seed said "mail"
    ("Jane@ACME.CO.UK", "acme"),
    ("ops@eu.wayne-enterprises.com", "wayne-enterprises"),
    ("x@umbrella.com.au", "umbrella"),
    ("y@soylent.co.jp", "soylent"),
    ("someone@gmail.com", PERSONAL_EMAIL),
    ("someone@yahoo.co.uk", PERSONAL_EMAIL),
    ("someone@hotmail.fr", PERSONAL_EMAIL),
    ("  padded@globex.com  ", "globex"),
    ("", UNKNOWN_COMPANY),
    (None, UNKNOWN_COMPANY),
    ("bob@", UNKNOWN_COMPANY),
    ("@acme.co.uk", UNKNOWN_COMPANY),
    ("a@b@globex.com", UNKNOWN_COMPANY),
    ("dave at hooli.com", UNKNOWN_COMPANY),
    ("carol@localhost", UNKNOWN_COMPANY),
    ("eve@10.0.0.1", UNKNOWN_COMPANY),
    ("f@-bad-.com", UNKNOWN_COMPANY),
    ("g@co.uk", UNKNOWN_COMPANY),  # a public suffix alone is nobody's domain
    ("h@acme.notarealtld", UNKNOWN_COMPANY),
])
def test_company_from_email(email, company):
    assert transform.company_from_email(email) == company


def test_parse_timestamps_accepts_iso_and_space_forms_as_utc():
    parsed = transform.parse_timestamps(pd.Series([
        "2024-02-03 10:00:00", "2024-02-03T10:00:00Z", "2024-02-03T12:00:00+02:00",
        "2024-02-03T10:00:00.250Z",
        "2024-02-30 10:00:00", "03/02/2024 10:00", "", None,
    ], dtype=object))
    ten = pd.Timestamp("2024-02-03 10:00:00", tz="UTC")
    assert parsed[:4].tolist() == [ten, ten, ten, ten + pd.Timedelta(milliseconds=250)]
    assert parsed[4:].isna().all()


def test_a_timestamp_without_offset_is_utc_whatever_came_before_it():
    """Issue 15: pandas read '2024-01-31 23:59:59' after a '-05:00' row as 2024-02-01T04:59:59Z."""
    parsed = transform.parse_timestamps(pd.Series([
        "2024-01-31T10:00:00-05:00", "2024-01-31 23:59:59", "2024-02-01T00:30:00+01:00",
        "2024-02-01T10:00:00", "2024-02-01T10:00:00.5+0530", "2024-02-01", "2024-02-01T08:00:00Z",
        "2024-02-01 09:15:00", "2024-02-01T09:00:00+01", "not a time",
    ], dtype=object))
    assert parsed.tolist()[:-1] == [pd.Timestamp(v, tz="UTC") for v in (
        "2024-01-31 15:00:00", "2024-01-31 23:59:59", "2024-01-31 23:30:00", "2024-02-01 10:00:00",
        "2024-02-01 04:30:00.5", "2024-02-01 00:00:00", "2024-02-01 08:00:00", "2024-02-01 09:15:00",
        "2024-02-01 08:00:00")]
    assert parsed.isna().tolist()[-1]
    # If pandas ever finds an offset the pattern missed, the offset-less values are read one by one.
    mixed = transform._as_utc(pd.Series(["2024-01-31T10:00:00-05:00", "2024-01-31 23:59:59", None]))
    assert mixed.tolist()[:2] == [pd.Timestamp("2024-01-31 15:00", tz="UTC"), pd.Timestamp("2024-01-31 23:59:59", tz="UTC")]
    assert mixed.isna().tolist() == [False, False, True]


def test_a_month_keeps_its_last_offset_less_second_after_a_row_with_an_offset():
    dump = ("timestamp,email,country\n2024-01-31T10:00:00-05:00,a@globex.com,FR\n"
            "2024-01-31 23:59:59,b@globex.com,FR\n").encode()
    prepared = transform.prepare_events(transform.read_dump(dump, "csv"), 2024, 1)
    assert prepared.rejected.empty
    assert prepared.events["timestamp"].tolist() == [
        pd.Timestamp("2024-01-31 15:00", tz="UTC"), pd.Timestamp("2024-01-31 23:59:59", tz="UTC")]


def test_parse_timestamps_keeps_typed_parquet_values():
    naive = pd.Series(pd.to_datetime(["2024-02-03 10:00:00"]))
    aware = naive.dt.tz_localize("Europe/Paris")
    assert transform.parse_timestamps(naive)[0] == pd.Timestamp("2024-02-03 10:00:00", tz="UTC")
    assert transform.parse_timestamps(aware)[0] == pd.Timestamp("2024-02-03 09:00:00", tz="UTC")


def test_prepare_events_rejects_bad_timestamps_with_reasons():
    prepared = prepared_small()
    assert len(prepared.events) == 8 and prepared.total == 11
    assert prepared.rejected[["_row", "_reason", "email"]].values.tolist() == [
        [9, "unparseable timestamp", "zed@globex.com"],
        [10, "timestamp outside 2024-02", "zed@globex.com"],
        [11, "missing timestamp", "zed@globex.com"],
    ]
    # Rejected rows keep every column as read, so the quarantine file can be fixed and re-sent.
    assert list(prepared.rejected.columns) == [
        "timestamp", "email", "country", "tags", "plan", "_row", "_reason"]


def test_prepare_events_keeps_values_as_read_and_other_columns_in_extra():
    events = prepared_small().events
    assert events.loc[2, "timestamp"] == pd.Timestamp("2024-02-02 00:30:00", tz="UTC")
    assert events.loc[1, "email"] == "Jane@Acme.co.uk "  # as read; users are normalised in the counts only
    assert events.loc[3, "country"] == "NA"  # Namibia, not a missing value
    assert events.loc[4, "email"] is None and events.loc[3, "tags"] is None
    assert [json.loads(x) for x in events["extra"][:2]] == [{"plan": "pro"}, {"plan": "pro"}]
    assert prepared_small().extra_columns == ("plan",)


def test_aggregate_month_counts_by_hand():
    counts = transform.aggregate_month(prepared_small().events)
    assert counts["country"].values.tolist() == [["France", 3], ["Germany", 2], ["FR", 1], ["NA", 1]]
    assert counts["userbase"].values.tolist() == [
        ["bob@globex.com", 3], ["ann@gmail.com", 1], ["carol@", 1], ["jane@acme.co.uk", 1],
        ["jane@mail.acme.co.uk", 1],
    ]
    assert counts["dateevent"].values.tolist() == [
        [dt.date(2024, 2, 2), 4], [dt.date(2024, 2, 1), 2], [dt.date(2024, 2, 3), 2],
    ]
    assert counts["companies"].values.tolist() == [
        ["globex", 3], [UNKNOWN_COMPANY, 2], ["acme", 2], [PERSONAL_EMAIL, 1],
    ]
    # "mobile|mobile" is one mobile event; " promo " is promo.
    assert counts["tags"].values.tolist() == [["promo", 4], ["mobile", 2], ["vip", 2]]


def test_top_n_breaks_ties_by_value_and_ranks():
    counts = pd.DataFrame({"country": ["NA", "Germany", "FR", "France"], "_count": [1, 2, 1, 3]})
    top = transform.top_n(counts, "country", 3)
    assert top.values.tolist() == [["France", 3, 1], ["Germany", 2, 2], ["FR", 1, 3]]
    assert transform.top_n(counts.iloc[:0], "country", 3).empty


def test_split_tags_without_tags_column():
    assert transform.split_tags(pd.Series([None, None], dtype=object)).empty
    events = prepared_small().events.assign(tags=None)
    assert transform.aggregate_month(events)["tags"].empty


@pytest.mark.parametrize("data, fmt, message", [
    (b"timestamp,email,tags\n2024-02-01 09:00:00,a@b.com,x\n", "csv",
     "missing required column(s) ['country']"),
    (b"when,who\n1,2\n", "csv", "['timestamp', 'email', 'country']"),
    (b"timestamp,email,country\n", "csv", "header but no rows"),
    (b"", "csv", "not a readable csv file"),
    (b"\x00\x01garbage", "parquet", "not a readable parquet file"),
])
def test_read_dump_rejects_unusable_files(data, fmt, message):
    with pytest.raises(transform.DumpError) as error:
        transform.read_dump(data, fmt)
    assert message in str(error.value)


def test_read_dump_matches_column_names_case_insensitively_and_reads_parquet():
    frame = pd.DataFrame({" Timestamp": ["2024-02-01 09:00:00"], "EMAIL": ["a@globex.com"], "Country": ["FR"],
                          "Score": [7]})
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    read = transform.read_dump(buffer.getvalue(), "parquet")
    assert list(read.columns) == ["timestamp", "email", "country", "Score"]
    prepared = transform.prepare_events(read, 2024, 2)
    assert json.loads(prepared.events.loc[0, "extra"]) == {"Score": 7}  # Parquet keeps the number a number
