"""Pure transforms of the b2b pipeline against hand-computed expectations."""

import datetime as dt
import math

import pandas as pd
import pytest

from pipeline.b2b import transform as t

D = dt.date


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def orders_frame(rows):
    """rows: (order_id, prod_id, customer_id, price, is_lead_sale, crm_lead_id, company_id, created)."""
    frame = pd.DataFrame(rows, columns=list(t.ORDER_COLUMNS))
    frame["created_date"] = pd.to_datetime(frame["created_date"], utc=True, format="ISO8601")
    return frame


# ---------------------------------------------------------------------------------------------
# parse_rows


def test_parse_rows_types_good_rows_and_explains_every_rejected_row():
    text = (
        "1,2.50,true,2024-01-02T03:04:05Z\n"  # good
        "\n"  # blank: skipped
        "2,3,false,2024-01-02T00:00:00+02:00\n"  # good, offset converted to UTC
        "3,2.5\n"  # too few fields
        "x,2.5,true,2024-01-02T00:00:00Z\n"  # bad int
        "4,2.12345,true,2024-01-02T00:00:00Z\n"  # five decimals
        "5,-1,true,2024-01-02T00:00:00Z\n"  # negative amount
        "6,1,yes,2024-01-02T00:00:00Z\n"  # bad bool
        "7,1,true,yesterday\n"  # bad timestamp
        ",1,true,2024-01-02T00:00:00Z\n"  # empty required
    )
    fields = (
        t.Field("id", "int"),
        t.Field("amount", "money"),
        t.Field("flag", "bool"),
        t.Field("at", "timestamp"),
    )
    rows, rejects = t.parse_rows(text, fields, source="f.csv")

    assert rows["id"].tolist() == [1, 2]
    assert rows["id"].dtype == "int64"
    assert rows["amount"].tolist() == [2.5, 3.0]
    assert rows["flag"].tolist() == [True, False]
    assert rows["at"].tolist() == [ts("2024-01-02 03:04:05"), ts("2024-01-01 22:00:00")]
    assert rows["line_number"].tolist() == [1, 3]
    assert rows["line"].tolist()[0] == "1,2.50,true,2024-01-02T03:04:05Z"
    assert rejects["line_number"].tolist() == [4, 5, 6, 7, 8, 9, 10]
    assert rejects["source"].unique().tolist() == ["f.csv"]
    assert rejects["reason"].tolist() == [
        "expected 4 comma-separated fields, found 2",
        "id: 'x' is not a whole number",
        "amount: '2.12345' is not an amount >= 0 with at most 4 decimals",
        "amount: '-1' is not an amount >= 0 with at most 4 decimals",
        "flag: 'yes' is not true or false",
        "at: 'yesterday' is not an ISO 8601 timestamp",
        "id is empty",
    ]
    assert rejects.loc[0, "line"] == "3,2.5"


def test_parse_rows_rest_in_last_keeps_commas_of_names_and_optional_fields_may_be_empty():
    rows, rejects = t.parse_rows("7,Acme, Inc\n8,\n", t.COMPANY_CHANGE_FIELDS, source="c", rest_in_last=True)
    assert rows[["company_id", "company_name"]].values.tolist() == [[7, "Acme, Inc"]]
    assert rejects["reason"].tolist() == ["company_name is empty"]

    optional = (t.Field("id", "int"), t.Field("ref", "int", required=False))
    rows, rejects = t.parse_rows("1,\n2,5\n", optional, source="o")
    assert rejects.empty
    assert rows["ref"].tolist()[1] == 5 and pd.isna(rows["ref"].tolist()[0])


def test_country_and_currency_codes_must_fit_char3():
    text = "1,Ann Lee,1980-02-29,ann,ann@x.org,Paris,FRA\n2,Bo Li,1980-02-30,bo,bo@x.org,Rome,Italy\n"
    rows, rejects = t.parse_rows(text, t.INIT_FIELDS["customers"], source="customers.csv")
    assert rows["dob"].tolist() == [D(1980, 2, 29)]
    assert rejects["reason"].tolist() == ["dob: '1980-02-30' is not a YYYY-MM-DD date"]
    rows, rejects = t.parse_rows(
        "2,Bo Li,1980-01-01,bo,bo@x.org,Rome,Italy\n", t.INIT_FIELDS["customers"], source="customers.csv"
    )
    assert rejects["reason"].tolist() == ["most_freq_cntry: 'Italy' is not a three-letter upper-case code"]


