"""A small, realistic Instacart-style data set, written to the lake as the pipeline expects it.

Same files, columns and formats as the public Instacart data (so the public files can replace
it unchanged): reference CSVs under ``basket/reference/``, and each day's orders and order
products as a few small CSV and JSON-lines files under ``basket/stream/<table>/<day>/``, as a
Firehose stream would leave them. Users place 4 to 9 orders over the days; the first has no
days_since_prior_order, the last is a ``train`` or ``test`` order (test orders have no products,
as in the public set), and products a user bought before come back flagged ``reordered``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random

from pipeline.resources.lake import Lake

from . import files, schema

DEPARTMENTS = (
    "frozen",
    "other",
    "bakery",
    "produce",
    "alcohol",
    "international",
    "beverages",
    "pets",
    "dry goods pasta",
    "bulk",
    "personal care",
    "meat seafood",
    "pantry",
    "breakfast",
    "canned goods",
    "dairy eggs",
    "household",
    "babies",
    "snacks",
    "deli",
    "missing",
)
# aisle -> (department, products); names with commas, quotes and accents on purpose.
AISLES = {
    "fresh fruits": (
        "produce",
        [
            "Banana",
            "Bag of Organic Bananas",
            "Organic Strawberries",
            "Organic Hass Avocado",
            "Large Lemon",
            "Limes",
            "Honeycrisp Apple",
            "Organic Raspberries",
        ],
    ),
    "fresh vegetables": (
        "produce",
        [
            "Organic Baby Spinach",
            "Organic Zucchini",
            "Organic Yellow Onion",
            "Jalapeño Peppers",
            "Organic Garlic",
            "Cucumber Kirby",
        ],
    ),
    "yogurt": (
        "dairy eggs",
        ["Total 0% Greek Yogurt", "Vanilla Skyr Nonfat Yogurt", "Organic Whole Milk Yogurt"],
    ),
    "milk": ("dairy eggs", ["Organic Whole Milk", "Organic Reduced Fat 2% Milk", "Unsweetened Almondmilk"]),
    "eggs": ("dairy eggs", ["Organic Large Brown Eggs", "Large Grade A Eggs"]),
    "packaged cheese": ("dairy eggs", ["Shredded Mozzarella", "Crème Fraîche", "Sharp Cheddar, Sliced"]),
    "bread": ("bakery", ["100% Whole Wheat Bread", "Sourdough Loaf", "Plain Mini Bagels"]),
    "chips pretzels": (
        "snacks",
        ["Sea Salt Kettle Chips", "Jalapeño Kettle Chips", 'Mini "Twists" Pretzels'],
    ),
    "cookies cakes": ("snacks", ["Chocolate Sandwich Cookies", "Oatmeal Raisin Cookies"]),
    "ice cream ice": ("frozen", ["Half Baked Ice Cream", "Mango Sorbet"]),
    "frozen produce": ("frozen", ["Frozen Organic Wild Blueberries", "Sweet Peas"]),
    "water seltzer sparkling water": (
        "beverages",
        ["Sparkling Water Grapefruit", "Spring Water", "Lime Seltzer"],
    ),
    "soft drinks": ("beverages", ["Zero Calorie Cola", "Ginger Ale"]),
    "spices seasonings": ("pantry", ["All-Seasons Salt", "Ground Cinnamon", "Smoked Paprika"]),
    "pasta sauce": ("dry goods pasta", ["Marinara Sauce", "Tomato Basil Sauce"]),
    "poultry counter": ("meat seafood", ["Boneless Skinless Chicken Breasts", "Organic Chicken Thighs"]),
    "lunch meat": ("deli", ["Oven Roasted Turkey Breast", "Uncured Genoa Salami"]),
    "paper goods": ("household", ["Paper Towels, 6 Rolls", "Facial Tissues"]),
    "cat food care": ("pets", ["Grain Free Chicken Cat Food"]),
    "diapers wipes": ("babies", ["Baby Wipes, Sensitive"]),
}
ORDER_HEADER = schema.columns("orders")
PRODUCT_HEADER = schema.columns("order_products")


def generate(
    lake: Lake, *, seed: int = 0, start: str = "2024-01-01", days: int = 3, users: int = 40
) -> list[str]:
    """Write the reference tables and ``days`` days of streamed orders from ``start``; return the
    keys written.

    Deterministic for a given ``seed``; a few hundred orders, well under a second.
    """
    if days < 1 or users < 1:
        raise ValueError("generate needs at least one day and one user")
    rng = random.Random(seed)
    first_day = dt.date.fromisoformat(start)
    keys, catalogue = _reference(lake)
    order_ids = iter(rng.sample(range(1, 3_500_000), users * 9))
    day_orders: dict[int, list[dict]] = {d: [] for d in range(days)}
    day_products: dict[int, list[dict]] = {d: [] for d in range(days)}
    for user_id in range(1, users + 1):
        n_orders = rng.randint(4, 9)
        order_days = sorted(rng.randrange(days) for _ in range(n_orders))
        favourites = rng.sample(catalogue, 8)
        bought: set[int] = set()
        for number, day in enumerate(order_days, start=1):
            last = number == n_orders
            days_since = None if number == 1 else float(rng.choice([1, 3, 5, 7, 7, 14, 21, 30, 30]))
            order = {
                "order_id": next(order_ids),
                "user_id": user_id,
                "eval_set": rng.choice(["train", "train", "test"]) if last else "prior",
                "order_number": number,
                "order_dow": rng.randrange(7),
                "order_hour_of_day": min(23, max(0, int(rng.gauss(13.5, 3.5)))),
                "days_since_prior_order": days_since,
            }
            day_orders[day].append(order)
            if order["eval_set"] == "test":
                continue
            basket = rng.sample(favourites, rng.randint(2, 6)) + rng.sample(catalogue, rng.randint(0, 4))
            for position, product_id in enumerate(dict.fromkeys(basket), start=1):
                day_products[day].append(
                    {
                        "order_id": order["order_id"],
                        "product_id": product_id,
                        "add_to_cart_order": position,
                        "reordered": int(product_id in bought),
                    }
                )
                bought.add(product_id)
    for d in range(days):
        day = (first_day + dt.timedelta(days=d)).isoformat()
        keys += _stream(lake, "orders", day, day_orders[d], ORDER_HEADER, rng)
        keys += _stream(lake, "order_products", day, day_products[d], PRODUCT_HEADER, rng)
    return keys


def _reference(lake: Lake) -> tuple[list[str], list[int]]:
    """Write the three reference CSVs; return their keys and the product ids."""
    aisle_ids = {name: i for i, name in enumerate(AISLES, start=1)}
    department_ids = {name: i for i, name in enumerate(DEPARTMENTS, start=1)}
    products = [
        (name, aisle_ids[aisle], department_ids[department])
        for aisle, (department, names) in AISLES.items()
        for name in names
    ]
    content = {
        "departments": _csv(schema.columns("departments"), [(i, name) for name, i in department_ids.items()]),
        "aisles": _csv(schema.columns("aisles"), [(i, name) for name, i in aisle_ids.items()]),
        "products": _csv(schema.columns("products"), [(i, *row) for i, row in enumerate(products, start=1)]),
    }
    for table, text in content.items():
        lake.write_text(files.reference_key(table), text)
    return [files.reference_key(table) for table in content], list(range(1, len(products) + 1))


def _stream(lake: Lake, table: str, day: str, records: list[dict], header, rng: random.Random) -> list[str]:
    """A day's records as 2-3 files, alternately CSV (public formatting) and JSON lines."""
    keys = []
    parts = rng.randint(2, 3)
    for part in range(parts):
        chunk = records[part::parts]
        if part % 2 == 0:
            key = f"{files.stream_prefix(table, day)}part-{part:04d}.csv"
            lake.write_text(key, _csv(header, [[_public(col, r[col]) for col in header] for r in chunk]))
        else:
            key = f"{files.stream_prefix(table, day)}part-{part:04d}.jsonl"
            lake.write_text(key, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk))
        keys.append(key)
    return keys


def _public(column: str, value):
    """Values formatted as in the public CSVs: hours zero-padded, days as floats, empty for none."""
    if value is None:
        return ""
    if column == "order_hour_of_day":
        return f"{value:02d}"
    return value


def _csv(header, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
