"""Thin assets: stage, audit and publish the input; compute the features with :mod:`transform`.

The raw tables are the warehouse's (``basket.*``), published only after their audit passed
(see :mod:`checks`). Features are rebuilt as a whole from every published day, as the seed's
daily jobs did, and written twice: Parquet in the lake (what the next feature reads) and a
table in schema ``basket``. They are not partitioned: each depends on all days of orders.
"""

import io

import dagster as dg
import pandas as pd

from pipeline.resources.lake import Lake, LakeResource
from pipeline.resources.warehouse import Warehouse, WarehouseResource

from . import checks, files, schema, tables, transform
from .config import BasketConfig

GROUP = "basket"
OWNERS = ["team:analytics"]
REFERENCE = dg.AssetKey([GROUP, "reference"])
ORDERS = dg.AssetKey([GROUP, "orders"])


def build_input_assets(
    partitions_def: dg.PartitionsDefinition, config: BasketConfig
) -> list[dg.AssetsDefinition]:
    """``basket/reference`` and ``basket/orders``; built here because the partitions and the
    audit's bounds come from the environment."""

    @dg.asset(
        key=REFERENCE,
        group_name=GROUP,
        kinds={"postgres"},
        owners=OWNERS,
        check_specs=checks.check_specs(REFERENCE),
    )
    def reference(context: dg.AssetExecutionContext, warehouse: WarehouseResource, lake: LakeResource):
        """Departments, aisles and products pushed to basket/reference/<table>.csv; audited, then
        replacing basket.departments, basket.aisles and basket.products in one transaction."""
        wh, lk = warehouse.get(), lake.get()
        pushed = {obj.key: obj for obj in lk.list(files.REFERENCE_PREFIX)}
        missing = [
            files.reference_key(t) for t in schema.REFERENCE_TABLES if files.reference_key(t) not in pushed
        ]
        if missing:
            raise dg.Failure(
                f"reference files missing from the lake: {', '.join(missing)}. Push all three "
                "(the public departments.csv, aisles.csv and products.csv work as they are)."
            )
        wh.ensure(tables.ALL)
        staged = {t: files.stage(lk, t, [pushed[files.reference_key(t)]]) for t in schema.REFERENCE_TABLES}
        published = {t: wh.row_count(tables.RAW[t]) for t in schema.REFERENCE_TABLES}
        results = checks.audit_reference(staged, published, config)
        yield from _fail_unless_passed(results, REFERENCE.to_user_string())
        rows = {}
        with wh.connect() as conn, conn.transaction():
            for table in schema.REFERENCE_TABLES:
                tables.lock(conn, tables.RAW[table])
                rows[table] = wh.replace_all(tables.RAW[table], staged[table].frame, conn)
        yield dg.MaterializeResult(metadata=_rows_metadata(rows), check_results=results)

    @dg.asset(
        key=ORDERS,
        group_name=GROUP,
        kinds={"postgres"},
        owners=OWNERS,
        partitions_def=partitions_def,
        deps=[reference],  # its referential-integrity check reads the published products
        check_specs=checks.check_specs(ORDERS),
    )
    def orders(context: dg.AssetExecutionContext, warehouse: WarehouseResource, lake: LakeResource):
        """One day of streamed orders and order products (basket/stream/<table>/<day>/, CSV or JSON
        lines); audited, then replacing that day's slice of basket.orders and basket.order_products
        in one transaction."""
        day = context.partition_key
        wh, lk = warehouse.get(), lake.get()
        wh.ensure(tables.ALL)
        staged = {t: files.stage(lk, t, lk.list(files.stream_prefix(t, day))) for t in schema.STREAM_TABLES}
        results = checks.audit_orders(staged, day, wh, config)
        yield from _fail_unless_passed(results, f"{ORDERS.to_user_string()} {day}")
        rows = {}
        with wh.connect() as conn, conn.transaction():
            for table in schema.STREAM_TABLES:
                spec = tables.RAW[table]
                tables.lock(conn, spec, day)
                rows[table] = wh.replace_slice(
                    spec, "stream_date", [day], staged[table].frame.assign(stream_date=day), conn
                )
        metadata = {**_rows_metadata(rows), "files": sum(s.files for s in staged.values())}
        yield dg.MaterializeResult(metadata=metadata, check_results=results)

    return [reference, orders]


def _fail_unless_passed(results: list[dg.AssetCheckResult], what: str):
    failed = [r.check_name for r in results if not r.passed]
    if failed:
        yield from results
        raise dg.Failure(
            description=f"{what} failed its audit ({', '.join(failed)}): nothing was published and the "
            "warehouse keeps its previous rows. The checks' metadata give the figures; rejected files are "
            "under quarantine/basket/ with a .reason.txt.",
            metadata={"failed_checks": dg.MetadataValue.json(failed)},
        )


def _rows_metadata(rows: dict[str, int]) -> dict:
    return {
        "dagster/row_count": sum(rows.values()),
        **{f"rows.{tables.SCHEMA}.{t}": n for t, n in rows.items()},
    }


