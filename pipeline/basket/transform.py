"""Pure pandas: decode input files, type them, and compute the seed's features.

Each feature function is one SQL statement of the seed (quoted in its docstring) with SQL
semantics kept where pandas differs by default: GROUP BY keeps NULL keys, SUM over only NULLs
is NULL, an inner join never matches NULL keys, RANK gives ties the same rank and skips the
next ones. The functions take and return plain frames with the columns named in this module;
:class:`PandasEngine` bundles them, and :class:`pipeline.basket.spark_transform.SparkEngine`
implements the same six on Spark, compared with these row for row. No Dagster here.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import warnings
import zlib
from collections.abc import Iterator
from typing import Protocol

import pandas as pd

from . import schema

ORDER_COLUMNS = schema.columns("orders")
ORDER_PRODUCTS_PRIOR_COLUMNS = ORDER_COLUMNS + ("product_id", "add_to_cart_order", "reordered")
USER_FEATURES_1_COLUMNS = ("user_id", "max_order_number", "total_days_prior_order", "avg_days_prior_order")
USER_FEATURES_2_COLUMNS = ("user_id", "user_total_products", "user_distinct_products", "user_reorder_ratio")
UP_FEATURES_COLUMNS = (
    "user_id",
    "product_id",
    "up_orders",
    "up_first_order",
    "up_last_order",
    "up_average_cart_position",
)
PRD_FEATURES_COLUMNS = (
    "product_id",
    "prod_orders",
    "prod_reorders",
    "prod_first_orders",
    "prod_second_orders",
)
FINAL_COLUMNS = (
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
)
FORMATS = (".csv", ".json", ".jsonl")
CHUNK_ROWS = 500_000

_DTYPES = {"int": "Int64", "float": "float64", "text": "object"}
_WHITESPACE = re.compile(r"\s*")


class InputError(ValueError):
    """A file that cannot be read as a table at all (the audit judges the ones that can)."""


# --- input -------------------------------------------------------------------------------------


def iter_records(data: bytes, name: str, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Every value as text, ``""`` when missing, from CSV or JSON lines (optionally gzipped), in
    chunks of rows whose labels continue from chunk to chunk (row 0 is the first record).

    Chunks keep a big file (the public order_products__prior.csv has 32 million rows) from being
    held as text all at once. Bytes that are not UTF-8 survive as surrogate escapes, so the audit
    can count them per column instead of the whole file failing to decode. JSON records may be
    separated by newlines or simply concatenated (as Kinesis Firehose writes them).
    """
    if name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise InputError(f"not a readable gzip file: {error}") from None
        name = name[: -len(".gz")]
    if not name.endswith(FORMATS):
        raise InputError(f"unsupported file type {name!r}: expected .csv, .json or .jsonl, optionally .gz")
    if not data.strip():
        raise InputError("the file is empty")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if name.endswith(".csv"):
        yield from _parse_csv(data, chunk_rows)
    else:
        yield _parse_json(data.decode("utf-8", errors="surrogateescape"))


def parse_records(data: bytes, name: str) -> pd.DataFrame:
    """:func:`iter_records` in one frame, for small files."""
    return pd.concat(list(iter_records(data, name)))


