"""Sample click data: one batch written in the three accepted formats, plus the marker that
starts a run.

The batch's rows are split in three files, one per layout the pipeline must accept:
``<batch>.csv`` with the raw Kaggle columns (``user, time_stamp, adgroup_id, pid, nonclk, clk``,
epoch seconds), ``<batch>.json`` renamed and in pandas' column orientation with an ``index``
column and epoch-millisecond dates (the seed's mock data, ``df.reset_index().to_json()``), and
``<batch>.xlsx`` renamed with ISO dates. The marker ``clickstream/metadata/<batch>.csv`` lists
the batch's days in a ``date`` column.
"""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd

from pipeline.clickstream import storage
from pipeline.clickstream.transform import RENAMES
from pipeline.resources.lake import Lake

CATALOGUE = {
    "Classroom": ["Bookmark Set", "Sticker Sheet", "Pencil Set", "Lanyard"],
    "Apparel": ["White Tee", "Black Tee", "Baseball Cap", "Youth Apron"],
    "Bundles": ["Party Kit", "Teacher Pack", "Travel Pack"],
    "Sale": ["Water Bottle", "Coffee Mug", "Tote Bag", "Journal"],
}


def sample_rows(*, seed: int = 0, start: dt.date, days: int, rows: int) -> pd.DataFrame:
    """Raw-layout click rows (Kaggle column names) spread over ``days`` days from ``start``."""
    rng = np.random.default_rng(seed)
    products = [(category, name) for category, names in CATALOGUE.items() for name in names]
    picks = rng.integers(0, len(products), rows)
    midnight = int(dt.datetime.combine(start, dt.time(), dt.UTC).timestamp())
    clicked = rng.random(rows) < 0.3
    return pd.DataFrame(
        {
            "user": rng.integers(1, 500, rows),
            "time_stamp": midnight + rng.integers(0, days * 86_400, rows),
            "adgroup_id": [products[i][0] for i in picks],
            "pid": [products[i][1] for i in picks],
            "nonclk": (~clicked).astype(int),
            "clk": clicked.astype(int),
        }
    )


def generate(
    lake: Lake,
    *,
    seed: int = 0,
    start: dt.date | None = None,
    days: int = 7,
    rows: int = 600,
    source_prefix: str | None = None,
    today: dt.date | None = None,
) -> list[str]:
    """Write one sample batch (three files) and its marker into ``lake``; return the keys written.

    ``start`` defaults to the first day of the current month (the default partitions start), and
    the batch never runs past ``today``. ``source_prefix`` defaults to the ini's ``source_path``.
    Fast: 600 rows take well under a second.
    """
    if source_prefix is None:
        from pipeline.clickstream.config import load_config

        source_prefix = load_config().source_prefix
    today = today or dt.date.today()
    start = start or today.replace(day=1)
    days = max(1, min(days, (today - start).days + 1))
    frame = sample_rows(seed=seed, start=start, days=days, rows=rows)
    batch = f"batch-{seed:04d}"
    third = -(-rows // 3)
    csv_part, json_part, xlsx_part = (frame.iloc[i * third : (i + 1) * third] for i in range(3))

    renamed_json = json_part.drop(columns="nonclk").rename(columns=RENAMES).reset_index(drop=True)
    renamed_json["date"] = pd.to_datetime(renamed_json["date"], unit="s").dt.normalize()
    renamed_xlsx = xlsx_part.drop(columns="nonclk").rename(columns=RENAMES)
    renamed_xlsx["date"] = pd.to_datetime(renamed_xlsx["date"], unit="s").dt.strftime("%Y-%m-%d")
    excel = io.BytesIO()
    renamed_xlsx.to_excel(excel, index=False, engine="openpyxl")

    files = {
        f"{source_prefix}{batch}.csv": csv_part.to_csv(index=False).encode(),
        f"{source_prefix}{batch}.json": renamed_json.reset_index().to_json().encode(),
        f"{source_prefix}{batch}.xlsx": excel.getvalue(),
    }
    day_list = sorted({d.date() for d in pd.to_datetime(frame["time_stamp"], unit="s")})
    marker = pd.DataFrame({"date": [day.isoformat() for day in day_list]}).to_csv(index=False).encode()
    files[f"{storage.METADATA_PREFIX}{batch}.csv"] = marker  # last: the data is in place before the trigger
    for key, data in files.items():
        lake.write_bytes(key, data)
    return list(files)
