"""The audit passes clean data and fails on each kind of defect, with the figures it reports."""

import pandas as pd
import pytest

from pipeline.basket import audit, checks, files, transform
from pipeline.basket.config import BasketConfig

ORDERS_CSV = (
    "order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order\n"
    "1,7,prior,1,2,08,\n"
    "2,7,prior,2,3,07,15.0\n"
    "3,7,train,3,6,23,30.0\n"
)
DEPARTMENTS_CSV = "department_id,department\n1,frozen\n2,bakery\n"
AISLES_CSV = "aisle_id,aisle\n10,ice cream ice\n20,bread\n"
PRODUCTS_CSV = (
    'product_id,product_name,aisle_id,department_id\n100,"Mango Sorbet",10,1\n200,Crème Fraîche Loaf,20,2\n'
)


def raw(text: str | bytes, name: str = "f.csv"):
    return transform.parse_records(text.encode() if isinstance(text, str) else text, name)


def orders(text: str = ORDERS_CSV):
    return transform.typed(raw(text), "orders")


# --- file level: columns, types, UTF-8 -----------------------------------------------------------


def test_clean_files_have_no_problems():
    assert audit.column_problems(raw(ORDERS_CSV), "orders") == []
    assert audit.column_problems(raw(PRODUCTS_CSV), "products") == []
    assert audit.invalid_utf8(raw(PRODUCTS_CSV), "products") == {"product_name": 0}


def test_missing_column():
    problems = audit.column_problems(raw("order_id,product_id,reordered\n1,2,0\n"), "order_products")
    assert problems == [
        "missing required column(s) add_to_cart_order; the file has order_id, product_id, reordered"
    ]


@pytest.mark.parametrize(
    "row, expected",
    [
        ("x,7,prior,1,2,08,", "order_id: 1 value(s) are not a whole number (row 1: 'x')"),
        ("1,7.5,prior,1,2,08,", "user_id: 1 value(s) are not a whole number (row 1: '7.5')"),
        ("1,7,later,1,2,08,", "eval_set: 1 value(s) are not one of prior, train, test (row 1: 'later')"),
        ("1,7,prior,0,2,08,", "order_number: 1 value(s) are not at least 1 (row 1: '0')"),
        ("1,7,prior,1,7,08,", "order_dow: 1 value(s) are not between 0 and 6 (row 1: '7')"),
        ("1,7,prior,1,2,24,", "order_hour_of_day: 1 value(s) are not between 0 and 23 (row 1: '24')"),
        ("1,7,prior,2,2,08,soon", "days_since_prior_order: 1 value(s) are not a number (row 1: 'soon')"),
        ("1,7,prior,2,2,08,-1", "days_since_prior_order: 1 value(s) are not at least 0 (row 1: '-1')"),
    ],
)
def test_wrong_types_and_values(row, expected):
    header = ORDERS_CSV.splitlines()[0]
    assert audit.column_problems(raw(f"{header}\n{row}\n"), "orders") == [expected]


def test_reordered_is_zero_or_one():
    problems = audit.column_problems(
        raw("order_id,product_id,add_to_cart_order,reordered\n1,2,1,2\n"), "order_products"
    )
    assert problems == ["reordered: 1 value(s) are not between 0 and 1 (row 1: '2')"]


def test_invalid_utf8_is_counted_per_text_column():
    latin1 = "product_id,product_name,aisle_id,department_id\n1,Crème,10,1\n2,Brie,10,1\n".encode("latin-1")
    assert audit.invalid_utf8(raw(latin1), "products") == {"product_name": 1}


# --- table level ---------------------------------------------------------------------------------


def test_nulls_clean_data_passes_with_empty_days_on_first_orders():
    finding = audit.null_thresholds(orders(), "orders")
    assert finding.passed
    assert finding.figures["nulls"]["days_since_prior_order"] == 1
    assert finding.figures["days_since_prior_order_empty_after_first_order"] == 0


def test_nulls_days_empty_after_the_first_order_fails():
    text = ORDERS_CSV.replace("2,7,prior,2,3,07,15.0", "2,7,prior,2,3,07,")
    finding = audit.null_thresholds(orders(text), "orders")
    assert not finding.passed
    assert finding.figures["days_since_prior_order_empty_after_first_order"] == 1
    assert finding.figures["columns_over_threshold"] == []


def test_nulls_in_a_required_column_fail_and_are_counted():
    text = ORDERS_CSV.replace("3,7,train", "3,,train")
    finding = audit.null_thresholds(orders(text), "orders")
    assert not finding.passed
    assert finding.figures["nulls"]["user_id"] == 1
    assert finding.figures["columns_over_threshold"] == ["user_id"]


def test_null_threshold_is_a_share():
    frame = orders(ORDERS_CSV.replace("3,7,train", "3,,train"))
    assert audit.null_thresholds(frame, "orders", {("orders", "user_id"): 0.5}).passed  # 1 of 3 rows
    assert not audit.null_thresholds(frame, "orders", {("orders", "user_id"): 0.3}).passed


