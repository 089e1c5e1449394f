"""Sample data in the seed's formats: the initial tables and each day's files.

Everything is a pure function of ``(seed, day)``, so a re-generated day is byte-identical.
Ids of daily rows are derived from the day, never read from the warehouse, so days can be
generated in any order without colliding:

- init rows use ids ``1..rows``; init orders are created from 2018-01-01 to the init day;
- a day's orders and CRM leads use ``100,000,000 + day_number * 10,000 + i``;
- a day's new companies (the ``insert/`` file) and the customers first seen in its leads use
  ``10,000,000 + day_number * 100 + k`` (``day_number``: days since 2000-01-01).

Referential integrity by construction: quotes and leads reference init products, customers
and companies, the day's inserted companies, and on purpose two kinds of not-yet-known
members the pipeline must infer: ~2 % of leads come from new customers, ~1 % of quotes name a
company that only the next day's ``insert/`` file introduces (~2 % one of the day's own). Web-log
users are init customers; client IPs come from their country's network in :data:`weblog.COUNTRY_NETWORKS`
(85 %), a random listed country (10 %) or an unlisted network (5 %, no country).
"""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pandas as pd

from pipeline.b2b import storage
from pipeline.b2b.partitions import start_date
from pipeline.b2b.weblog import COUNTRY_NETWORKS
from pipeline.resources.lake import Lake

EPOCH = dt.date(2000, 1, 1)
FIRST_ORDER_DAY = dt.date(2018, 1, 1)
DAILY_ID_BASE = 100_000_000
MEMBER_ID_BASE = 10_000_000
MAX_DAILY_ROWS = 5_000
NEW_COMPANIES_PER_DAY = 20
RENAMES_PER_DAY = 50
NEW_CUSTOMERS_PER_DAY = 20

FIRST_NAMES = (
    "James",
    "Mary",
    "Wei",
    "Fatima",
    "Carlos",
    "Aiko",
    "Olga",
    "Kwame",
    "Priya",
    "Lucas",
    "Emma",
    "Noah",
    "Sofia",
    "Mateo",
    "Amara",
    "Hiro",
    "Lena",
    "Omar",
    "Chloe",
    "Ivan",
    "Zara",
    "Diego",
)
LAST_NAMES = (
    "Smith",
    "Garcia",
    "Chen",
    "Okafor",
    "Muller",
    "Rossi",
    "Tanaka",
    "Kowalski",
    "Silva",
    "Patel",
    "Dubois",
    "Kim",
    "Novak",
    "Haddad",
    "Jensen",
    "Moreau",
    "Lopez",
    "Nguyen",
    "Brown",
    "Sato",
)
COMPANY_WORDS = (
    (
        "Blue",
        "Summit",
        "Pioneer",
        "Global",
        "Northern",
        "Bright",
        "Silver",
        "Prime",
        "Atlas",
        "Vertex",
        "Cedar",
        "Harbor",
        "Quantum",
        "Golden",
        "Evergreen",
        "Iron",
        "Coastal",
    ),
    (
        "Logistics",
        "Supply",
        "Systems",
        "Industries",
        "Trading",
        "Foods",
        "Labs",
        "Works",
        "Partners",
        "Holdings",
        "Networks",
        "Devices",
        "Textiles",
        "Motors",
        "Pharma",
    ),
    ("Inc", "LLC", "Ltd", "Group", "GmbH", "SA", "Co"),
)
PRODUCT_WORDS = (
    (
        "Ergonomic",
        "Rustic",
        "Sleek",
        "Durable",
        "Compact",
        "Heavy Duty",
        "Lightweight",
        "Smart",
        "Premium",
        "Practical",
    ),
    ("Steel", "Wooden", "Cotton", "Plastic", "Granite", "Leather", "Copper", "Aluminum", "Rubber", "Glass"),
    (
        "Chair",
        "Table",
        "Lamp",
        "Keyboard",
        "Bottle",
        "Gloves",
        "Hammer",
        "Shelf",
        "Printer",
        "Pallet",
        "Cable",
        "Valve",
    ),
)
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
)
# Weights per user agent: desktops and phones dominate, one crawler.
USER_AGENT_WEIGHTS = (0.22, 0.14, 0.08, 0.06, 0.26, 0.14, 0.06, 0.04)
OTHER_PAGES = ("/", "/search?q=pallet", "/cart", "/account", "/checkout", "/about")
STATUS_CODES = (200, 200, 200, 200, 201, 204, 304, 400, 401, 403, 404, 500)
REFERER = "https://b2b.example.com/"
UNLISTED_NETWORK = 200  # 200.0.0.0/8 is not in COUNTRY_NETWORKS: such hits have no country


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def daily_order_id(day: dt.date, i: int | np.ndarray) -> int | np.ndarray:
    return DAILY_ID_BASE + day_number(day) * 10_000 + i


