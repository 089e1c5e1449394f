"""Every feature against values computed by hand from the tiny data set below.

Users: 1 has three prior orders and a train order; 2 has two prior orders and a test order and
buys product 200 twice in order 21 (a RANK tie at 2: ranks 1, 2, 2); 3 buys product 300 twice
in its first order and again in its second (a tie at 1: ranks 1, 1, 3, so no "second" order);
4 has one prior order only (no days at all, no order after the first). Order 99 has products
but no order row (dropped by the inner join).
"""

import gzip
import math

import pandas as pd
import pytest

from pipeline.basket import transform

NAN = float("nan")

ORDERS = pd.DataFrame(
    [
        (10, 1, "prior", 1, 2, 8, NAN),
        (11, 1, "prior", 2, 3, 7, 15.0),
        (12, 1, "prior", 3, 3, 12, 21.0),
        (13, 1, "train", 4, 4, 7, 29.0),
        (20, 2, "prior", 1, 5, 15, NAN),
        (21, 2, "prior", 2, 1, 9, 8.0),
        (22, 2, "test", 3, 1, 10, 30.0),
        (30, 3, "prior", 1, 0, 11, NAN),
        (31, 3, "prior", 2, 6, 20, 6.0),
        (40, 4, "prior", 1, 2, 9, NAN),
    ],
    columns=list(transform.ORDER_COLUMNS),
).astype({c: "Int64" for c in ("order_id", "user_id", "order_number", "order_dow", "order_hour_of_day")})

ORDER_PRODUCTS = pd.DataFrame(
    [
        (10, 100, 1, 0),
        (10, 200, 2, 0),
        (11, 100, 1, 1),
        (11, 300, 2, 0),
        (12, 100, 2, 1),
        (12, 200, 1, 1),
        (12, 300, 3, 1),
        (13, 100, 1, 1),  # train order: not prior
        (20, 200, 1, 0),
        (21, 200, 1, 1),
        (21, 100, 2, 0),
        (21, 200, 3, 1),  # 200 twice in order_number 2
        (30, 300, 1, 0),
        (30, 300, 2, 0),  # 300 twice in order_number 1
        (31, 300, 1, 1),
        (40, 100, 1, 0),
        (99, 100, 1, 0),  # no such order
    ],
    columns=["order_id", "product_id", "add_to_cart_order", "reordered"],
).astype("Int64")


@pytest.fixture
def prior():
    return transform.order_products_prior(ORDERS, ORDER_PRODUCTS)


def rows(frame):
    """Records with NaN/NA as None, so equality with hand-written tuples is exact."""
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False)]


def test_order_products_prior_keeps_prior_orders_that_exist(prior):
    assert list(prior.columns) == [
        "order_id",
        "user_id",
        "eval_set",
        "order_number",
        "order_dow",
        "order_hour_of_day",
        "days_since_prior_order",
        "product_id",
        "add_to_cart_order",
        "reordered",
    ]
    assert len(prior) == 15  # 17 rows minus the train order's and order 99's
    assert set(prior["eval_set"]) == {"prior"}
    assert 13 not in set(prior["order_id"]) and 99 not in set(prior["order_id"])
    assert rows(prior[prior["order_id"] == 11]) == [
        (11, 1, "prior", 2, 3, 7, 15.0, 100, 1, 1),
        (11, 1, "prior", 2, 3, 7, 15.0, 300, 2, 0),
    ]
    assert rows(prior[prior["order_id"] == 40]) == [(40, 4, "prior", 1, 2, 9, None, 100, 1, 0)]


def test_user_features_1_over_all_orders_ignoring_empty_days():
    out = transform.user_features_1(ORDERS)
    assert list(out.columns) == [
        "user_id",
        "max_order_number",
        "total_days_prior_order",
        "avg_days_prior_order",
    ]
    assert rows(out[["user_id", "max_order_number", "total_days_prior_order"]]) == [
        (1, 4, 65.0),  # 15 + 21 + 29: the train order counts too
        (2, 3, 38.0),  # 8 + 30: the test order counts too
        (3, 2, 6.0),
        (4, 1, None),  # only a first order: SUM over no value is NULL, not 0
    ]
    assert out["avg_days_prior_order"].tolist()[:3] == pytest.approx([65 / 3, 19.0, 6.0])
    assert math.isnan(out["avg_days_prior_order"].iloc[3])


