"""The b2b :class:`~pipeline.b2b.transform.Engine` on Spark (``PIPELINE_ENGINE=spark``).

Same formulas as the pandas engine, same pandas frames in and out (the assets and the
warehouse speak pandas): each method sends the columns it needs to Spark through Arrow, computes
there, and hands back a frame equal to the pandas engine's, dtypes and row order included. The
parity test holds the two to that.

Money crosses as a double and becomes ``decimal(15,4)`` in Spark: a ``numeric(15,4)`` amount has
at most 15 significant digits, which a double and Spark's double-to-decimal cast (shortest
representation, then rounding) carry exactly. Sums stay decimal and ``round(x, 2)`` rounds half
away from zero, as the pandas engine's integer arithmetic does; results become doubles only at
the end, as there. Months and days are UTC: the session must run in UTC (``spark_config`` sets
it). The session starts on first use, never at import; no Dagster here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline.b2b.transform import ORDER_COLUMNS, REJECT_COLUMNS

MONEY = T.DecimalType(15, 4)
ROW = "_row"  # the pandas index label of a row, carried through Spark to give it back

ORDERS = {
    "order_id": T.LongType(),
    "prod_id": T.LongType(),
    "customer_id": T.LongType(),
    "prod_quote_price": T.DoubleType(),
    "is_lead_sale": T.BooleanType(),
    "crm_lead_id": T.LongType(),
    "company_id": T.LongType(),
    "created_date": T.TimestampType(),
}
TRACE = {"source": T.StringType(), "line_number": T.LongType(), "line": T.StringType()}
PRODUCTS = {"prod_id": T.LongType(), "prod_unit_price": T.DoubleType()}
CUSTOMERS = {"customer_id": T.LongType(), "user_name": T.StringType()}
COMPANIES = {"company_id": T.LongType(), "company_name": T.StringType()}
WEBLOGS = {
    "user_name": T.StringType(),
    "country": T.StringType(),
    "device": T.StringType(),
    "prod_id": T.LongType(),
    "created_date": T.TimestampType(),
}
# The pandas engine's dtypes of each report.
REPORT_DTYPES: dict[str, dict[str, Any]] = {
    "monthly_sales": {
        "sale_month": "int64",
        "sale_year": "int64",
        "monthly_sales": "float64",
        "monthly_profit": "float64",
    },
    "most_popular_products": {"prod_id": "int64", "country": object},
    "most_used_devices": {"device": object, "total_devices": "int64"},
    "total_leads": {"customer_id": "int64", "total_leads": "int64"},
    "daily_sales": {"sale_date": object, "revenue": "float64", "orders": "int64", "units": "int64"},
    "top_companies": {
        "rank": "int64",
        "company_id": "int64",
        "company_name": object,
        "revenue": "float64",
        "orders": "int64",
    },
    "product_conversion": {
        "prod_id": "int64",
        "page_views": "int64",
        "orders": "int64",
        "conversion": "float64",
    },
}
_PANDAS = {
    T.LongType(): "Int64",
    T.DoubleType(): "float64",
    T.BooleanType(): "boolean",
    T.StringType(): "object",
}


def to_spark(spark: SparkSession, frame: pd.DataFrame, columns: dict[str, T.DataType]) -> DataFrame:
    """The named columns as a Spark DataFrame of the given types (an empty frame has nothing to
    infer them from). Values are first put in the pandas dtype Arrow maps to that type exactly:
    ids read back as floats or Decimal amounts would otherwise push Spark off Arrow."""
    data = {}
    for name, kind in columns.items():
        values = frame[name]
        if kind == T.TimestampType():
            data[name] = pd.to_datetime(values, utc=True)
        else:
            data[name] = values.astype(_PANDAS[kind])
    schema = T.StructType([T.StructField(name, kind) for name, kind in columns.items()])
    return spark.createDataFrame(pd.DataFrame(data, index=frame.index), schema=schema)


def to_pandas(df: DataFrame, dtypes: dict[str, Any]) -> pd.DataFrame:
    """Back to pandas through Arrow with the pandas engine's dtypes. Integers come back as
    nullable Int64 first, not via float64 as ``toPandas`` does with nulls, so big ids stay exact."""
    frame = df.toArrow().to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return frame.astype(dtypes)


def _indexed(spark: SparkSession, frame: pd.DataFrame, columns: dict[str, T.DataType]) -> DataFrame:
    labelled = frame.assign(**{ROW: frame.index.to_numpy()})
    return to_spark(spark, labelled, {**columns, ROW: T.LongType()})


def _reindexed(df: DataFrame, dtypes: dict[str, Any]) -> pd.DataFrame:
    """Rows in the order and with the index labels of the pandas input."""
    frame = to_pandas(df.orderBy(ROW), {**dtypes, ROW: "int64"})
    return frame.set_index(ROW).rename_axis(None)


def _cents(amount: str) -> Column:
    """An exact decimal amount rounded to cents, half away from zero, then a double."""
    return F.round(amount, 2).cast("double")


def _price() -> Column:
    """The quote price as the exact decimal it is in the warehouse."""
    return F.col("prod_quote_price").cast(MONEY)


def _in_utc(session: SparkSession) -> SparkSession:
    """Months and days of the reports are UTC ones: refuse a session that would shift them."""
    zone = session.conf.get("spark.sql.session.timeZone")
    if zone != "UTC":
        raise ValueError(f"the b2b Spark engine needs spark.sql.session.timeZone=UTC, not {zone!r}")
    return session


class SparkEngine:
    """The Spark engine; ``session`` for a session started elsewhere (tests), else one started on
    first use with ``master``."""

    name = "spark"

    def __init__(self, master: str = "local[*]", *, session: SparkSession | None = None):
        self._master = master
        self._session = _in_utc(session) if session is not None else None

    @property
    def spark(self) -> SparkSession:
        if self._session is None:
            from pipeline.resources.spark import local_session  # Dagster's Spark resource module

            self._session = _in_utc(local_session(self._master))
        return self._session

    # --- daily orders ---------------------------------------------------------------------------

    def orders_from_quotes(self, quotes: pd.DataFrame) -> pd.DataFrame:
        """Company quotes are direct sales: every row is an order, not a lead sale."""
        columns = {name: kind for name, kind in ORDERS.items() if name not in ("is_lead_sale", "crm_lead_id")}
        out = (
            _indexed(self.spark, quotes, {**columns, **TRACE})
            .withColumn("is_lead_sale", F.lit(False))
            .withColumn("crm_lead_id", F.lit(-1).cast("long"))
            .select(*ORDER_COLUMNS, *TRACE, ROW)
        )
        dtypes = {**quotes.dtypes[[*columns, *TRACE]].to_dict(), "is_lead_sale": bool, "crm_lead_id": "int64"}
        return _reindexed(out, dtypes)

    def orders_from_leads(self, leads: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """CRM leads that became a sale (flag set and an order id) are orders; contradictions are rejected."""
        df = _indexed(self.spark, leads, {**ORDERS, **TRACE})
        sale, has_order = F.col("is_lead_sale"), F.col("order_id").isNotNull()
        orders = df.where(sale & has_order).select(*ORDER_COLUMNS, *TRACE, ROW)
        rejects = df.where(sale != has_order).select(
            *TRACE,
            F.when(sale, "lead marked as a sale has no order_id")
            .otherwise("lead not marked as a sale has an order_id")
            .alias("reason"),
            ROW,
        )
        order_dtypes = leads.dtypes[[*ORDER_COLUMNS, *TRACE]].to_dict()
        reject_dtypes = {**leads.dtypes[list(TRACE)].to_dict(), "reason": object}
        rejected = _reindexed(rejects, reject_dtypes).reset_index(drop=True)
        return _reindexed(orders, order_dtypes), rejected[list(REJECT_COLUMNS)]

    # --- reports --------------------------------------------------------------------------------

    def monthly_sales(self, orders: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
        """Per (company, product, month, year): total = sum of quote prices, units = count;
        profit = total - unit price x units; summed per month in decimal, rounded half away from
        zero, best profit first (exact profit, then year, month)."""
        lines = to_spark(self.spark, orders, ORDERS).select(
            "company_id",
            "prod_id",
            F.month("created_date").alias("sale_month"),
            F.year("created_date").alias("sale_year"),
            _price().alias("price"),
        )
        per_product = lines.groupBy("company_id", "prod_id", "sale_month", "sale_year").agg(
            F.sum("price").alias("total_sales"), F.count(F.lit(1)).alias("units")
        )
        catalog = to_spark(self.spark, products, PRODUCTS).select(
            "prod_id", F.col("prod_unit_price").cast(MONEY).alias("unit")
        )
        profit = F.col("total_sales") - F.col("unit") * F.col("units")
        monthly = (
            per_product.join(catalog, "prod_id", "inner")
            .groupBy("sale_month", "sale_year")
            .agg(F.sum("total_sales").alias("total_sales"), F.sum(profit).alias("profit"))
        )
        out = monthly.orderBy(F.desc("profit"), "sale_year", "sale_month").select(
            F.col("sale_month").cast("long"),
            F.col("sale_year").cast("long"),
            _cents("total_sales").alias("monthly_sales"),
            _cents("profit").alias("monthly_profit"),
        )
        return to_pandas(out, REPORT_DTYPES["monthly_sales"])

    def most_popular_products(
        self, weblogs: pd.DataFrame, orders: pd.DataFrame, customers: pd.DataFrame
    ) -> pd.DataFrame:
        """Products ordered by the users of the country with most distinct user names in the logs
        (ties: first code alphabetically)."""
        logs = to_spark(self.spark, weblogs, WEBLOGS)
        logged = logs.where(F.col("user_name").isNotNull() & F.col("country").isNotNull())
        top = (
            logged.groupBy("country")
            .agg(F.countDistinct("user_name").alias("users"))
            .orderBy(F.desc("users"), "country")
            .limit(1)
            .select("country")
        )
        names = logged.join(top, "country", "left_semi").select("user_name").distinct()
        buyers = to_spark(self.spark, customers, CUSTOMERS).join(names, "user_name", "left_semi")
        products = (
            to_spark(self.spark, orders, ORDERS)
            .join(buyers.select("customer_id"), "customer_id", "left_semi")
            .select("prod_id")
            .distinct()
        )
        out = products.crossJoin(top).orderBy("prod_id")
        return to_pandas(out, REPORT_DTYPES["most_popular_products"])

    def most_used_devices(self, weblogs: pd.DataFrame, top: int = 5) -> pd.DataFrame:
        """Hits per device, the ``top`` most frequent (ties: device name)."""
        counts = (
            to_spark(self.spark, weblogs, WEBLOGS)
            .where(F.col("device").isNotNull())
            .groupBy("device")
            .agg(F.count(F.lit(1)).alias("total_devices"))
            .orderBy(F.desc("total_devices"), "device")
            .limit(top)
        )
        return to_pandas(counts, REPORT_DTYPES["most_used_devices"])

    def total_leads(self, orders: pd.DataFrame) -> pd.DataFrame:
        """Orders that came from a CRM lead (``is_lead_sale`` and ``crm_lead_id`` <> -1) per customer."""
        out = (
            to_spark(self.spark, orders, ORDERS)
            .where(F.col("is_lead_sale") & (F.col("crm_lead_id") != -1))
            .groupBy("customer_id")
            .agg(F.count(F.lit(1)).alias("total_leads"))
            .orderBy("customer_id")
        )
        return to_pandas(out, REPORT_DTYPES["total_leads"])

    def daily_sales(self, orders: pd.DataFrame, day: dt.date, days: int = 30) -> pd.DataFrame:
        """Revenue, orders and units per UTC day for the ``days`` days ending on ``day``, days
        without sales as zeros."""
        first = day - dt.timedelta(days=days - 1)
        calendar = self.spark.range(1).select(
            F.explode(F.sequence(F.lit(first), F.lit(day))).alias("sale_date")
        )
        per_day = (
            to_spark(self.spark, orders, ORDERS)
            .select(F.to_date("created_date").alias("sale_date"), "order_id", _price().alias("price"))
            .where(F.col("sale_date").between(F.lit(first), F.lit(day)))
            .groupBy("sale_date")
            .agg(
                F.sum("price").alias("revenue"),
                F.countDistinct("order_id").alias("orders"),
                F.count(F.lit(1)).alias("units"),
            )
        )
        out = (
            calendar.join(per_day, "sale_date", "left")
            .select(
                "sale_date",
                F.coalesce("revenue", F.lit(0).cast(MONEY)).cast("double").alias("revenue"),
                F.coalesce("orders", F.lit(0)).cast("long").alias("orders"),
                F.coalesce("units", F.lit(0)).cast("long").alias("units"),
            )
            .orderBy("sale_date")
        )
        return to_pandas(out, REPORT_DTYPES["daily_sales"])

    def top_companies(self, orders: pd.DataFrame, companies: pd.DataFrame, top: int = 10) -> pd.DataFrame:
        """Companies by revenue (sum of quote prices of their orders), ``top`` first; ties: id."""
        best = (
            to_spark(self.spark, orders, ORDERS)
            .groupBy("company_id")
            .agg(F.sum(_price()).alias("revenue"), F.count(F.lit(1)).alias("orders"))
            .orderBy(F.desc("revenue"), "company_id")
            .limit(top)
        )
        ranked = best.withColumn(
            "rank", F.row_number().over(Window.orderBy(F.desc("revenue"), "company_id")).cast("long")
        )
        out = (
            ranked.join(to_spark(self.spark, companies, COMPANIES), "company_id", "left")
            .orderBy("rank")
            .select("rank", "company_id", "company_name", F.col("revenue").cast("double"), "orders")
        )
        return to_pandas(out, REPORT_DTYPES["top_companies"])

    def product_conversion(self, weblogs: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
        """Product page views versus orders of the product, both from the first logged day on;
        ``conversion`` = orders / page views, empty without views."""
        logs = to_spark(self.spark, weblogs, WEBLOGS)
        since = logs.agg(F.date_trunc("day", F.min("created_date")).alias("since"))
        views = (
            logs.where(F.col("prod_id").isNotNull())
            .groupBy("prod_id")
            .agg(F.count(F.lit(1)).alias("page_views"))
        )
        sold = (
            to_spark(self.spark, orders, ORDERS)
            .join(since, F.col("created_date") >= F.col("since"))
            .groupBy("prod_id")
            .agg(F.count(F.lit(1)).alias("orders"))
        )
        counts = views.join(sold, "prod_id", "full").select(
            "prod_id",
            F.coalesce("page_views", F.lit(0)).cast("long").alias("page_views"),
            F.coalesce("orders", F.lit(0)).cast("long").alias("orders"),
        )
        out = counts.withColumn(
            "conversion",
            F.when(F.col("page_views") > 0, F.col("orders").cast("double") / F.col("page_views")),
        ).orderBy("prod_id")
        return to_pandas(out, REPORT_DTYPES["product_conversion"])
