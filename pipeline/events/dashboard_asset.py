"""The ``dashboard`` asset: reads the event tables and the lake's own records, writes one HTML page.

The page is built by :mod:`pipeline.events.dashboard`; this module only gathers its inputs
(aggregated in SQL, so a day of t1 is 1,440 rows, not millions) and publishes the result. That
module (Altair, Jinja) is imported by the dashboard's own runs only: every other run of the code
location loads faster without it.
"""

import json
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd
from psycopg import sql

from pipeline.events import clock, freshness, keys, layout
from pipeline.events.keys import GROUP, OWNERS
from pipeline.events.lanes import give_way, in_own_process
from pipeline.events.tables import all_tables, pairs, rank_table, t1_table, t2_table
from pipeline.resources.lake import Lake, LakeResource, LocalLake
from pipeline.resources.warehouse import TableSpec, Warehouse, WarehouseResource
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.events import dashboard

DASHBOARD_KEY = "dashboard/index.html"
TOP_N = 10
QUARANTINE_ROWS = 50


def _totals(db: Warehouse, spec: TableSpec, time_col: str, event: str) -> pd.DataFrame:
    metrics = (sql.SQL("sum(view_count) AS views") if event == "view"
               else sql.SQL("sum(purchase_count) AS purchases, sum(gmv) AS gmv"))
    query = sql.SQL("SELECT {time}, {metrics} FROM {table} GROUP BY {time} ORDER BY {time}").format(
        time=spec.column(time_col), metrics=metrics, table=spec.table)
    return db.read_frame(query)


def _series(db: Warehouse, settings: Settings, make, time_col: str) -> pd.DataFrame:
    """Totals per time from one dimension's tables: every dimension sums to the same totals."""
    from pipeline.events import dashboard

    dimension = settings.dimensions[0]
    return dashboard.combine_totals(
        {event: _totals(db, make(event, dimension), time_col, event) for event in settings.events}, time_col)


def _top(db: Warehouse, settings: Settings) -> dict[tuple[str, str], pd.DataFrame]:
    top = {}
    for event, dimension in pairs(settings.events, settings.dimensions):
        spec = rank_table(event, dimension)
        top[(event, dimension)] = db.read_frame(
            sql.SQL("SELECT * FROM {} WHERE rank <= %s ORDER BY rank").format(spec.table), (TOP_N,))
    return top


def _window_manifests(lake: Lake, since: pd.Timestamp | None) -> list[dict]:
    if since is None:
        return []
    manifests = []
    for obj in lake.list("manifests/"):
        hour = layout.hour_of_slug(obj.name.removesuffix(".json"))
        if hour >= since.floor("h"):
            manifests.append(json.loads(lake.read_text(obj.key)))
    return manifests


def _quarantine(lake: Lake) -> tuple[pd.DataFrame, int]:
    """The event system's quarantined files (top level of quarantine/; other groups use sub-folders)."""
    from pipeline.events import dashboard

    reasons = [o.key for o in lake.list("quarantine/")
               if o.key.count("/") == 1 and o.key.endswith(".reason.json")
               and not o.key.endswith(".rejected.csv.reason.json")]  # rejected rows, not files
    newest = sorted(reasons)[-QUARANTINE_ROWS:]  # keys start with the quarantine time
    return dashboard.quarantine_frame([(key, lake.read_text(key)) for key in newest]), len(reasons)


def load_dashboard_data(lake: Lake, db: Warehouse, settings: Settings,
                        now: pd.Timestamp | None = None) -> "dashboard.DashboardData":
    from pipeline.events import dashboard

    newest = clock.newest_t1_minute(db, settings)
    since = clock.t1_cutoff(newest, settings) if newest is not None else None
    files = dashboard.manifest_frame(_window_manifests(lake, since))
    if since is not None:
        files = files[files["minute"] > since].reset_index(drop=True)
    quarantine, quarantined_total = _quarantine(lake)
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    lag = freshness.Lag(newest, freshness.newest_landed_minute(lake, newest, now), now)
    return dashboard.DashboardData(
        generated_at=now,
        newest_minute=newest,
        minutes=_series(db, settings, t1_table, "minute"),
        hours=_series(db, settings, t2_table, "hour"),
        top=_top(db, settings),
        files=files,
        quarantine=quarantine,
        quarantined_total=quarantined_total,
        waiting=sum(1 for _ in lake.list("landing/", settings.landing_page_size)),
        t1_hours=settings.t1_retention_hours,
        t2_days=settings.t2_retention_days,
        lag_wall_clock=lag.behind_wall_clock,
        lag_landing=lag.behind_landing,
    )


def _page_links(lake: Lake) -> dict:
    uri = lake.uri(DASHBOARD_KEY)
    if isinstance(lake, LocalLake):
        path = lake.path(DASHBOARD_KEY)
        return {"dashboard": dg.MetadataValue.url(path.as_uri()), "path": dg.MetadataValue.path(str(path))}
    return {"dashboard": dg.MetadataValue.url(uri), "path": dg.MetadataValue.path(uri)}


def cached_vega_bundle(lake: Lake) -> str:
    """The vega bundle from the lake (shared by every worker), else built (or read from this
    machine's cache, see :func:`dashboard.vega_bundle`) and kept in the lake."""
    from pipeline.events import dashboard

    key = f"cache/vega-bundle-{dashboard.alt.SCHEMA_VERSION}.js"
    if lake.exists(key):
        return lake.read_text(key)
    bundle = dashboard.vega_bundle()
    lake.write_text(key, bundle)
    return bundle


def build_dashboard_asset(settings: Settings) -> dg.AssetsDefinition:
    @dg.asset(
        name="dashboard",
        key_prefix=[GROUP],
        deps=[keys.RANKINGS],
        group_name=GROUP,
        owners=OWNERS,
        kinds={"pandas", "html"},
        # rankings is unpartitioned, so eager() fits here (unlike rankings itself, see rankings_condition)
        automation_condition=dg.AutomationCondition.eager().with_label("rankings changed"),
        metadata={"lake_key": DASHBOARD_KEY},
    )
    def dashboard_page(context: dg.AssetExecutionContext, lake: LakeResource,
                       warehouse: WarehouseResource) -> dg.MaterializeResult:
        """A self-contained HTML page in the lake (dashboard/index.html): views and GMV per minute (t1)
        and per hour (t2), the top products, brands and categories of the last hour, and the
        platform's health (files per minute by server, late and quarantined files). Opens offline."""
        from pipeline.events import dashboard

        if in_own_process(context.run):
            give_way()  # a page for people: it may wait a moment, a live minute's run should not
        store, db = lake.get(), warehouse.get()
        db.ensure(all_tables(settings.events, settings.dimensions))
        data = load_dashboard_data(store, db, settings)
        page = dashboard.render_page(data, cached_vega_bundle(store), QUARANTINE_ROWS)
        store.write_text(DASHBOARD_KEY, page)
        context.log.info(f"dashboard written to {store.uri(DASHBOARD_KEY)}")
        return dg.MaterializeResult(metadata={
            **_page_links(store),
            "top_10": dg.MetadataValue.md(dashboard.top_markdown(data.top, TOP_N)),
            "newest_minute": str(data.newest_minute) if data.newest_minute is not None else "no data yet",
            "late_files": int(data.files["late"].sum()) if len(data.files) else 0,
            "quarantined_files": data.quarantined_total,
            "bytes": len(page.encode()),
        })

    return dashboard_page