def test_init_orders_apply_the_seed_defaults():
    rows, _ = t.parse_rows(
        "1,2,3,10.5,,,4,2020-01-01T00:00:00Z\n", t.INIT_FIELDS["orders"], source="orders.csv"
    )
    out = t.init_orders(rows)
    assert out.loc[0, "is_lead_sale"] is True or out.loc[0, "is_lead_sale"] == True  # noqa: E712
    assert out.loc[0, "crm_lead_id"] == -1


def test_reject_duplicates_rejects_every_copy_of_a_repeated_key():
    rows, _ = t.parse_rows("1,A\n2,B\n1,C\n", t.INIT_FIELDS["companies"], source="companies.csv")
    kept, rejects = t.reject_duplicates(rows, ("company_id",))
    assert kept[["company_id", "company_name"]].values.tolist() == [[2, "B"]]
    assert rejects[["line_number", "reason"]].values.tolist() == [
        [1, "company_id 1 appears 2 times"],
        [3, "company_id 1 appears 2 times"],
    ]


# ---------------------------------------------------------------------------------------------
# daily orders


def _leads(rows):
    text = "".join(",".join(map(str, r)) + "\n" for r in rows)
    parsed, rejects = t.parse_rows(text, t.LEAD_FIELDS, source="leadcsv.csv")
    assert rejects.empty
    return parsed


def test_orders_from_leads_keeps_sales_with_an_order_and_rejects_contradictions():
    leads = _leads(
        [
            (11, 1, "300.00", "900.00", "true", 501, 7, 8, "2024-01-01T10:00:00Z"),  # sale -> order 501
            (12, 1, "300.00", "900.00", "false", "", 7, 8, "2024-01-01T10:00:00Z"),  # no sale: not an order
            (13, 1, "300.00", "900.00", "true", "", 7, 8, "2024-01-01T10:00:00Z"),  # sale without order
            (14, 1, "300.00", "900.00", "false", 502, 7, 8, "2024-01-01T10:00:00Z"),  # order without sale
        ]
    )
    orders, rejects = t.orders_from_leads(leads)
    assert orders[["order_id", "crm_lead_id", "is_lead_sale"]].values.tolist() == [[501, 11, True]]
    assert rejects[["line_number", "reason"]].values.tolist() == [
        [3, "lead marked as a sale has no order_id"],
        [4, "lead not marked as a sale has an order_id"],
    ]


def test_orders_from_quotes_are_direct_sales():
    quotes, _ = t.parse_rows("5,120.50,400.00,900,7,8,3,2024-01-01T01:00:00Z\n", t.QUOTE_FIELDS, source="q")
    out = t.orders_from_quotes(quotes)
    assert out.loc[0, ["order_id", "prod_id", "customer_id", "company_id", "crm_lead_id"]].tolist() == [
        900,
        5,
        7,
        8,
        -1,
    ]
    assert out.loc[0, "is_lead_sale"] == False  # noqa: E712
    assert out.loc[0, "prod_quote_price"] == 120.5


def test_assemble_day_orders_rejects_unknown_products_ambiguous_and_already_loaded_ids():
    quotes, _ = t.parse_rows(
        "1,10.00,20.00,100,7,8,3,2024-01-02T01:00:00Z\n"  # ok
        "9,10.00,20.00,101,7,8,3,2024-01-02T01:00:00Z\n"  # unknown product 9
        "1,10.00,20.00,102,7,8,3,2024-01-02T01:00:00Z\n"  # 102 twice
        "1,11.00,20.00,102,7,8,3,2024-01-02T01:00:00Z\n"
        "1,10.00,20.00,103,7,8,3,2024-01-02T01:00:00Z\n",  # loaded on 2024-01-01
        t.QUOTE_FIELDS,
        source="companycsv.csv",
    )
    candidates = t.orders_from_quotes(quotes)
    loaded = pd.DataFrame({"order_id": [103], "batch_date": [D(2024, 1, 1)]})
    orders, rejects = t.assemble_day_orders(candidates, pd.Series([1, 2]), loaded, D(2024, 1, 2))
    assert orders["order_id"].tolist() == [100]
    assert orders.loc[0, "batch_date"] == D(2024, 1, 2)
    assert rejects[["line_number", "reason"]].values.tolist() == [
        [2, "prod_id 9 is not a known product"],
        [3, "order_id 102 appears 2 times in the day's files"],
        [4, "order_id 102 appears 2 times in the day's files"],
        [5, "order_id 103 was already loaded on 2024-01-01"],
    ]