@pytest.mark.parametrize(
    "rows, previous, passed",
    [
        (100, 0, True),
        (100, 100, True),
        (100, 50, True),
        (100, 200, True),
        (100, 201, False),
        (100, 49, False),
        (0, 0, False),
    ],
)
def test_row_count_and_day_over_day_band(rows, previous, passed):
    finding = audit.row_count(rows, 1, previous, (0.5, 2.0))
    assert finding.passed is passed
    assert finding.figures["rows"] == rows and finding.figures["previous_day_rows"] == previous


def test_row_count_reports_the_ratio():
    assert audit.row_count(150, 1, 100, (0.5, 2.0)).figures["day_over_day_ratio"] == 1.5


def test_unique_keys_within_and_across_days():
    frame = pd.DataFrame({"order_id": [1, 2, 3], "product_id": [5, 5, 5]})
    assert audit.duplicate_keys(frame, ["order_id"]).passed
    twice = audit.duplicate_keys(pd.concat([frame, frame.iloc[:1]]), ["order_id"])
    assert not twice.passed and twice.figures["duplicate_rows"] == 2 and twice.figures["examples"] == [[1]]
    elsewhere = audit.duplicate_keys(frame, ["order_id"], pd.DataFrame({"order_id": [3, 9]}))
    assert not elsewhere.passed and elsewhere.figures["rows_clashing_with_other_days"] == 1


def test_unique_composite_key():
    frame = pd.DataFrame({"order_id": [1, 1, 2], "product_id": [5, 6, 5]})
    assert audit.duplicate_keys(frame, ["order_id", "product_id"]).passed
    dup = audit.duplicate_keys(pd.concat([frame, frame.iloc[[1]]]), ["order_id", "product_id"])
    assert not dup.passed and dup.figures["examples"] == [[1, 6]]


def test_orphans():
    child = pd.DataFrame({"product_id": [100, 200, 300, 300]})
    assert audit.orphans(child, "product_id", [100, 200, 300]).passed
    finding = audit.orphans(child, "product_id", [100, 200])
    assert not finding.passed
    assert finding.figures == {"rows": 4, "orphan_rows": 2, "orphan_values": 1, "examples": [300]}


# --- staging and the reference audit as check results ----------------------------------------


def push_reference(lake, products=PRODUCTS_CSV, aisles=AISLES_CSV, departments=DEPARTMENTS_CSV):
    for table, text in (("departments", departments), ("aisles", aisles), ("products", products)):
        lake.write_bytes(files.reference_key(table), text.encode("utf-8") if isinstance(text, str) else text)


def reference_results(lake):
    staged = {
        t: files.stage(lake, t, lake.list(files.reference_key(t)))
        for t in ("departments", "aisles", "products")
    }
    results = checks.audit_reference(staged, {t: 0 for t in staged}, BasketConfig())
    return {r.check_name: r for r in results}


def test_reference_audit_passes_clean_data(lake):
    push_reference(lake)
    results = reference_results(lake)
    assert list(results) == list(checks.CHECKS)
    assert all(r.passed for r in results.values())
    assert results["row_counts"].metadata["products.rows"].value == 2


@pytest.mark.parametrize(
    "change, failing",
    [
        ({"products": PRODUCTS_CSV.replace(",10,1", ",99,1")}, {"referential_integrity"}),
        ({"products": PRODUCTS_CSV.replace(",20,2", ",20,98")}, {"referential_integrity"}),
        ({"aisles": AISLES_CSV + "20,bread again\n"}, {"unique_keys"}),
        ({"products": PRODUCTS_CSV.replace('"Mango Sorbet"', "")}, {"null_thresholds"}),
        # No departments: too few rows, and the products now name departments that do not exist.
        ({"departments": "department_id,department\n"}, {"row_counts", "referential_integrity"}),
        # A rejected file is quarantined, which leaves its table without rows.
        ({"products": PRODUCTS_CSV.replace(",10,1", ",ten,1")}, {"columns_and_types", "row_counts"}),
        ({"products": PRODUCTS_CSV.encode("latin-1")}, {"valid_utf8", "row_counts"}),
    ],
)
def test_reference_audit_fails_on_each_defect(lake, change, failing):
    push_reference(lake, **change)
    results = reference_results(lake)
    assert {name for name, r in results.items() if not r.passed} == failing


def test_a_bad_file_is_quarantined_with_its_reason(lake):
    push_reference(lake, products=PRODUCTS_CSV.encode("latin-1"))
    result = reference_results(lake)["valid_utf8"]
    assert result.metadata["products.invalid_values"].value == {"product_name": 1}
    target = "quarantine/basket/reference/products.csv"
    assert result.metadata["products.quarantined"].value == {
        target: ["product_name: 1 value(s) hold bytes that are not valid UTF-8"],
    }
    assert not lake.exists("basket/reference/products.csv")
    assert lake.read_bytes(target) == PRODUCTS_CSV.encode("latin-1")
    assert "not valid UTF-8" in lake.read_text(target + ".reason.txt")


def test_big_files_are_read_in_chunks_and_rows_counted_across_them():
    header, first, second = ORDERS_CSV.splitlines()[:3]
    text = "\n".join([header, first, second, first, "x" + first[1:], second]) + "\n"
    chunks = list(transform.iter_records(text.encode(), "orders.csv", chunk_rows=2))
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]
    problems = [p for chunk in chunks for p in audit.column_problems(chunk, "orders")]
    assert problems == ["order_id: 1 value(s) are not a whole number (row 4: 'x')"]