def test_user_features_2_ratio_over_rows_after_the_first_order(prior):
    out = transform.user_features_2(prior)
    assert list(out.columns) == [
        "user_id",
        "user_total_products",
        "user_distinct_products",
        "user_reorder_ratio",
    ]
    assert rows(out[["user_id", "user_total_products", "user_distinct_products"]]) == [
        (1, 7, 3),
        (2, 4, 2),
        (3, 3, 1),
        (4, 1, 1),
    ]
    ratio = out["user_reorder_ratio"].tolist()
    # user 1: 4 reordered rows / 5 rows in orders 2 and 3; user 2: 2 / 3; user 3: 1 / 1;
    # user 4: no row after the first order -> NULL (Spark's division by zero), not 0 or inf.
    assert ratio[:3] == pytest.approx([4 / 5, 2 / 3, 1.0])
    assert math.isnan(ratio[3])
    assert out["user_reorder_ratio"].dtype == "float64"


def test_up_features(prior):
    out = transform.up_features(prior)
    assert list(out.columns) == [
        "user_id",
        "product_id",
        "up_orders",
        "up_first_order",
        "up_last_order",
        "up_average_cart_position",
    ]
    expected = [
        (1, 100, 3, 1, 3, 4 / 3),
        (1, 200, 2, 1, 3, 1.5),
        (1, 300, 2, 2, 3, 2.5),
        (2, 100, 1, 2, 2, 2.0),
        (2, 200, 3, 1, 2, 5 / 3),
        (3, 300, 3, 1, 2, 4 / 3),
        (4, 100, 1, 1, 1, 1.0),
    ]
    got = rows(out)
    assert [r[:5] for r in got] == [e[:5] for e in expected]
    assert [r[5] for r in got] == pytest.approx([e[5] for e in expected])


def test_product_seq_time_is_rank_with_ties(prior):
    seq = prior.assign(seq=transform.product_seq_time(prior))
    by_pair = seq.sort_values(["user_id", "product_id", "order_number", "add_to_cart_order"])
    ranks = by_pair.groupby(["user_id", "product_id"])["seq"].apply(list).to_dict()
    assert ranks == {
        (1, 100): [1, 2, 3],
        (1, 200): [1, 2],
        (1, 300): [1, 2],
        (2, 100): [1],
        (2, 200): [1, 2, 2],  # tie at 2: both rows rank 2
        (3, 300): [1, 1, 3],  # tie at 1: rank 2 is skipped
        (4, 100): [1],
    }


def test_prd_features(prior):
    out = transform.prd_features(prior)
    assert list(out.columns) == [
        "product_id",
        "prod_orders",
        "prod_reorders",
        "prod_first_orders",
        "prod_second_orders",
    ]
    assert rows(out) == [
        # 100: rows (1,100)x3 (2,100) (4,100); reordered in orders 11 and 12; rank 1 for users 1, 2, 4;
        #      rank 2 for user 1 only.
        (100, 5, 2, 3, 1),
        # 200: rows (1,200)x2 (2,200)x3; reordered in 12, 21, 21; rank 1 for users 1, 2; rank 2 once for
        #      user 1 and twice for user 2 (the tie).
        (200, 5, 3, 2, 3),
        # 300: rows (1,300)x2 (3,300)x3; reordered in 12, 31; rank 1 once for user 1 and twice for user 3
        #      (the tie); rank 2 only for user 1 (user 3 goes 1, 1, 3).
        (300, 5, 2, 3, 1),
    ]


def test_basket_features_joins_the_four_tables_into_16_columns(prior):
    out = transform.basket_features(
        transform.up_features(prior),
        transform.user_features_1(ORDERS),
        transform.user_features_2(prior),
        transform.prd_features(prior),
    )
    assert list(out.columns) == [
        "product_id",
        "user_id",
        "up_orders",
        "up_first_order",
        "up_last_order",
        "up_average_cart_position",
        "max_order_number",
        "total_days_prior_order",
        "avg_days_prior_order",
        "user_total_products",
        "user_distinct_products",
        "user_reorder_ratio",
        "prod_orders",
        "prod_reorders",
        "prod_first_orders",
        "prod_second_orders",
    ]
    assert len(out) == 7
    by_key = {(r[1], r[0]): r for r in rows(out)}
    assert by_key[(2, 200)] == pytest.approx((200, 2, 3, 1, 2, 5 / 3, 3, 38.0, 19.0, 4, 2, 2 / 3, 5, 3, 2, 3))
    assert by_key[(4, 100)] == (100, 4, 1, 1, 1, 1.0, 1, None, None, 1, 1, None, 5, 2, 3, 1)