# --- features ----------------------------------------------------------------------------------


def build_feature_assets(engine: transform.FeatureEngine) -> list[dg.AssetsDefinition]:
    """The six feature assets, computed by ``engine`` (pandas or Spark, chosen by the definitions)."""
    feature = dict(group_name=GROUP, key_prefix=[GROUP], kinds={engine.name, "parquet", "postgres"}, owners=OWNERS)

    @dg.asset(deps=[ORDERS], **feature)
    def order_products_prior(warehouse: WarehouseResource, lake: LakeResource) -> dg.MaterializeResult:
        """Products of every prior order with their order's columns: the base of the per-product features."""
        wh = warehouse.get()
        wh.ensure(tables.ALL)
        orders = tables.read_table(wh, tables.RAW["orders"], transform.ORDER_COLUMNS)
        products = tables.read_table(wh, tables.RAW["order_products"], schema.columns("order_products"))
        return _publish("order_products_prior", engine.order_products_prior(orders, products), wh, lake.get())

    @dg.asset(deps=[ORDERS], **feature)
    def user_features_1(warehouse: WarehouseResource, lake: LakeResource) -> dg.MaterializeResult:
        """Per user, over all orders (every eval set): order count and days between orders."""
        wh = warehouse.get()
        wh.ensure(tables.ALL)
        orders = tables.read_table(wh, tables.RAW["orders"], transform.ORDER_COLUMNS)
        return _publish("user_features_1", engine.user_features_1(orders), wh, lake.get())

    @dg.asset(deps=[order_products_prior], **feature)
    def user_features_2(warehouse: WarehouseResource, lake: LakeResource) -> dg.MaterializeResult:
        """Per user, over prior order products: basket sizes and reorder ratio."""
        lk = lake.get()
        prior = _read(lk, "order_products_prior")
        return _publish("user_features_2", engine.user_features_2(prior), warehouse.get(), lk)

    @dg.asset(deps=[order_products_prior], **feature)
    def up_features(warehouse: WarehouseResource, lake: LakeResource) -> dg.MaterializeResult:
        """Per (user, product), over prior order products: how often, first, last, cart position."""
        lk = lake.get()
        prior = _read(lk, "order_products_prior")
        return _publish("up_features", engine.up_features(prior), warehouse.get(), lk)

    @dg.asset(deps=[order_products_prior], **feature)
    def prd_features(warehouse: WarehouseResource, lake: LakeResource) -> dg.MaterializeResult:
        """Per product, over prior order products: orders, reorders, first and second purchases."""
        lk = lake.get()
        prior = _read(lk, "order_products_prior")
        return _publish("prd_features", engine.prd_features(prior), warehouse.get(), lk)

    @dg.asset(
        deps=[up_features, user_features_1, user_features_2, prd_features],
        group_name=GROUP,
        key_prefix=[GROUP],
        kinds={engine.name, "csv"},
        owners=OWNERS,
    )
    def features_csv(warehouse: WarehouseResource, lake: LakeResource) -> dg.MaterializeResult:
        """The model's input: one row per (user, product) with the 16 features, one CSV with header
        under basket/final/<day>/, where <day> is the newest day of published orders (so a rerun on
        the same data rewrites the same file)."""
        lk, wh = lake.get(), warehouse.get()
        wh.ensure(tables.ALL)
        day = tables.newest_day(wh)
        if day is None:
            raise dg.Failure("no orders are published yet: materialize basket/orders for a day first.")
        frame = engine.basket_features(
            _read(lk, "up_features"),
            _read(lk, "user_features_1"),
            _read(lk, "user_features_2"),
            _read(lk, "prd_features"),
        )
        key = files.final_key(day)
        lk.write_text(key, frame.to_csv(index=False))
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(frame),
                "day": day,
                "csv": dg.MetadataValue.path(lk.uri(key)),
                "dagster/column_schema": _column_schema(frame),
            }
        )

    return [
        order_products_prior,
        user_features_1,
        user_features_2,
        up_features,
        prd_features,
        features_csv,
    ]


# The pandas set, for callers that do not read settings (the definitions pick the engine).
FEATURE_ASSETS = build_feature_assets(transform.PandasEngine())


def _read(lake: Lake, name: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(lake.read_bytes(files.feature_key(name))))


def _publish(name: str, frame: pd.DataFrame, warehouse: Warehouse, lake: Lake) -> dg.MaterializeResult:
    """Parquet first (what downstream features read), then the table, replaced in one transaction."""
    spec = tables.FEATURES[name]
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    key = files.feature_key(name)
    lake.write_bytes(key, buffer.getvalue())
    warehouse.ensure([spec])
    with warehouse.connect() as conn, conn.transaction():
        tables.lock(conn, spec)
        rows = warehouse.replace_all(spec, frame, conn)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "dagster/table_name": spec.qualified,
            "parquet": dg.MetadataValue.path(lake.uri(key)),
            "dagster/column_schema": _column_schema(frame),
        }
    )


def _column_schema(frame: pd.DataFrame) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]
    )