def _parse_csv(data: bytes, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Rows longer than the header are an error; shorter ones read as empty trailing values,
    which the null rules then judge."""
    try:
        reader = pd.read_csv(
            io.BytesIO(data),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            index_col=False,
            encoding="utf-8",
            encoding_errors="surrogateescape",
            chunksize=chunk_rows,
        )
        while True:
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)  # else pandas drops extra fields
                chunk = next(reader, None)
            if chunk is None:
                return
            yield chunk
    except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError, ValueError) as error:
        raise InputError(f"not a readable CSV file: {error}".strip()) from None


def _parse_json(text: str) -> pd.DataFrame:
    decoder = json.JSONDecoder()
    records: list[dict] = []
    position = _WHITESPACE.match(text, 0).end()
    while position < len(text):
        try:
            record, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise InputError(
                f"record {len(records) + 1} is not valid JSON: {error.msg} "
                f"at line {error.lineno} column {error.colno}"
            ) from None
        if not isinstance(record, dict):
            raise InputError(f"record {len(records) + 1} is a JSON {type(record).__name__}, not an object")
        records.append(record)
        position = _WHITESPACE.match(text, position).end()
    return pd.DataFrame(records, dtype=object).map(_as_text)


def _as_text(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return json.dumps(value)  # "true": fails a number check, as it should
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def typed(raw: pd.DataFrame, table: str) -> pd.DataFrame:
    """The table's columns in contract order and types; call only on frames the audit passed."""
    out = {}
    for field in schema.INPUT[table]:
        values = raw[field.name]
        present = values != ""
        if field.kind == "text":
            out[field.name] = values.where(present, None).astype("object")
        else:
            out[field.name] = pd.to_numeric(values.where(present, None), errors="raise").astype(
                _DTYPES[field.kind]
            )
    return pd.DataFrame(out, index=raw.index).reset_index(drop=True)


def empty(table: str) -> pd.DataFrame:
    return pd.DataFrame({f.name: pd.Series(dtype=_DTYPES[f.kind]) for f in schema.INPUT[table]})


# --- features ----------------------------------------------------------------------------------


def order_products_prior(orders: pd.DataFrame, order_products: pd.DataFrame) -> pd.DataFrame:
    """``SELECT o.*, op.product_id, op.add_to_cart_order, op.reordered FROM orders o
    JOIN order_products op ON o.order_id = op.order_id WHERE o.eval_set = 'prior'``."""
    prior = orders.loc[orders["eval_set"] == "prior", list(ORDER_COLUMNS)].dropna(subset=["order_id"])
    products = order_products[["order_id", "product_id", "add_to_cart_order", "reordered"]]
    joined = prior.merge(products.dropna(subset=["order_id"]), on="order_id", how="inner")
    return joined[list(ORDER_PRODUCTS_PRIOR_COLUMNS)].sort_values(
        ["order_id", "product_id"], ignore_index=True
    )


def user_features_1(orders: pd.DataFrame) -> pd.DataFrame:
    """``SELECT user_id, max(order_number) AS max_order_number,
    sum(days_since_prior_order) AS total_days_prior_order,
    avg(days_since_prior_order) AS avg_days_prior_order FROM orders GROUP BY user_id``
    (all eval sets; empty values ignored, and NULL when a user has no value at all)."""
    days = orders["days_since_prior_order"].astype("float64")
    grouped = orders.assign(days_since_prior_order=days).groupby("user_id", dropna=False, sort=True)
    out = pd.DataFrame(
        {
            "max_order_number": grouped["order_number"].max(),
            "total_days_prior_order": grouped["days_since_prior_order"].sum(min_count=1),
            "avg_days_prior_order": grouped["days_since_prior_order"].mean(),
        }
    )
    return out.reset_index()[list(USER_FEATURES_1_COLUMNS)]


def user_features_2(prior: pd.DataFrame) -> pd.DataFrame:
    """``SELECT user_id, count(*) AS user_total_products,
    count(DISTINCT product_id) AS user_distinct_products,
    sum(CASE WHEN reordered = 1 THEN 1 ELSE 0 END)
      / CAST(sum(CASE WHEN order_number > 1 THEN 1 ELSE 0 END) AS double) AS user_reorder_ratio
    FROM order_products_prior GROUP BY user_id``; a zero denominator gives NULL (Spark's
    non-ANSI division, the seed's engine)."""
    flags = prior.assign(
        _reordered=prior["reordered"].eq(1).fillna(False).astype("int64"),
        _later=prior["order_number"].gt(1).fillna(False).astype("int64"),
    )
    grouped = flags.groupby("user_id", dropna=False, sort=True)
    later = grouped["_later"].sum().astype("float64")
    out = pd.DataFrame(
        {
            "user_total_products": grouped.size().astype("int64"),
            "user_distinct_products": grouped["product_id"].nunique().astype("int64"),
            "user_reorder_ratio": grouped["_reordered"].sum().astype("float64") / later.where(later > 0),
        }
    )
    return out.reset_index()[list(USER_FEATURES_2_COLUMNS)]


def up_features(prior: pd.DataFrame) -> pd.DataFrame:
    """``SELECT user_id, product_id, count(*) AS up_orders, min(order_number) AS up_first_order,
    max(order_number) AS up_last_order, avg(add_to_cart_order) AS up_average_cart_position
    FROM order_products_prior GROUP BY user_id, product_id``."""
    grouped = prior.groupby(["user_id", "product_id"], dropna=False, sort=True)
    out = pd.DataFrame(
        {
            "up_orders": grouped.size().astype("int64"),
            "up_first_order": grouped["order_number"].min(),
            "up_last_order": grouped["order_number"].max(),
            "up_average_cart_position": grouped["add_to_cart_order"].mean().astype("float64"),
        }
    )
    return out.reset_index()[list(UP_FEATURES_COLUMNS)]


def product_seq_time(prior: pd.DataFrame) -> pd.Series:
    """``RANK() OVER (PARTITION BY user_id, product_id ORDER BY order_number)``: ties share the
    lowest rank and the next rank is skipped (1, 1, 3); NULL order numbers sort first, as
    Spark's ascending order does."""
    grouped = prior.groupby(["user_id", "product_id"], dropna=False)["order_number"]
    return grouped.rank(method="min", na_option="top").astype("int64")


def prd_features(prior: pd.DataFrame) -> pd.DataFrame:
    """``SELECT product_id, count(*) AS prod_orders, sum(reordered) AS prod_reorders,
    sum(CASE WHEN product_seq_time = 1 THEN 1 ELSE 0 END) AS prod_first_orders,
    sum(CASE WHEN product_seq_time = 2 THEN 1 ELSE 0 END) AS prod_second_orders
    FROM (SELECT *, RANK() OVER (...) AS product_seq_time FROM order_products_prior)
    GROUP BY product_id`` (see :func:`product_seq_time`)."""
    seq = product_seq_time(prior)
    flags = prior.assign(_first=seq.eq(1).astype("int64"), _second=seq.eq(2).astype("int64"))
    grouped = flags.groupby("product_id", dropna=False, sort=True)
    out = pd.DataFrame(
        {
            "prod_orders": grouped.size().astype("int64"),
            "prod_reorders": grouped["reordered"].sum(min_count=1).astype("Int64"),
            "prod_first_orders": grouped["_first"].sum().astype("int64"),
            "prod_second_orders": grouped["_second"].sum().astype("int64"),
        }
    )
    return out.reset_index()[list(PRD_FEATURES_COLUMNS)]


def basket_features(
    up: pd.DataFrame, user_1: pd.DataFrame, user_2: pd.DataFrame, prd: pd.DataFrame
) -> pd.DataFrame:
    """``up_features JOIN user_features_1 USING (user_id) JOIN user_features_2 USING (user_id)
    JOIN prd_features USING (product_id)``: the 16 columns of the final CSV, in order."""
    joined = (
        up.dropna(subset=["user_id", "product_id"])
        .merge(user_1.dropna(subset=["user_id"]), on="user_id", how="inner")
        .merge(user_2.dropna(subset=["user_id"]), on="user_id", how="inner")
        .merge(prd.dropna(subset=["product_id"]), on="product_id", how="inner")
    )
    return joined[list(FINAL_COLUMNS)].sort_values(["user_id", "product_id"], ignore_index=True)


# --- engines -----------------------------------------------------------------------------------


class FeatureEngine(Protocol):
    """What the feature assets ask of an engine: pandas frames in and out whatever it computes on,
    the same frames from every engine (dtypes and row order included)."""

    name: str

    def order_products_prior(self, orders: pd.DataFrame, order_products: pd.DataFrame) -> pd.DataFrame: ...
    def user_features_1(self, orders: pd.DataFrame) -> pd.DataFrame: ...
    def user_features_2(self, prior: pd.DataFrame) -> pd.DataFrame: ...
    def up_features(self, prior: pd.DataFrame) -> pd.DataFrame: ...
    def prd_features(self, prior: pd.DataFrame) -> pd.DataFrame: ...
    def basket_features(
        self, up: pd.DataFrame, user_1: pd.DataFrame, user_2: pd.DataFrame, prd: pd.DataFrame
    ) -> pd.DataFrame: ...


class PandasEngine:
    name = "pandas"
    order_products_prior = staticmethod(order_products_prior)
    user_features_1 = staticmethod(user_features_1)
    user_features_2 = staticmethod(user_features_2)
    up_features = staticmethod(up_features)
    prd_features = staticmethod(prd_features)
    basket_features = staticmethod(basket_features)