def test_basket_features_is_an_inner_join():
    up = pd.DataFrame(
        {
            "user_id": [1, 2],
            "product_id": [7, 8],
            "up_orders": [1, 1],
            "up_first_order": [1, 1],
            "up_last_order": [1, 1],
            "up_average_cart_position": [1.0, 1.0],
        }
    )
    user_1 = pd.DataFrame(
        {
            "user_id": [1],
            "max_order_number": [2],
            "total_days_prior_order": [3.0],
            "avg_days_prior_order": [3.0],
        }
    )
    user_2 = pd.DataFrame(
        {
            "user_id": [1, 2],
            "user_total_products": [1, 1],
            "user_distinct_products": [1, 1],
            "user_reorder_ratio": [0.0, 0.0],
        }
    )
    prd = pd.DataFrame(
        {
            "product_id": [7, 8],
            "prod_orders": [1, 1],
            "prod_reorders": [0, 0],
            "prod_first_orders": [1, 1],
            "prod_second_orders": [0, 0],
        }
    )
    out = transform.basket_features(up, user_1, user_2, prd)
    assert out[["user_id", "product_id"]].values.tolist() == [[1, 7]]  # user 2 has no user_features_1 row


# --- reading files ------------------------------------------------------------------------------

PUBLIC_ORDERS = (
    b"order_id,user_id,eval_set,order_number,order_dow,order_hour_of_day,days_since_prior_order\n"
    b"2539329,1,prior,1,2,08,\n"
    b"2398795,1,prior,2,3,07,15.0\n"
)


def test_public_csv_reads_and_types():
    raw = transform.parse_records(PUBLIC_ORDERS, "orders.csv")
    assert raw.values.tolist() == [
        ["2539329", "1", "prior", "1", "2", "08", ""],
        ["2398795", "1", "prior", "2", "3", "07", "15.0"],
    ]
    typed = transform.typed(raw, "orders")
    assert rows(typed) == [(2539329, 1, "prior", 1, 2, 8, None), (2398795, 1, "prior", 2, 3, 7, 15.0)]
    assert str(typed["order_id"].dtype) == "Int64" and typed["days_since_prior_order"].dtype == "float64"


def test_quoted_product_names_with_commas():
    data = b'product_id,product_name,aisle_id,department_id\n1,"Paper Towels, 6 Rolls",54,17\n'
    data += b'2,"Mini ""Twists""",107,19\n'
    assert transform.parse_records(data, "products.csv")["product_name"].tolist() == [
        "Paper Towels, 6 Rolls",
        'Mini "Twists"',
    ]


def test_json_lines_and_concatenated_json_and_gzip_read_the_same():
    lines = (
        b'{"order_id": 2, "product_id": 33120, "add_to_cart_order": 1, "reordered": 1}\n'
        b'{"order_id": 2, "product_id": 28985, "add_to_cart_order": 2, "reordered": null}\n'
    )
    concatenated = lines.replace(b"\n", b"")
    expected = [["2", "33120", "1", "1"], ["2", "28985", "2", ""]]
    assert transform.parse_records(lines, "a.jsonl").values.tolist() == expected
    assert transform.parse_records(concatenated, "a.json").values.tolist() == expected
    assert transform.parse_records(gzip.compress(lines), "a.jsonl.gz").values.tolist() == expected


def test_byte_order_mark_is_not_part_of_the_first_column():
    raw = transform.parse_records(b"\xef\xbb\xbfaisle_id,aisle\n1,prepared soups salads\n", "aisles.csv")
    assert list(raw.columns) == ["aisle_id", "aisle"]


@pytest.mark.parametrize(
    "data, name, message",
    [
        (b"", "a.csv", "empty"),
        (b"a,b\n1,2,3\n", "a.csv", "not a readable CSV"),
        (b'{"order_id": 1}\n{"order_id": \n', "a.jsonl", "record 2 is not valid JSON"),
        (b"[1, 2]", "a.json", "record 1 is a JSON list"),
        (b"not gzip", "a.csv.gz", "gzip"),
        (b"x", "a.xlsx", "unsupported file type"),
    ],
)
def test_unreadable_files_raise_a_clear_error(data, name, message):
    with pytest.raises(transform.InputError, match=message):
        transform.parse_records(data, name)