def test_missing_ids_are_the_distinct_unknown_references():
    assert t.missing_ids(pd.Series([5, 3, 5, 9, 1]), pd.Series([1, 2, 3])).tolist() == [5, 9]


# ---------------------------------------------------------------------------------------------
# company upsert


def _changes(rows):
    text = "".join(f"{i},{name}\n" for i, name in rows)
    parsed, _ = t.parse_rows(text, t.COMPANY_CHANGE_FIELDS, source="x", rest_in_last=True)
    return parsed


def _apply(current: pd.DataFrame, plan: t.UpsertPlan) -> pd.DataFrame:
    """What the warehouse does with a plan: replace the planned ids."""
    kept = current[~current["company_id"].isin(plan.rows["company_id"])]
    return pd.concat([kept, plan.rows], ignore_index=True).sort_values("company_id", ignore_index=True)


CURRENT = pd.DataFrame(
    {
        "company_id": [1, 2, 3, 4],
        "company_name": ["Acme", "Beta", None, "Delta"],  # 3 is an inferred member (no name yet)
        "updated_on": [D(2024, 1, 1), D(2024, 1, 1), None, D(2024, 1, 5)],
    }
)
DAY = D(2024, 1, 3)
INSERTS = [(5, "Echo, Inc"), (1, "Acme"), (7, "X"), (7, "Y"), (8, "Old")]
UPDATES = [(2, "Beta Two"), (3, "Gamma"), (4, "Delta Old"), (6, "Foxtrot"), (8, "New")]


def test_upsert_inserts_new_updates_changed_and_keeps_newer_names():
    plan = t.plan_company_upsert(CURRENT, _changes(INSERTS), _changes(UPDATES), DAY)
    assert plan.rows.values.tolist() == [
        [2, "Beta Two", DAY],
        [3, "Gamma", DAY],
        [5, "Echo Inc", DAY],
        [6, "Foxtrot", DAY],
        [8, "New", DAY],
    ]
    assert (plan.inserted, plan.updated, plan.unchanged, plan.stale) == (3, 2, 1, 1)
    assert plan.rejects["line_number"].tolist() == [3, 4]
    assert set(plan.rejects["reason"]) == {"company_id 7 has different names in the same file"}


def test_upsert_applied_twice_changes_nothing_the_second_time():
    once = _apply(CURRENT, t.plan_company_upsert(CURRENT, _changes(INSERTS), _changes(UPDATES), DAY))
    again = t.plan_company_upsert(once, _changes(INSERTS), _changes(UPDATES), DAY)
    assert again.rows.empty
    assert (again.inserted, again.updated, again.unchanged, again.stale) == (0, 0, 6, 1)
    assert _apply(once, again).equals(once)
    assert once["company_id"].is_unique


def test_upsert_of_a_later_day_overwrites_and_of_an_earlier_day_does_not():
    current = pd.DataFrame({"company_id": [1], "company_name": ["Acme"], "updated_on": [D(2024, 1, 3)]})
    empty = _changes([])
    later = t.plan_company_upsert(current, empty, _changes([(1, "Acme 2")]), D(2024, 1, 4))
    earlier = t.plan_company_upsert(current, empty, _changes([(1, "Acme 0")]), D(2024, 1, 2))
    assert later.rows.values.tolist() == [[1, "Acme 2", D(2024, 1, 4)]]
    assert earlier.rows.empty and earlier.stale == 1


# ---------------------------------------------------------------------------------------------
# reports


def test_monthly_sales_seed_formula_with_profit_and_half_up_rounding():
    products = pd.DataFrame({"prod_id": [1, 2], "prod_unit_price": [10.0, 2.505]})
    orders = orders_frame(
        [
            (1, 1, 1, 12.505, False, -1, 7, "2024-01-05 10:00"),
            (2, 1, 1, 13.0, False, -1, 7, "2024-01-20 10:00"),
            (3, 2, 1, 3.0, False, -1, 8, "2024-01-31 23:59:59"),
            (4, 1, 1, 11.0, False, -1, 7, "2024-02-01 00:00:00"),
            (5, 3, 1, 100.0, False, -1, 9, "2024-01-10 00:00"),  # unknown product: dropped (inner join)
            (6, 1, 1, 9.995, False, -1, 7, "2024-03-02 00:00"),
        ]
    )
    # January: (7,1) sales 25.505, 2 units, profit 25.505 - 2 x 10 = 5.505; (8,2) sales 3, profit 0.495
    #   -> sales 28.505 -> 28.51 (half up; float rounding would give 28.5), profit 6.00.
    # February: sales 11, profit 1.  March: sales 9.995 -> 10.00, profit -0.005 -> -0.01 (away from zero).
    out = t.monthly_sales(orders, products)
    assert out.values.tolist() == [[1, 2024, 28.51, 6.0], [2, 2024, 11.0, 1.0], [3, 2024, 10.0, -0.01]]
    assert list(out.columns) == ["sale_month", "sale_year", "monthly_sales", "monthly_profit"]


