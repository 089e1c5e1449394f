"""Apache combined-format web logs -> ``(user_name, country, device, prod_id, created_date)``.

Country: no offline IP-to-country database can be installed here without a download at run
time (GeoLite2 needs a licence key, the ``ip2location``/``geoip2`` packages ship no data), so
the country comes from :data:`COUNTRY_NETWORKS`, a *synthetic* table of IPv4 networks, one per
country. It is not real geolocation; the sample generator draws client IPs from the same
table, so generated logs resolve to the customers' countries. Addresses outside the table (and
IPv6) get no country rather than a guess. Swap the table for a real database by replacing
:func:`country_of`.

Device: the maintained ``user-agents`` package (ua-parser rules). Its device family is used as
is ("iPhone", "Samsung SM-S918B", "Mac"); desktop browsers it cannot name become "PC".
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from functools import lru_cache

import pandas as pd

# (ISO 3166-1 alpha-3, capital, synthetic IPv4 network). Documented in the README.
COUNTRY_NETWORKS: tuple[tuple[str, str, str], ...] = (
    ("USA", "Washington", "23.0.0.0/8"),
    ("GBR", "London", "25.0.0.0/8"),
    ("DEU", "Berlin", "31.0.0.0/8"),
    ("FRA", "Paris", "37.0.0.0/8"),
    ("ESP", "Madrid", "41.0.0.0/8"),
    ("ITA", "Rome", "46.0.0.0/8"),
    ("NLD", "Amsterdam", "51.0.0.0/8"),
    ("POL", "Warsaw", "62.0.0.0/8"),
    ("CAN", "Ottawa", "64.0.0.0/8"),
    ("MEX", "Mexico City", "77.0.0.0/8"),
    ("BRA", "Brasilia", "81.0.0.0/8"),
    ("ARG", "Buenos Aires", "88.0.0.0/8"),
    ("ZAF", "Pretoria", "94.0.0.0/8"),
    ("NGA", "Abuja", "102.0.0.0/8"),
    ("EGY", "Cairo", "105.0.0.0/8"),
    ("IND", "New Delhi", "110.0.0.0/8"),
    ("CHN", "Beijing", "116.0.0.0/8"),
    ("JPN", "Tokyo", "126.0.0.0/8"),
    ("KOR", "Seoul", "175.0.0.0/8"),
    ("AUS", "Canberra", "180.0.0.0/8"),
)

_NETWORKS = sorted(
    (int(net.network_address), int(net.broadcast_address), code)
    for code, _, cidr in COUNTRY_NETWORKS
    for net in [ipaddress.IPv4Network(cidr)]
)
_STARTS = [start for start, _, _ in _NETWORKS]

# %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"
COMBINED = re.compile(
    r'^(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" '
    r'(?P<status>\d{3}) (?P<size>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"$'
)
PRODUCT_PATH = re.compile(r"^/products/(\d{1,18})(?:[/?#]|$)")
TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"

WEBLOG_COLUMNS = ("line_number", "user_name", "country", "device", "prod_id", "created_date")


def country_of(ip: str) -> str | None:
    """ISO alpha-3 country of an IPv4 address per :data:`COUNTRY_NETWORKS`, else None."""
    address = ipaddress.ip_address(ip)
    if address.version != 4:
        return None
    value = int(address)
    i = bisect.bisect_right(_STARTS, value) - 1
    if i >= 0 and _NETWORKS[i][0] <= value <= _NETWORKS[i][1]:
        return _NETWORKS[i][2]
    return None


@lru_cache(maxsize=4096)
def device_of(user_agent: str) -> str:
    """Device name: the ua-parser device family, "PC" for unnamed desktops, else "Other"."""
    from user_agents import parse as parse_user_agent  # 0.2 s of rules: loaded by the runs that parse logs

    parsed = parse_user_agent(user_agent)
    if parsed.device.family and parsed.device.family != "Other":
        return parsed.device.family
    return "PC" if parsed.is_pc else "Other"


def _valid_ip(ip: str) -> bool:
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return False
    return True


def parse_weblog(text: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse a log file; returns ``(hits, rejects)``.

    ``hits`` has :data:`WEBLOG_COLUMNS`; ``rejects`` has ``line_number, line, reason``.
    Blank lines are skipped (they carry nothing). A user of ``-`` (anonymous) keeps the hit
    with no user name. Line numbers start at 1 and make a hit's key within its day.
    """
    lines = pd.Series(text.splitlines(), dtype="object")
    lines.index = pd.RangeIndex(1, len(lines) + 1)
    lines = lines[lines.str.strip() != ""]
    fields = lines.str.extract(COMBINED)
    reason = pd.Series(pd.NA, index=lines.index, dtype="object")
    reason[fields["ip"].isna()] = "does not match the Apache combined log format"

    ok = reason.isna()
    valid_ip = fields.loc[ok, "ip"].map(_valid_ip)
    reason[valid_ip[~valid_ip].index] = "client address is not an IP address"

    created = pd.to_datetime(fields["time"], format=TIME_FORMAT, errors="coerce", utc=True)
    reason[reason.isna() & created.isna()] = "timestamp is not dd/Mon/yyyy:HH:MM:SS +zzzz"

    ok = reason.isna()
    rejects = pd.DataFrame(
        {"line_number": lines.index[~ok], "line": lines[~ok].values, "reason": reason[~ok].values}
    )
    good = fields[ok]
    path = good["request"].str.split(" ", n=2).str[1]
    hits = pd.DataFrame(
        {
            "line_number": good.index.astype("int64"),
            "user_name": good["user"].where(good["user"] != "-", None),
            "country": good["ip"].map(country_of),
            "device": good["agent"].map(device_of),
            "prod_id": pd.to_numeric(path.str.extract(PRODUCT_PATH)[0], errors="coerce").astype("Int64"),
            "created_date": created[ok],
        }
    ).reset_index(drop=True)
    return hits, rejects.reset_index(drop=True)
