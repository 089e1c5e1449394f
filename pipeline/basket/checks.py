"""The audit as blocking Dagster asset checks, evaluated by the loading assets before they publish.

Write-audit-publish: ``basket/reference`` and ``basket/orders`` stage their files, run these
checks on the staged rows (plus what the warehouse already holds), and replace their tables
only when every check passes. A failed check fails the asset, so the features downstream do
not run and the warehouse keeps its previous, audited rows. Checking after the load instead
would let a bad day reach the tables the next feature run reads.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import dagster as dg
import pandas as pd

from pipeline.resources.warehouse import Warehouse

from . import audit, schema, tables
from .config import BasketConfig
from .files import Staged

CHECKS: dict[str, str] = {
    "columns_and_types": "Every file reads as a table with the contract's columns, every value of its "
    "column's type and range (eval_set prior/train/test, reordered 0/1, order_dow 0-6, ...). "
    "Failing files are quarantined under quarantine/basket/ with a reason.",
    "valid_utf8": "Text columns hold valid UTF-8 only. Failing files are quarantined with a reason.",
    "null_thresholds": "No empty values (the documented threshold is 0 for every column), except "
    "days_since_prior_order, which may be empty on a user's first order (order_number = 1) only.",
    "row_counts": "At least PIPELINE_BASKET_MIN_ROWS rows per table; for a day of orders, its rows "
    "divided by the previous day's within PIPELINE_BASKET_DAY_RATIO.",
    "unique_keys": "Keys are unique: department_id, aisle_id, product_id, order_id (also across days) and "
    "(order_id, product_id) (also across days).",
    "referential_integrity": "products -> aisles and departments; order_products -> orders (this day or "
    "published days) and products (published reference).",
}


def check_specs(asset: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    # Not partitioned (that is a preview feature in Dagster 1.13): each day's results carry the day.
    return [
        dg.AssetCheckSpec(name, asset=asset, description=text, blocking=True) for name, text in CHECKS.items()
    ]


def audit_reference(staged: Mapping[str, Staged], published_rows: Mapping[str, int], config: BasketConfig):
    """The six checks over the three staged reference tables."""
    frames = {table: s.frame for table, s in staged.items()}
    counts = {}
    for table, s in staged.items():
        finding = audit.row_count(len(s.frame), config.min_rows)
        counts[table] = audit.Finding(
            finding.passed, {**finding.figures, "published_rows": published_rows[table]}
        )
    integrity = {
        f"{child}.{column}": audit.orphans(frames[child], column, frames[parent][schema.KEYS[parent][0]])
        for (child, column), parent in schema.REFERENCES.items()
        if child == "products"
    }
    return _results(
        staged,
        {
            "null_thresholds": {t: audit.null_thresholds(f, t) for t, f in frames.items()},
            "row_counts": counts,
            "unique_keys": {t: audit.duplicate_keys(f, schema.KEYS[t]) for t, f in frames.items()},
            "referential_integrity": integrity,
        },
    )


def audit_orders(staged: Mapping[str, Staged], day: str, warehouse: Warehouse, config: BasketConfig):
    """The six checks over one staged day of orders and order products, against the published tables."""
    orders, products = staged["orders"].frame, staged["order_products"].frame
    previous_day = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
    counts = {
        table: audit.row_count(
            len(s.frame),
            config.min_rows,
            tables.rows_on_day(warehouse, tables.RAW[table], previous_day),
            config.day_ratio,
        )
        for table, s in staged.items()
    }
    unique = {
        table: audit.duplicate_keys(
            s.frame,
            schema.KEYS[table],
            tables.keys_on_other_days(warehouse, tables.RAW[table], day, _ids(s.frame["order_id"])),
        )
        for table, s in staged.items()
    }
    # Parents not staged today may be published already: look up only the ones still missing.
    unseen_orders = _ids(products["order_id"][~products["order_id"].isin(orders["order_id"])])
    published_orders = tables.keys_on_other_days(warehouse, tables.RAW["orders"], day, unseen_orders)
    known_orders = _ids(orders["order_id"]) + _ids(published_orders["order_id"])
    known_products = tables.existing(
        warehouse, tables.RAW["products"], "product_id", _ids(products["product_id"])
    )
    return _results(
        staged,
        {
            "null_thresholds": {t: audit.null_thresholds(s.frame, t) for t, s in staged.items()},
            "row_counts": counts,
            "unique_keys": unique,
            "referential_integrity": {
                "order_products.order_id": audit.orphans(products, "order_id", known_orders),
                "order_products.product_id": audit.orphans(products, "product_id", known_products),
            },
        },
        day=day,
    )


def _results(staged: Mapping[str, Staged], table_findings: dict[str, dict[str, audit.Finding]], **extra):
    findings = {
        "columns_and_types": {
            t: audit.Finding(
                not s.bad_format,
                {"files": s.files, "rows_accepted": len(s.frame), "quarantined": s.bad_format},
            )
            for t, s in staged.items()
        },
        "valid_utf8": {
            t: audit.Finding(not s.bad_utf8, {"invalid_values": s.invalid_utf8, "quarantined": s.bad_utf8})
            for t, s in staged.items()
        },
        **table_findings,
    }
    return [_result(name, findings[name], extra) for name in CHECKS]


def _result(name: str, findings: dict[str, audit.Finding], extra: dict[str, Any]) -> dg.AssetCheckResult:
    failed = [part for part, finding in findings.items() if not finding.passed]
    metadata: dict[str, Any] = {**extra, "failed": dg.MetadataValue.json(failed)}
    for part, finding in findings.items():
        for figure, value in finding.figures.items():
            metadata[f"{part}.{figure}"] = (
                dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value
            )
    return dg.AssetCheckResult(
        check_name=name,
        passed=all(f.passed for f in findings.values()),
        metadata=metadata,
        severity=dg.AssetCheckSeverity.ERROR,
    )


def _ids(values: pd.Series) -> list[int]:
    return [int(v) for v in values.dropna().unique()]