def test_monthly_sales_accepts_decimal_prices_from_the_warehouse():
    from decimal import Decimal

    products = pd.DataFrame({"prod_id": [1], "prod_unit_price": [Decimal("1.0000")]})
    orders = orders_frame([(1, 1, 1, Decimal("1.0050"), True, 1, 7, "2023-12-31 23:00")])
    assert t.monthly_sales(orders, products).values.tolist() == [[12, 2023, 1.01, 0.01]]


def test_total_leads_counts_lead_orders_per_customer():
    orders = orders_frame(
        [
            (1, 1, 1, 1.0, True, 11, 7, "2024-01-01"),
            (2, 1, 1, 1.0, True, 12, 7, "2024-01-01"),
            (3, 1, 1, 1.0, False, -1, 7, "2024-01-01"),
            (4, 1, 2, 1.0, True, -1, 7, "2024-01-01"),
            (5, 1, 2, 1.0, False, -1, 7, "2024-01-01"),
            (6, 1, 3, 1.0, True, 13, 7, "2024-01-01"),
        ]
    )
    assert t.total_leads(orders).values.tolist() == [[1, 2], [3, 1]]


def test_most_used_devices_top_5_ties_by_name_and_no_unknown():
    devices = ["A"] * 3 + ["B"] * 3 + ["D"] * 2 + ["C"] * 2 + ["F", "E"] + [None] * 5
    out = t.most_used_devices(pd.DataFrame({"device": devices}))
    assert out.values.tolist() == [["A", 3], ["B", 3], ["C", 2], ["D", 2], ["E", 1]]


def test_most_popular_products_of_the_country_with_most_distinct_users():
    weblogs = pd.DataFrame(
        {
            "user_name": ["u1", "u2", "u1", "u3", "u3", "u4", "u6", None],
            "country": ["USA", "USA", "USA", "USA", "DEU", "DEU", None, "DEU"],
        }
    )
    customers = pd.DataFrame({"customer_id": [1, 2, 3, 4], "user_name": ["u1", "u2", "u3", "u4"]})
    orders = orders_frame(
        [
            (1, 10, 1, 1.0, False, -1, 7, "2024-01-01"),
            (2, 11, 1, 1.0, False, -1, 7, "2024-01-01"),
            (3, 10, 2, 1.0, False, -1, 7, "2024-01-01"),
            (4, 12, 4, 1.0, False, -1, 7, "2024-01-01"),
            (5, 13, 5, 1.0, False, -1, 7, "2024-01-01"),
            (6, 14, 3, 1.0, False, -1, 7, "2024-01-01"),
        ]
    )
    # USA has u1, u2, u3 (3 users), DEU u3, u4 (2): products of customers 1, 2, 3.
    out = t.most_popular_products(weblogs, orders, customers)
    assert out.values.tolist() == [[10, "USA"], [11, "USA"], [14, "USA"]]


def test_most_popular_products_tie_takes_the_first_country_code():
    weblogs = pd.DataFrame({"user_name": ["a", "b"], "country": ["USA", "DEU"]})
    customers = pd.DataFrame({"customer_id": [1, 2], "user_name": ["a", "b"]})
    orders = orders_frame(
        [(1, 5, 1, 1.0, False, -1, 7, "2024-01-01"), (2, 6, 2, 1.0, False, -1, 7, "2024-01-01")]
    )
    assert t.most_popular_products(weblogs, orders, customers).values.tolist() == [[6, "DEU"]]


def test_daily_sales_over_the_window_with_empty_days():
    orders = orders_frame(
        [
            (1, 1, 1, 1.5, False, -1, 7, "2024-01-01 08:00"),
            (2, 1, 1, 2.25, False, -1, 7, "2024-01-03 00:00"),
            (3, 1, 1, 3.0, False, -1, 7, "2024-01-03 23:59:59"),
            (4, 1, 1, 9.0, False, -1, 7, "2023-12-31 23:59"),
            (5, 1, 1, 9.0, False, -1, 7, "2024-01-04 00:00"),
        ]
    )
    out = t.daily_sales(orders, D(2024, 1, 3), days=3)
    assert out.values.tolist() == [
        [D(2024, 1, 1), 1.5, 1, 1],
        [D(2024, 1, 2), 0.0, 0, 0],
        [D(2024, 1, 3), 5.25, 2, 2],
    ]


