"""Pure transforms of the b2b pipeline (pandas only, no Dagster, no I/O).

Money is summed exactly: amounts are ``numeric(15,4)`` in the warehouse, so they are turned
into integers of 1/10,000 before any sum and rounded half away from zero only at the end,
which is what the seed's Spark ``round(x, 2)`` does (it summed doubles, which we do not).

:class:`Engine` lists the computations the assets call; :class:`PandasEngine` implements them
with the functions below, :class:`pipeline.b2b.spark_transform.SparkEngine` with the same
formulas on Spark.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

REJECT_COLUMNS = ("source", "line_number", "line", "reason")
ORDER_COLUMNS = (
    "order_id",
    "prod_id",
    "customer_id",
    "prod_quote_price",
    "is_lead_sale",
    "crm_lead_id",
    "company_id",
    "created_date",
)
SCALE = 10_000  # numeric(15,4): one unit is 1/10,000 of a currency unit

# ---------------------------------------------------------------------------------------------
# Reading the seed's header-less CSV files, row by row, with a reason for every rejected row.


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # int | money | bool | timestamp (naive = UTC) | date | code3 | text
    required: bool = True


_INT = r"[+-]?\d{1,18}"
_MONEY = r"\d{1,11}(?:\.\d{1,4})?"


def _convert(values: pd.Series, field: Field) -> tuple[pd.Series, pd.Series]:
    """Typed values and a per-row error message (NA where the value is fine)."""
    empty = values == ""
    error = pd.Series(pd.NA, index=values.index, dtype="object")
    if field.required:
        error[empty] = f"{field.name} is empty"
    present = values[~empty]
    if field.kind == "int":
        bad = ~present.str.fullmatch(_INT)
        typed = pd.Series(pd.NA, index=values.index, dtype="Int64")
        typed[present[~bad].index] = present[~bad].astype("int64")
        what = "a whole number"
    elif field.kind == "money":
        bad = ~present.str.fullmatch(_MONEY)
        typed = pd.to_numeric(values.where(~empty & values.str.fullmatch(_MONEY)), errors="coerce")
        what = "an amount >= 0 with at most 4 decimals"
    elif field.kind == "bool":
        lowered = present.str.lower()
        bad = ~lowered.isin(["true", "false"])
        typed = values.str.lower().map({"true": True, "false": False})
        what = "true or false"
    elif field.kind == "timestamp":
        typed = pd.to_datetime(values.where(~empty), utc=True, format="ISO8601", errors="coerce")
        bad = typed[present.index].isna()
        what = "an ISO 8601 timestamp"
    elif field.kind == "date":
        parsed = pd.to_datetime(values.where(~empty), format="%Y-%m-%d", errors="coerce")
        bad = parsed[present.index].isna()
        typed = parsed.dt.date.astype("object").where(parsed.notna(), None)
        what = "a YYYY-MM-DD date"
    elif field.kind == "code3":  # ISO 4217 currency / ISO 3166 alpha-3 country, a char(3) column
        bad = ~present.str.fullmatch(r"[A-Z]{3}")
        typed = values.where(~empty, None)
        what = "a three-letter upper-case code"
    elif field.kind == "text":
        bad = pd.Series(False, index=present.index)
        typed = values.where(~empty, None)
        what = "text"
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown field kind {field.kind!r}")
    for index in bad[bad].index:
        error[index] = f"{field.name}: {values[index]!r} is not {what}"
    return typed, error


def parse_rows(
    text: str,
    fields: tuple[Field, ...],
    *,
    source: str,
    rest_in_last: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split header-less, unquoted CSV text into typed columns; returns ``(rows, rejects)``.

    ``rows`` holds the fields plus ``source``, ``line_number`` and ``line`` (for quarantine
    downstream); ``rejects`` has :data:`REJECT_COLUMNS`. With ``rest_in_last`` the last field
    takes the rest of the line, commas included (company names). Blank lines are skipped.
    """
    width = len(fields)
    kept: list[list[str]] = []
    numbers: list[int] = []
    raw: list[str] = []
    rejected: list[tuple[str, int, str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(",", width - 1) if rest_in_last else line.split(",")
        if len(parts) != width:
            rejected.append(
                (source, number, line, f"expected {width} comma-separated fields, found {len(parts)}")
            )
            continue
        kept.append([part.strip() for part in parts])
        numbers.append(number)
        raw.append(line)
    strings = pd.DataFrame(kept, columns=[f.name for f in fields], dtype="object")
    errors = pd.Series(pd.NA, index=strings.index, dtype="object")
    typed: dict[str, pd.Series] = {}
    for field in fields:
        typed[field.name], error = _convert(strings[field.name].astype("object"), field)
        errors = errors.fillna(error)
    rows = pd.DataFrame(typed, index=strings.index)
    rows.insert(0, "source", source)
    rows["line_number"] = pd.Series(numbers, index=strings.index, dtype="int64")
    rows["line"] = pd.Series(raw, index=strings.index, dtype="object")
    bad = errors.notna()
    rejects = pd.concat(
        [
            pd.DataFrame(rejected, columns=list(REJECT_COLUMNS)),
            pd.DataFrame(
                {
                    "source": source,
                    "line_number": rows.loc[bad, "line_number"],
                    "line": rows.loc[bad, "line"],
                    "reason": errors[bad],
                }
            ),
        ],
        ignore_index=True,
    )
    rows = rows[~bad].reset_index(drop=True)
    required_ints = {f.name: "int64" for f in fields if f.kind == "int" and f.required}
    return rows.astype(required_ints), rejects.sort_values("line_number", ignore_index=True)


def reject(rows: pd.DataFrame, mask: pd.Series, reason: pd.Series | str) -> pd.DataFrame:
    """The rows under ``mask`` as rejects, with their original lines."""
    picked = rows[mask]
    reasons = reason[mask] if isinstance(reason, pd.Series) else reason
    return pd.DataFrame(
        {
            "source": picked["source"],
            "line_number": picked["line_number"],
            "line": picked["line"],
            "reason": reasons,
        }
    ).reset_index(drop=True)


def reject_duplicates(rows: pd.DataFrame, key: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reject every row whose key appears more than once: which copy is right cannot be known."""
    copies = rows.groupby(list(key))[key[0]].transform("size")
    values = rows[key[0]].astype(str)
    for column in key[1:]:
        values = values + "," + rows[column].astype(str)
    reason = " ".join(key) + " " + values + " appears " + copies.astype(str) + " times"
    return rows[copies == 1].reset_index(drop=True), reject(rows, copies > 1, reason)


# File layouts of the seed (no header; the order is the column order in the file).
INIT_FIELDS: dict[str, tuple[Field, ...]] = {
    "companies": (Field("company_id", "int"), Field("company_name", "text")),
    "customers": (
        Field("customer_id", "int"),
        Field("full_name", "text"),
        Field("dob", "date"),
        Field("user_name", "text"),
        Field("email", "text"),
        Field("most_freq_city", "text"),
        Field("most_freq_cntry", "code3"),
    ),
    "products": (
        Field("prod_id", "int"),
        Field("prod_name", "text"),
        Field("prod_unit_price", "money"),
        Field("prod_currency_code", "code3"),
        Field("supplier_id", "int"),
    ),
    "orders": (
        Field("order_id", "int"),
        Field("prod_id", "int"),
        Field("customer_id", "int"),
        Field("prod_quote_price", "money"),
        Field("is_lead_sale", "bool", required=False),
        Field("crm_lead_id", "int", required=False),
        Field("company_id", "int"),
        Field("created_date", "timestamp"),
    ),
}
QUOTE_FIELDS = (
    Field("prod_id", "int"),
    Field("prod_quote_price", "money"),
    Field("quote_value", "money"),
    Field("order_id", "int"),
    Field("customer_id", "int"),
    Field("company_id", "int"),
    Field("supplier_id", "int"),
    Field("created_date", "timestamp"),
)
LEAD_FIELDS = (
    Field("crm_lead_id", "int"),
    Field("prod_id", "int"),
    Field("prod_quote_price", "money"),
    Field("quote_value", "money"),
    Field("is_lead_sale", "bool"),
    Field("order_id", "int", required=False),
    Field("customer_id", "int"),
    Field("company_id", "int"),
    Field("created_date", "timestamp"),
)
COMPANY_CHANGE_FIELDS = (Field("company_id", "int"), Field("company_name", "text"))


def clean_company_names(names: pd.Series) -> pd.Series:
    """Commas are stripped from names (the seed's rule: the files are unquoted CSV)."""
    return names.str.replace(",", "", regex=False).str.strip()


def init_orders(rows: pd.DataFrame) -> pd.DataFrame:
    """Seed defaults for the init file: ``is_lead_sale`` true, ``crm_lead_id`` -1 when empty."""
    return rows.assign(
        is_lead_sale=rows["is_lead_sale"].astype("boolean").fillna(True).astype(bool),
        crm_lead_id=rows["crm_lead_id"].fillna(-1).astype("int64"),
    )


# ---------------------------------------------------------------------------------------------
# Daily orders


def orders_from_quotes(quotes: pd.DataFrame) -> pd.DataFrame:
    """Company quotes are direct sales: every row is an order, not a lead sale."""
    return quotes.assign(is_lead_sale=False, crm_lead_id=-1)[
        [*ORDER_COLUMNS, "source", "line_number", "line"]
    ]


def orders_from_leads(leads: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CRM leads that became a sale (flag set and an order id) are orders; contradictions are rejected."""
    has_order = leads["order_id"].notna()
    sale = leads["is_lead_sale"].astype(bool)
    contradiction = sale != has_order
    reasons = pd.Series(
        np.where(sale, "lead marked as a sale has no order_id", "lead not marked as a sale has an order_id"),
        index=leads.index,
    )
    rejects = reject(leads, contradiction, reasons)
    orders = leads[sale & has_order][[*ORDER_COLUMNS, "source", "line_number", "line"]]
    return orders, rejects


def assemble_day_orders(
    candidates: pd.DataFrame,
    known_products: pd.Series,
    loaded_elsewhere: pd.DataFrame,
    day: dt.date,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The day's orders, validated; returns ``(orders, rejects)``.

    Rejected: an unknown ``prod_id`` (no unit price, no supplier: nothing to infer), an
    ``order_id`` found more than once in the day's files (ambiguous: all copies go), and an
    ``order_id`` already loaded by another day (``loaded_elsewhere``: ``order_id, batch_date``).
    Unknown customers and companies are not errors: the caller infers them.
    """
    unknown_product = ~candidates["prod_id"].isin(known_products)
    copies = candidates.groupby("order_id")["order_id"].transform("size")
    earlier = candidates["order_id"].map(loaded_elsewhere.set_index("order_id")["batch_date"])
    reason = pd.Series(pd.NA, index=candidates.index, dtype="object")
    reason[earlier.notna()] = (
        "order_id " + candidates["order_id"].astype(str) + " was already loaded on " + earlier.astype(str)
    )
    reason[copies > 1] = (
        "order_id "
        + candidates["order_id"].astype(str)
        + " appears "
        + copies.astype(str)
        + " times in the day's files"
    )
    reason[unknown_product] = "prod_id " + candidates["prod_id"].astype(str) + " is not a known product"
    bad = reason.notna()
    orders = candidates[~bad][list(ORDER_COLUMNS)].assign(batch_date=day).reset_index(drop=True)
    orders = orders.astype(
        {
            "order_id": "int64",
            "prod_id": "int64",
            "customer_id": "int64",
            "crm_lead_id": "int64",
            "company_id": "int64",
            "is_lead_sale": bool,
        }
    )
    return orders, reject(candidates, bad, reason)


def missing_ids(referenced: pd.Series, known: pd.Series) -> pd.Series:
    """Distinct ids in ``referenced`` that are not in ``known``, sorted (to infer as members)."""
    ids = pd.Series(referenced.dropna().unique(), dtype="int64")
    return ids[~ids.isin(known)].sort_values(ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Company upsert


@dataclass(frozen=True)
class UpsertPlan:
    rows: pd.DataFrame  # company_id, company_name, updated_on: the rows to write
    inserted: int
    updated: int
    unchanged: int
    stale: int  # a newer day already set a different name
    rejects: pd.DataFrame


def plan_company_upsert(
    current: pd.DataFrame,
    inserts: pd.DataFrame,
    updates: pd.DataFrame,
    day: dt.date,
) -> UpsertPlan:
    """Decide which company rows the day's ``insert/`` and ``update/`` files change.

    ``current`` holds the warehouse rows (``company_id, company_name, updated_on``) of at least
    the ids in the files. Both files are one change set: a new id is inserted, a known id whose
    name differs is updated (an ``update/`` row wins over an ``insert/`` row of the same id),
    an equal name changes nothing, so applying a day twice writes nothing the second time. A
    name set by a later day (``updated_on`` > ``day``) is kept: replaying an old day cannot
    undo a newer one. An id with two different names in one file is rejected.
    """
    changes = pd.concat([inserts.assign(priority=0), updates.assign(priority=1)], ignore_index=True)
    changes["company_name"] = clean_company_names(changes["company_name"])
    empty = changes["company_name"] == ""
    rejects = [reject(changes, empty, "company_name is empty once commas are stripped")]
    changes = changes[~empty]
    names = changes.groupby(["priority", "company_id"])["company_name"].transform("nunique")
    rejects.append(
        reject(
            changes,
            names > 1,
            "company_id " + changes["company_id"].astype(str) + " has different names in the same file",
        )
    )
    changes = changes[names == 1].sort_values(["company_id", "priority"])
    changes = changes.drop_duplicates("company_id", keep="last")[["company_id", "company_name"]]

    merged = changes.merge(
        current[["company_id", "company_name", "updated_on"]],
        on="company_id",
        how="left",
        suffixes=("", "_now"),
        indicator=True,
    )
    new = merged["_merge"] == "left_only"
    same = ~new & (merged["company_name"] == merged["company_name_now"])
    newer = ~new & ~same & merged["updated_on"].map(lambda value: _set_after(value, day)).astype(bool)
    update = ~new & ~same & ~newer
    rows = merged[new | update][["company_id", "company_name"]].assign(updated_on=day)
    rows = rows.astype({"company_id": "int64"}).sort_values("company_id", ignore_index=True)
    return UpsertPlan(
        rows,
        int(new.sum()),
        int(update.sum()),
        int(same.sum()),
        int(newer.sum()),
        pd.concat(rejects, ignore_index=True),
    )


def _set_after(updated_on: Any, day: dt.date) -> bool:
    if updated_on is None or pd.isna(updated_on):
        return False  # never named (an inferred member) or a new id
    if isinstance(updated_on, (pd.Timestamp, dt.datetime)):
        updated_on = updated_on.date()
    return updated_on > day


# ---------------------------------------------------------------------------------------------
# Reports (each over the snapshot of a day: every order and web-log hit loaded up to that day)


def to_units(amounts: pd.Series) -> pd.Series:
    """Amounts (float or Decimal, at most 4 decimals) as exact int64 counts of 1/10,000."""
    return pd.Series(np.rint(amounts.astype("float64").to_numpy() * SCALE), index=amounts.index).astype(
        "int64"
    )


def units_to_cents(units: pd.Series) -> pd.Series:
    """Round 1/10,000 units to cents, half away from zero (Spark's ``round(x, 2)``); as float."""
    values = units.astype("int64").to_numpy()
    cents = np.sign(values) * ((np.abs(values) + 50) // 100)
    return pd.Series(cents / 100, index=units.index)


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True)


def monthly_sales(orders: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Seed formula: per (company, product, month, year) total = sum(quote price) and units =
    count; profit = total - unit price x units; both summed per (month, year), rounded to 2
    decimals, ordered by profit descending (then year, month). Orders of unknown products drop
    out (inner join, as in the seed)."""
    created = _utc(orders["created_date"])
    lines = pd.DataFrame(
        {
            "company_id": orders["company_id"],
            "prod_id": orders["prod_id"],
            "sale_month": created.dt.month,
            "sale_year": created.dt.year,
            "price": to_units(orders["prod_quote_price"]),
        }
    )
    per_product = lines.groupby(["company_id", "prod_id", "sale_month", "sale_year"], as_index=False).agg(
        total_sales=("price", "sum"), units=("price", "size")
    )
    catalog = products[["prod_id", "prod_unit_price"]].assign(unit=lambda p: to_units(p["prod_unit_price"]))
    per_product = per_product.merge(catalog[["prod_id", "unit"]], on="prod_id", how="inner")
    per_product["profit"] = per_product["total_sales"] - per_product["unit"] * per_product["units"]
    monthly = per_product.groupby(["sale_month", "sale_year"], as_index=False)[
        ["total_sales", "profit"]
    ].sum()
    out = pd.DataFrame(
        {
            "sale_month": monthly["sale_month"].astype("int64"),
            "sale_year": monthly["sale_year"].astype("int64"),
            "monthly_sales": units_to_cents(monthly["total_sales"]),
            "monthly_profit": units_to_cents(monthly["profit"]),
            "_exact": monthly["profit"],
        }
    )
    out = out.sort_values(["_exact", "sale_year", "sale_month"], ascending=[False, True, True])
    return out.drop(columns="_exact").reset_index(drop=True)


def most_popular_products(
    weblogs: pd.DataFrame, orders: pd.DataFrame, customers: pd.DataFrame
) -> pd.DataFrame:
    """The country with the most distinct user names in the logs (ties: the first code in
    alphabetical order); the distinct products ordered by customers whose user name appears in
    that country's logs."""
    logged = weblogs.dropna(subset=["user_name", "country"])
    if logged.empty:
        return pd.DataFrame({"prod_id": pd.Series(dtype="int64"), "country": pd.Series(dtype="object")})
    users = logged.groupby("country")["user_name"].nunique().reset_index(name="users")
    country = users.sort_values(["users", "country"], ascending=[False, True])["country"].iloc[0]
    names = logged.loc[logged["country"] == country, "user_name"].unique()
    buyers = customers.loc[customers["user_name"].isin(names), "customer_id"]
    products = orders.loc[orders["customer_id"].isin(buyers), "prod_id"].drop_duplicates().sort_values()
    return pd.DataFrame({"prod_id": products.astype("int64").to_numpy(), "country": country})


def most_used_devices(weblogs: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """Hits per device, the ``top`` most frequent (ties: device name)."""
    counts = weblogs["device"].dropna().value_counts().rename_axis("device").reset_index(name="total_devices")
    counts = counts.sort_values(["total_devices", "device"], ascending=[False, True]).head(top)
    return counts.astype({"total_devices": "int64"}).reset_index(drop=True)


def total_leads(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders that came from a CRM lead (``is_lead_sale`` and ``crm_lead_id`` <> -1) per customer."""
    leads = orders[orders["is_lead_sale"].astype(bool) & (orders["crm_lead_id"] != -1)]
    out = leads.groupby("customer_id").size().reset_index(name="total_leads")
    return out.astype({"customer_id": "int64", "total_leads": "int64"}).sort_values(
        "customer_id", ignore_index=True
    )


def daily_sales(orders: pd.DataFrame, day: dt.date, days: int = 30) -> pd.DataFrame:
    """Revenue, orders and units per day (by ``created_date``, UTC) for the ``days`` days
    ending on ``day``, days without sales included as zeros. Every order holds one product
    line, so units equals orders here; the column is kept for the seed's report layout."""
    calendar = pd.date_range(end=pd.Timestamp(day), periods=days, freq="D").date
    created = _utc(orders["created_date"]).dt.date
    window = orders[created.isin(set(calendar))]
    lines = pd.DataFrame(
        {
            "sale_date": created[window.index],
            "price": to_units(window["prod_quote_price"]),
            "order_id": window["order_id"],
        }
    )
    per_day = lines.groupby("sale_date").agg(
        revenue=("price", "sum"), orders=("order_id", "nunique"), units=("price", "size")
    )
    per_day = per_day.reindex(pd.Index(calendar, name="sale_date"), fill_value=0).reset_index()
    per_day["revenue"] = per_day["revenue"].astype("int64") / SCALE
    return per_day.astype({"orders": "int64", "units": "int64"})


def top_companies(orders: pd.DataFrame, companies: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """Companies by revenue (sum of quote prices of their orders), ``top`` first; ties: id."""
    lines = pd.DataFrame({"company_id": orders["company_id"], "price": to_units(orders["prod_quote_price"])})
    per = lines.groupby("company_id").agg(revenue=("price", "sum"), orders=("price", "size")).reset_index()
    per = per.sort_values(["revenue", "company_id"], ascending=[False, True]).head(top).reset_index(drop=True)
    per.insert(0, "rank", np.arange(1, len(per) + 1, dtype="int64"))
    per = per.merge(companies[["company_id", "company_name"]], on="company_id", how="left")
    per["revenue"] = per["revenue"] / SCALE
    return per[["rank", "company_id", "company_name", "revenue", "orders"]].astype({"orders": "int64"})


def product_conversion(weblogs: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """Product page views (``/products/<id>`` hits) versus orders of the product, both counted
    from the first logged day on (orders before any web log would inflate the rate);
    ``conversion`` = orders / page views, empty without views."""
    columns = {"prod_id": "int64", "page_views": "int64", "orders": "int64", "conversion": "float64"}
    views = weblogs.dropna(subset=["prod_id"])
    if weblogs.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    since = _utc(weblogs["created_date"]).min().normalize()
    sold = orders[_utc(orders["created_date"]) >= since]
    counts = pd.concat(
        [
            views.groupby("prod_id").size().rename("page_views"),
            sold.groupby("prod_id").size().rename("orders"),
        ],
        axis=1,
    ).fillna(0)
    counts.index = counts.index.astype("int64")
    counts = counts.rename_axis("prod_id").reset_index().astype({"page_views": "int64", "orders": "int64"})
    counts["conversion"] = (counts["orders"] / counts["page_views"]).where(counts["page_views"] > 0)
    return counts.sort_values("prod_id", ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Engines


class Engine(Protocol):
    """What the assets ask of an engine. Frames in and out are pandas whatever the engine computes
    on, and every engine returns the same frames (dtypes and row order included)."""

    name: str

    def orders_from_quotes(self, quotes: Any) -> Any: ...
    def orders_from_leads(self, leads: Any) -> tuple[Any, Any]: ...
    def monthly_sales(self, orders: Any, products: Any) -> Any: ...
    def most_popular_products(self, weblogs: Any, orders: Any, customers: Any) -> Any: ...
    def most_used_devices(self, weblogs: Any, top: int = 5) -> Any: ...
    def total_leads(self, orders: Any) -> Any: ...
    def daily_sales(self, orders: Any, day: dt.date, days: int = 30) -> Any: ...
    def top_companies(self, orders: Any, companies: Any, top: int = 10) -> Any: ...
    def product_conversion(self, weblogs: Any, orders: Any) -> Any: ...


class PandasEngine:
    name = "pandas"
    orders_from_quotes = staticmethod(orders_from_quotes)
    orders_from_leads = staticmethod(orders_from_leads)
    monthly_sales = staticmethod(monthly_sales)
    most_popular_products = staticmethod(most_popular_products)
    most_used_devices = staticmethod(most_used_devices)
    total_leads = staticmethod(total_leads)
    daily_sales = staticmethod(daily_sales)
    top_companies = staticmethod(top_companies)
    product_conversion = staticmethod(product_conversion)


def build_reports(engine: Engine, snapshot: dict[str, Any], day: dt.date) -> dict[str, Any]:
    """Every report of ``day`` from that day's snapshot (``companies, customers, products,
    orders, weblogs``), keyed by report name."""
    orders, weblogs = snapshot["orders"], snapshot["weblogs"]
    return {
        "monthly_sales": engine.monthly_sales(orders, snapshot["products"]),
        "most_popular_products": engine.most_popular_products(weblogs, orders, snapshot["customers"]),
        "most_used_devices": engine.most_used_devices(weblogs),
        "total_leads": engine.total_leads(orders),
        "daily_sales": engine.daily_sales(orders, day),
        "top_companies": engine.top_companies(orders, snapshot["companies"]),
        "product_conversion": engine.product_conversion(weblogs, orders),
    }
