"""Generated sample data: referential integrity, formats and determinism."""

import datetime as dt

import pandas as pd
import pytest

from pipeline.b2b import generate as g
from pipeline.b2b import storage
from pipeline.b2b.transform import COMPANY_CHANGE_FIELDS, INIT_FIELDS, LEAD_FIELDS, QUOTE_FIELDS, parse_rows
from pipeline.b2b.weblog import COUNTRY_NETWORKS, parse_weblog

UNTIL = dt.date(2023, 12, 31)
DAY = dt.date(2024, 1, 1)


@pytest.fixture(scope="module")
def tables():
    return g.init_tables(until=UNTIL, rows=400, seed=3)


@pytest.fixture(scope="module")
def day(tables):
    files = g.day_files(DAY, tables, rows=600, seed=3)
    parsed = {}
    for name, fields in ((storage.QUOTES_FILE, QUOTE_FIELDS), (storage.LEADS_FILE, LEAD_FIELDS)):
        parsed[name], rejects = parse_rows(files[storage.raw_key(DAY, name)], fields, source=name)
        assert rejects.empty
    for kind in storage.CHANGE_KINDS:
        parsed[kind], rejects = parse_rows(
            files[storage.change_key(kind, DAY)], COMPANY_CHANGE_FIELDS, source=kind, rest_in_last=True
        )
        assert rejects.empty
    parsed["hits"], rejects = parse_weblog(files[storage.raw_key(DAY, storage.WEBLOG_FILE)])
    assert rejects.empty
    return files, parsed


def test_init_tables_are_referentially_intact(tables):
    companies, customers, products, orders = (
        tables[k] for k in ("companies", "customers", "products", "orders")
    )
    for frame, key in (
        (companies, "company_id"),
        (customers, "customer_id"),
        (products, "prod_id"),
        (orders, "order_id"),
    ):
        assert len(frame) == 400 and frame[key].is_unique
    assert products["supplier_id"].isin(companies["company_id"]).all()
    assert orders["prod_id"].isin(products["prod_id"]).all()
    assert orders["customer_id"].isin(customers["customer_id"]).all()
    assert orders["company_id"].isin(companies["company_id"]).all()


def test_init_tables_follow_the_seed_rules(tables):
    orders, customers = tables["orders"], tables["customers"]
    assert (orders["crm_lead_id"] == orders["order_id"].where(orders["is_lead_sale"], -1)).all()
    assert orders["created_date"].min() >= pd.Timestamp("2018-01-01", tz="UTC")
    assert orders["created_date"].max() < pd.Timestamp("2024-01-01", tz="UTC")
    assert orders["prod_quote_price"].between(200, 10_000).all()
    assert (tables["products"]["prod_currency_code"] == "USD").all()
    capitals = {code: city for code, city, _ in COUNTRY_NETWORKS}
    assert (customers["most_freq_cntry"].map(capitals) == customers["most_freq_city"]).all()
    assert customers["user_name"].is_unique
    assert not tables["companies"]["company_name"].str.contains(",").any()


def test_init_files_round_trip_through_the_parser(tables):
    files = g.init_files(tables)
    assert sorted(files) == [
        f"b2b/init/{name}.csv" for name in ("companies", "customers", "orders", "products")
    ]
    for name, fields in INIT_FIELDS.items():
        rows, rejects = parse_rows(files[storage.init_key(name)], fields, source=name)
        assert rejects.empty and len(rows) == 400
    rows, _ = parse_rows(files[storage.init_key("orders")], INIT_FIELDS["orders"], source="orders")
    assert rows["prod_quote_price"].tolist() == tables["orders"]["prod_quote_price"].tolist()
    assert rows["created_date"].tolist() == tables["orders"]["created_date"].tolist()