def test_top_companies_by_revenue_ties_by_id():
    orders = orders_frame(
        [
            (1, 1, 1, 10.0, False, -1, 1, "2024-01-01"),
            (2, 1, 1, 5.0, False, -1, 1, "2024-01-01"),
            (3, 1, 1, 20.0, False, -1, 2, "2024-01-01"),
            (4, 1, 1, 15.0, False, -1, 3, "2024-01-01"),
        ]
    )
    companies = pd.DataFrame({"company_id": [1, 2, 3], "company_name": ["One", "Two", "Three"]})
    out = t.top_companies(orders, companies, top=2)
    assert out.values.tolist() == [[1, 2, "Two", 20.0, 1], [2, 1, "One", 15.0, 2]]


def test_product_conversion_since_the_first_logged_day():
    weblogs = pd.DataFrame(
        {
            "prod_id": pd.array([1, 1, 2, None], dtype="Int64"),
            "created_date": pd.to_datetime(
                ["2024-01-02 10:00", "2024-01-03", "2024-01-03", "2024-01-03"], utc=True, format="ISO8601"
            ),
        }
    )
    orders = orders_frame(
        [
            (1, 1, 1, 1.0, False, -1, 7, "2024-01-02 05:00"),  # same day as the first log: counted
            (2, 1, 1, 1.0, False, -1, 7, "2024-01-01 23:00"),  # before any log: not counted
            (3, 3, 1, 1.0, False, -1, 7, "2024-01-03 00:00"),
        ]
    )
    out = t.product_conversion(weblogs, orders)
    assert out[["prod_id", "page_views", "orders"]].values.tolist() == [[1, 2, 1], [2, 1, 0], [3, 0, 1]]
    assert out["conversion"].tolist()[:2] == [0.5, 0.0] and math.isnan(out["conversion"].tolist()[2])


def test_reports_on_an_empty_web_log_are_empty_not_errors():
    empty = pd.DataFrame(
        {
            "user_name": [],
            "country": [],
            "device": [],
            "prod_id": pd.array([], dtype="Int64"),
            "created_date": pd.to_datetime([], utc=True),
        }
    )
    orders = orders_frame([(1, 1, 1, 1.0, False, -1, 7, "2024-01-01")])
    customers = pd.DataFrame({"customer_id": [1], "user_name": ["a"]})
    assert t.most_popular_products(empty, orders, customers).empty
    assert t.most_used_devices(empty).empty
    assert t.product_conversion(empty, orders).empty


@pytest.mark.parametrize(
    "units,cents", [(50, 0.01), (49, 0.0), (-50, -0.01), (-49, -0.0), (12345, 1.23), (12350, 1.24)]
)
def test_units_round_half_away_from_zero(units, cents):
    assert t.units_to_cents(pd.Series([units])).tolist() == [cents]


def test_pandas_engine_implements_the_engine_protocol():
    members = [
        name for name in t.Engine.__dict__ if not name.startswith("_") and callable(t.Engine.__dict__[name])
    ]
    assert members and all(callable(getattr(t.PandasEngine, name)) for name in members)


def test_empty_files_give_empty_results_not_errors():
    quotes, _ = t.parse_rows("", t.QUOTE_FIELDS, source="companycsv.csv")
    leads, _ = t.parse_rows("\n", t.LEAD_FIELDS, source="leadcsv.csv")
    lead_orders, contradictions = t.orders_from_leads(leads)
    candidates = pd.concat([t.orders_from_quotes(quotes), lead_orders], ignore_index=True)
    loaded = pd.DataFrame({"order_id": pd.Series(dtype="int64"), "batch_date": pd.Series(dtype="object")})
    orders, rejects = t.assemble_day_orders(candidates, pd.Series([1]), loaded, D(2024, 1, 1))
    assert orders.empty and rejects.empty and contradictions.empty
    companies, _ = t.parse_rows("", t.COMPANY_CHANGE_FIELDS, source="c", rest_in_last=True)
    kept, duplicates = t.reject_duplicates(companies, ("company_id",))
    assert kept.empty and duplicates.empty
    current = pd.DataFrame(columns=["company_id", "company_name", "updated_on"])
    assert t.plan_company_upsert(current, companies, companies, D(2024, 1, 1)).rows.empty
