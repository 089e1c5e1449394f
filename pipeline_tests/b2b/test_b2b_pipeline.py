"""The b2b assets materialized on the real embedded PostgreSQL and a folder lake: the init
load, then two daily partitions, with counts derived independently from the files."""

import datetime as dt

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from psycopg import sql

from pipeline.b2b.assets import COMPANIES_KEY, RAW_FILES, build_assets
from pipeline.b2b.checks import build_checks
from pipeline.b2b.tables import COMPANIES, CORE, CUSTOMERS, ORDERS, REPORTS, WEBLOG_HITS
from pipeline.b2b.transform import PandasEngine
from pipeline.resources.lake import LakeResource
from pipeline.resources.warehouse import WarehouseResource

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = dt.date(2024, 1, 1)
DAY2 = dt.date(2024, 1, 2)


def _lines(lake, key):
    return [line.split(",") for line in lake.read_text(key).splitlines() if line]


def _checks_passed(result):
    evaluations = result.get_asset_check_evaluations()
    assert evaluations
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed for e in evaluations}


def _table(warehouse, spec, order_by):
    return warehouse.read_frame(
        sql.SQL("SELECT * FROM {} ORDER BY {}").format(spec.table, sql.Identifier(order_by))
    )


def test_init_and_daily_partitions_on_postgres(warehouse, lake, pg_url):
    assets, checks = build_assets(START, PandasEngine()), build_checks()
    resources = {"warehouse": WarehouseResource(url=pg_url), "lake": LakeResource(url=str(lake.root))}
    init, daily = assets[0], assets[1:]

    # Initial load: 5,000 rows per table, integrity checked, the init day's snapshots written.
    result = dg.materialize([init, *checks], selection=[init.key], resources=resources)
    assert result.success
    assert all(_checks_passed(result).values())
    assert {spec.name: warehouse.row_count(spec) for spec in CORE} == dict.fromkeys(
        ("companies", "customers", "products", "orders"), 5000
    )
    assert lake.exists("b2b/final/table=weblogs/2023-12-31/part-0.parquet")

    # Day 1, clean files.
    day1 = dg.materialize(
        [*assets, *checks],
        selection=dg.AssetSelection.assets(*daily),
        partition_key="2024-01-01",
        resources=resources,
    )
    assert day1.success
    checks_day1 = _checks_passed(day1)
    assert all(checks_day1.values()) and "b2b/orders:referential_integrity" in checks_day1

    quotes = _lines(lake, "b2b/raw/2024-01-01/companycsv.csv")
    sales = [row for row in _lines(lake, "b2b/raw/2024-01-01/leadcsv.csv") if row[4] == "true"]
    inserted = {int(row[0]) for row in _lines(lake, "b2b/insert/2024-01-01/companies.csv")}
    init_ids = set(range(1, 5001))
    inferred_companies = {int(row[5]) for row in quotes} - init_ids - inserted
    inferred_customers = {int(row[6]) for row in sales} - init_ids
    assert inferred_companies and inferred_customers
    assert warehouse.row_count(ORDERS) == 5000 + len(quotes) + len(sales)
    assert warehouse.row_count(COMPANIES) == 5000 + len(inserted) + len(inferred_companies)
    assert warehouse.row_count(CUSTOMERS) == 5000 + len(inferred_customers)
    assert warehouse.row_count(WEBLOG_HITS) == 2000

    init_lead_orders = sum(
        1 for row in _lines(lake, "b2b/init/orders.csv") if row[4] == "true" and row[5] != "-1"
    )
    total_leads = pd.read_csv(lake.root / "b2b/final/report=total_leads/2024-01-01/part-0.csv")
    assert total_leads["total_leads"].sum() == init_lead_orders + len(sales)
    monthly = pd.read_csv(lake.root / "b2b/final/report=monthly_sales/2024-01-01/part-0.csv")
    assert list(monthly.columns) == ["sale_month", "sale_year", "monthly_sales", "monthly_profit"]
    stored = warehouse.scalar(
        sql.SQL("SELECT count(*) FROM {} WHERE report_date = %s").format(REPORTS["monthly_sales"].table),
        (START,),
    )
    assert stored == len(monthly) > 0
    devices = pd.read_csv(lake.root / "b2b/final/report=most_used_devices/2024-01-01/part-0.csv")
    assert len(devices) == 5 and devices["total_devices"].is_monotonic_decreasing

    # The same day's company files applied again change nothing.
    before = _table(warehouse, COMPANIES, "company_id")
    again = dg.materialize(
        [*assets, *checks], selection=[COMPANIES_KEY], partition_key="2024-01-01", resources=resources
    )
    metadata = again.asset_materializations_for_node("b2b__companies")[0].metadata
    assert (metadata["inserted"].value, metadata["updated"].value) == (0, 0)
    assert _table(warehouse, COMPANIES, "company_id").equals(before)

    # Day 2 with broken lines: quarantined with reasons, the rest loaded, yesterday's inferred
    # companies named by today's insert file.
    day2 = dg.materialize(
        [*assets, *checks],
        selection=dg.AssetSelection.assets(*daily),
        partition_key="2024-01-02",
        resources=resources,
        run_config={"ops": {RAW_FILES.to_python_identifier(): {"config": {"bad_lines": 2}}}},
    )
    assert day2.success and all(_checks_passed(day2).values())
    for name in ("companycsv.csv", "leadcsv.csv", "weblogs.log"):
        reasons = pd.read_csv(lake.root / f"quarantine/b2b/2024-01-02/{name}.reasons.csv")
        assert len(reasons) == 2 and reasons["reason"].notna().all()
        assert len(lake.read_text(f"quarantine/b2b/2024-01-02/{name}").splitlines()) == 2
    assert (
        warehouse.scalar(
            sql.SQL("SELECT count(*) FROM {} WHERE log_date = %s").format(WEBLOG_HITS.table), (DAY2,)
        )
        == 1998
    )
    unnamed = warehouse.scalar(
        sql.SQL("SELECT count(*) FROM {} WHERE company_id = ANY(%s) AND company_name IS NULL").format(
            COMPANIES.table
        ),
        (sorted(inferred_companies),),
    )
    assert unnamed == 0

    # Snapshots: one Parquet dataset per table, partitioned by day.
    dataset = ds.dataset(
        lake.root / "b2b/final/table=orders",
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("snapshot_date", pa.date32())])),
    )
    per_day = dataset.to_table(columns=["snapshot_date"]).to_pandas()["snapshot_date"].value_counts()
    assert per_day[dt.date(2023, 12, 31)] == 5000
    assert per_day[START] == 5000 + len(quotes) + len(sales)
    assert per_day[DAY2] == warehouse.row_count(ORDERS)