def test_day_files_refer_to_known_or_announced_members(tables, day):
    _, parsed = day
    quotes, leads, inserts = parsed[storage.QUOTES_FILE], parsed[storage.LEADS_FILE], parsed["insert"]
    init_companies = set(tables["companies"]["company_id"])
    tomorrow = {g.new_member_id(DAY + dt.timedelta(days=1), k) for k in range(g.NEW_COMPANIES_PER_DAY)}
    assert len(quotes) == len(leads) == len(parsed["hits"]) == 600
    assert set(inserts["company_id"]).isdisjoint(init_companies)
    assert set(parsed["update"]["company_id"]) <= init_companies
    assert set(quotes["company_id"]) <= init_companies | set(inserts["company_id"]) | tomorrow
    assert set(quotes["company_id"]) & tomorrow, "some quotes name a company announced only tomorrow"
    supplier = tables["products"].set_index("prod_id")["supplier_id"]
    assert (quotes["supplier_id"] == quotes["prod_id"].map(supplier)).all()
    assert quotes["prod_id"].isin(tables["products"]["prod_id"]).all()
    assert leads["prod_id"].isin(tables["products"]["prod_id"]).all()
    assert set(leads["company_id"]) <= init_companies
    new_customers = set(leads["customer_id"]) - set(tables["customers"]["customer_id"])
    assert new_customers and all(
        g.new_member_id(DAY, 0) <= c < g.new_member_id(DAY, 100) for c in new_customers
    )


def test_day_files_follow_the_seed_rules(tables, day):
    _, parsed = day
    quotes, leads, hits = parsed[storage.QUOTES_FILE], parsed[storage.LEADS_FILE], parsed["hits"]
    order_ids = pd.concat([quotes["order_id"], leads["order_id"].dropna().astype("int64")])
    assert order_ids.is_unique and (order_ids > 5000).all()
    assert (leads["order_id"].notna() == leads["is_lead_sale"].astype(bool)).all()
    assert (
        quotes["prod_quote_price"].between(10, 10_000).all()
        and leads["prod_quote_price"].between(200, 10_000).all()
    )
    assert (quotes["quote_value"] >= quotes["prod_quote_price"] * 1.5 - 0.01).all()
    for frame in (quotes, leads, hits):
        assert frame["created_date"].dt.date.eq(DAY).all()
    assert hits["user_name"].isin(tables["customers"]["user_name"]).all()
    home = tables["customers"].set_index("user_name")["most_freq_cntry"]
    assert (hits["country"] == hits["user_name"].map(home)).mean() > 0.8
    assert 0 < hits["country"].isna().mean() < 0.1


def test_day_files_are_deterministic(tables, day):
    files, _ = day
    assert g.day_files(DAY, tables, rows=600, seed=3) == files
    assert g.day_files(DAY + dt.timedelta(days=1), tables, rows=600, seed=3) != files


def test_bad_lines_are_corrupted_so_that_each_file_rejects_exactly_that_many(tables):
    files = g.day_files(DAY, tables, rows=100, seed=1, bad_lines=3)
    for name, fields in ((storage.QUOTES_FILE, QUOTE_FIELDS), (storage.LEADS_FILE, LEAD_FIELDS)):
        rows, rejects = parse_rows(files[storage.raw_key(DAY, name)], fields, source=name)
        assert (len(rows), len(rejects)) == (97, 3)
    hits, rejects = parse_weblog(files[storage.raw_key(DAY, storage.WEBLOG_FILE)])
    assert (len(hits), len(rejects)) == (97, 3)


def test_generate_writes_init_and_days_into_the_lake(lake):
    keys = g.generate(lake, seed=0, start=DAY, days=2, init_rows=50, rows=20)
    assert len(keys) == 4 + 2 * 5 and all(lake.exists(k) for k in keys)
    assert lake.exists("b2b/raw/2024-01-02/weblogs.log")
    assert lake.read_text("b2b/init/orders.csv").count("\n") == 50


def test_rows_are_validated(tables):
    with pytest.raises(ValueError, match="rows must be between 1 and 5000"):
        g.day_files(DAY, tables, rows=5001)