def new_member_id(day: dt.date, k: int | np.ndarray) -> int | np.ndarray:
    return MEMBER_ID_BASE + day_number(day) * 100 + k


def _pick(rng: np.random.Generator, words: tuple[str, ...], n: int) -> np.ndarray:
    return np.asarray(words, dtype=object)[rng.integers(0, len(words), n)]


def company_names(rng: np.random.Generator, n: int) -> list[str]:
    parts = [_pick(rng, words, n) for words in COMPANY_WORDS]
    return [" ".join(p) for p in zip(*parts, strict=True)]


def _prices(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return np.round(rng.uniform(low, high, n), 2)


def _times(rng: np.random.Generator, start: dt.datetime, seconds: int, n: int) -> pd.Series:
    offsets = pd.to_timedelta(rng.integers(0, seconds, n), unit="s")
    return pd.Series(pd.Timestamp(start) + offsets)


def _iso(times: pd.Series) -> list[str]:
    return list(times.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _money(values: np.ndarray) -> list[str]:
    return [f"{v:.2f}" for v in values]


def _rows(columns: list) -> str:
    return "".join(",".join(map(str, row)) + "\n" for row in zip(*columns, strict=True))


def _check_rows(rows: int, limit: int) -> None:
    if not 1 <= rows <= limit:
        raise ValueError(f"rows must be between 1 and {limit}, got {rows}")


def init_tables(*, until: dt.date, rows: int = 5000, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The four seed tables with ``rows`` rows each; orders created 2018-01-01 .. ``until``."""
    _check_rows(rows, MEMBER_ID_BASE - 1)
    if until < FIRST_ORDER_DAY:
        raise ValueError(f"the init day {until} is before the first order day {FIRST_ORDER_DAY}")
    rng = np.random.default_rng([seed, 0])
    ids = np.arange(1, rows + 1)
    companies = pd.DataFrame({"company_id": ids, "company_name": company_names(rng, rows)})

    first, last = _pick(rng, FIRST_NAMES, rows), _pick(rng, LAST_NAMES, rows)
    user_names = [f"{f}.{s}{i}".lower() for f, s, i in zip(first, last, ids, strict=True)]
    country = rng.integers(0, len(COUNTRY_NETWORKS), rows)
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "full_name": [f"{f} {s}" for f, s in zip(first, last, strict=True)],
            "dob": [dt.date(1925, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 81 * 365, rows)],
            "user_name": user_names,
            "email": [f"{u}@example.com" for u in user_names],
            "most_freq_city": [COUNTRY_NETWORKS[c][1] for c in country],
            "most_freq_cntry": [COUNTRY_NETWORKS[c][0] for c in country],
        }
    )

    product_parts = [_pick(rng, words, rows) for words in PRODUCT_WORDS]
    products = pd.DataFrame(
        {
            "prod_id": ids,
            "prod_name": [" ".join(p) for p in zip(*product_parts, strict=True)],
            "prod_unit_price": _prices(rng, 10, 10_000, rows),
            "prod_currency_code": "USD",
            "supplier_id": rng.integers(1, rows + 1, rows),
        }
    )

    is_sale = rng.random(rows) < 0.5
    span = int((dt.datetime.combine(until, dt.time()) - dt.datetime(2018, 1, 1)).total_seconds()) + 86_400
    orders = pd.DataFrame(
        {
            "order_id": ids,
            "prod_id": rng.integers(1, rows + 1, rows),
            "customer_id": rng.integers(1, rows + 1, rows),
            "prod_quote_price": _prices(rng, 200, 10_000, rows),
            "is_lead_sale": is_sale,
            "crm_lead_id": np.where(is_sale, ids, -1),
            "company_id": rng.integers(1, rows + 1, rows),
            "created_date": _times(rng, dt.datetime(2018, 1, 1, tzinfo=dt.UTC), span, rows),
        }
    )
    return {"companies": companies, "customers": customers, "products": products, "orders": orders}


def init_files(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """The init tables as the seed's header-less CSV files, keyed by lake key."""
    c, cu, p, o = tables["companies"], tables["customers"], tables["products"], tables["orders"]
    texts = {
        "companies": _rows([c["company_id"], c["company_name"].str.replace(",", "")]),
        "customers": _rows(
            [
                cu[k]
                for k in (
                    "customer_id",
                    "full_name",
                    "dob",
                    "user_name",
                    "email",
                    "most_freq_city",
                    "most_freq_cntry",
                )
            ]
        ),
        "products": _rows(
            [
                p["prod_id"],
                p["prod_name"],
                _money(p["prod_unit_price"]),
                p["prod_currency_code"],
                p["supplier_id"],
            ]
        ),
        "orders": _rows(
            [
                o["order_id"],
                o["prod_id"],
                o["customer_id"],
                _money(o["prod_quote_price"]),
                o["is_lead_sale"].map({True: "true", False: "false"}),
                o["crm_lead_id"],
                o["company_id"],
                _iso(o["created_date"]),
            ]
        ),
    }
    return {storage.init_key(name): text for name, text in texts.items()}


def _corrupt(rng: np.random.Generator, text: str, count: int, kind: str) -> str:
    """Replace ``count`` lines with typical breakage: a cut line, a word for a number, garbage."""
    lines = text.splitlines()
    for n, i in enumerate(sorted(rng.choice(len(lines), size=min(count, len(lines)), replace=False))):
        line = lines[i]
        if n % 3 == 0:
            lines[i] = line[: len(line) // 2]
        elif n % 3 == 1 and kind == "csv":
            parts = line.split(",")
            parts[1] = "n/a"
            lines[i] = ",".join(parts)
        elif n % 3 == 1:
            lines[i] = line.replace(":", "h", 1)  # breaks the timestamp
        else:
            lines[i] = "\x7fgarbage<<<>>>"
    return "\n".join(lines) + "\n"


def day_files(
    day: dt.date,
    universe: dict[str, pd.DataFrame],
    *,
    rows: int = 2000,
    seed: int = 0,
    bad_lines: int = 0,
) -> dict[str, str]:
    """A day's raw files and company change files, keyed by lake key.

    ``universe`` holds the init ``customers`` (customer_id, user_name, most_freq_cntry),
    ``products`` (prod_id, supplier_id) and ``companies`` (company_id) the day refers to.
    ``bad_lines`` lines of each raw file are corrupted (to exercise quarantine).
    """
    _check_rows(rows, MAX_DAILY_ROWS)
    if day_number(day) < 1:
        raise ValueError(f"days before {EPOCH} cannot be generated")
    rng = np.random.default_rng([seed, day.toordinal()])
    customers, products = universe["customers"], universe["products"]
    company_ids = universe["companies"]["company_id"].to_numpy()
    midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    new_companies = new_member_id(day, np.arange(NEW_COMPANIES_PER_DAY))
    tomorrows = new_member_id(day + dt.timedelta(days=1), np.arange(NEW_COMPANIES_PER_DAY))

    renamed = np.sort(rng.choice(company_ids, size=min(RENAMES_PER_DAY, len(company_ids)), replace=False))
    files = {
        storage.change_key("insert", day): _rows([new_companies, company_names(rng, len(new_companies))]),
        storage.change_key("update", day): _rows([renamed, company_names(rng, len(renamed))]),
    }

    # Company quotes: direct sales.
    picked = products.iloc[rng.integers(0, len(products), rows)]
    price = _prices(rng, 10, 10_000, rows)
    draw = rng.random(rows)
    company = np.where(
        draw < 0.97,
        rng.choice(company_ids, rows),
        np.where(draw < 0.99, rng.choice(new_companies, rows), rng.choice(tomorrows, rows)),
    )
    files[storage.raw_key(day, storage.QUOTES_FILE)] = _rows(
        [
            picked["prod_id"],
            _money(price),
            _money(price * rng.uniform(1.5, 5.0, rows)),
            daily_order_id(day, np.arange(rows)),
            rng.choice(customers["customer_id"].to_numpy(), rows),
            company,
            picked["supplier_id"],
            _iso(_times(rng, midnight, 86_400, rows)),
        ]
    )

    # CRM leads: half of them became a sale with an order id; a few come from new customers.
    lead_index = np.arange(rows) + MAX_DAILY_ROWS
    sale = rng.random(rows) < 0.5
    price = _prices(rng, 200, 10_000, rows)
    customer = np.where(
        rng.random(rows) < 0.98,
        rng.choice(customers["customer_id"].to_numpy(), rows),
        new_member_id(day, rng.integers(0, NEW_CUSTOMERS_PER_DAY, rows)),
    )
    files[storage.raw_key(day, storage.LEADS_FILE)] = _rows(
        [
            daily_order_id(day, lead_index),
            rng.choice(products["prod_id"].to_numpy(), rows),
            _money(price),
            _money(price * rng.uniform(1.5, 5.0, rows)),
            np.where(sale, "true", "false"),
            np.where(sale, daily_order_id(day, lead_index).astype(str), ""),
            customer,
            rng.choice(company_ids, rows),
            _iso(_times(rng, midnight, 86_400, rows)),
        ]
    )
    files[storage.raw_key(day, storage.WEBLOG_FILE)] = _weblog(rng, day, customers, products, rows)

    if bad_lines:
        for name, kind in (
            (storage.QUOTES_FILE, "csv"),
            (storage.LEADS_FILE, "csv"),
            (storage.WEBLOG_FILE, "log"),
        ):
            key = storage.raw_key(day, name)
            files[key] = _corrupt(rng, files[key], bad_lines, kind)
    return files


def _weblog(
    rng: np.random.Generator, day: dt.date, customers: pd.DataFrame, products: pd.DataFrame, rows: int
) -> str:
    visitors = customers.iloc[rng.integers(0, len(customers), rows)]
    home = {code: i for i, (code, _, _) in enumerate(COUNTRY_NETWORKS)}
    first_octet = [int(cidr.split(".", 1)[0]) for _, _, cidr in COUNTRY_NETWORKS]
    draw = rng.random(rows)
    country = np.where(
        draw < 0.85,
        [home.get(c, 0) for c in visitors["most_freq_cntry"]],
        rng.integers(0, len(COUNTRY_NETWORKS), rows),
    )
    octet = np.where(draw < 0.95, np.asarray(first_octet)[country], UNLISTED_NETWORK)
    rest = rng.integers(0, 256, (rows, 3))
    ips = [f"{a}.{b}.{c}.{d}" for a, (b, c, d) in zip(octet, rest, strict=True)]
    times = _times(rng, dt.datetime.combine(day, dt.time()), 86_400, rows)
    stamps = list(times.dt.strftime("%d/%b/%Y:%H:%M:%S +0000"))
    product_page = rng.random(rows) < 0.6
    viewed = rng.choice(products["prod_id"].to_numpy(), rows)
    other = _pick(rng, OTHER_PAGES, rows)
    paths = [f"/products/{p}" if page else o for page, p, o in zip(product_page, viewed, other, strict=True)]
    methods = np.where(np.asarray(paths) == "/cart", "POST", "GET")
    statuses = _pick(rng, tuple(map(str, STATUS_CODES)), rows)
    sizes = rng.integers(200, 50_000, rows)
    agents = np.asarray(USER_AGENTS, dtype=object)[rng.choice(len(USER_AGENTS), rows, p=USER_AGENT_WEIGHTS)]
    lines = [
        f'{ip} - {user} [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "{REFERER}" "{agent}"'
        for ip, user, stamp, method, path, status, size, agent in zip(
            ips, visitors["user_name"], stamps, methods, paths, statuses, sizes, agents, strict=True
        )
    ]
    return "\n".join(lines) + "\n"


def start_day(env: dict[str, str] | None = None) -> dt.date:
    """First daily partition: ``PIPELINE_B2B_START`` (ISO date), default 2024-01-01."""
    return start_date(os.environ if env is None else env)


def generate(
    lake: Lake,
    *,
    seed: int = 0,
    start: dt.date | None = None,
    days: int = 1,
    init_rows: int = 5000,
    rows: int = 2000,
    bad_lines: int = 0,
) -> list[str]:
    """Write the init files and ``days`` days of files from ``start`` (default
    ``PIPELINE_B2B_START``) into ``lake``; returns the keys written. The init orders end the
    day before ``start``, which is the day the init load's snapshot is labelled with."""
    start = start or start_day()
    tables = init_tables(until=start - dt.timedelta(days=1), rows=init_rows, seed=seed)
    files = init_files(tables)
    universe = {
        "customers": tables["customers"],
        "products": tables["products"],
        "companies": tables["companies"],
    }
    for offset in range(days):
        files.update(
            day_files(start + dt.timedelta(days=offset), universe, rows=rows, seed=seed, bad_lines=bad_lines)
        )
    for key, text in files.items():
        lake.write_text(key, text)
    return list(files)
