"""The events dashboard: one self-contained HTML page of Vega-Lite charts.

Frames in, HTML out: no Dagster and no I/O here (the asset reads the tables and the lake).
The page carries the Vega, Vega-Lite and vega-embed JavaScript inline, taken from the
vl-convert-python wheel (the bundle altair itself inlines with ``to_html(inline=True)``), so it
opens from a file or a bucket on a machine without internet access: nothing is fetched from a CDN.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import jinja2
import pandas as pd
from markupsafe import Markup

DIMENSION_LABELS = {"product_id": "products", "brand": "brands", "category_l1": "categories (level 1)",
                    "category_l2": "categories (level 2)", "category_l3": "categories",
                    "category_id": "category ids"}
GMV_COLOR, VIEW_COLOR = "#0f766e", "#4f46e5"
STATUS_COLORS = {"on time": "#94a3b8", "late": "#f59e0b", "quarantined": "#dc2626"}
EMBED_OPTIONS = {"actions": False, "renderer": "svg"}  # svg: labels stay text, readable and searchable
ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class DashboardData:
    """What the page shows; every frame may be empty (a fresh platform)."""

    generated_at: pd.Timestamp
    newest_minute: pd.Timestamp | None
    minutes: pd.DataFrame  # minute, views, purchases, gmv: t1 totals per minute
    hours: pd.DataFrame  # hour, views, purchases, gmv: t2 totals per hour
    top: dict[tuple[str, str], pd.DataFrame]  # (event, dimension) -> rank rows, best first
    files: pd.DataFrame  # manifest entries of the t1 window (see manifest_frame), with ``late``
    quarantine: pd.DataFrame  # when, file, reason: newest first
    quarantined_total: int = 0
    waiting: int = 0  # files in landing/ not claimed yet
    t1_hours: int = 24
    t2_days: int = 31
    lag_wall_clock: pd.Timedelta | None = None  # see pipeline.events.freshness
    lag_landing: pd.Timedelta | None = None


# --------------------------------------------------------------------------- frames


def combine_totals(by_event: dict[str, pd.DataFrame], time_col: str) -> pd.DataFrame:
    """Per-event totals (``views`` or ``purchases`` + ``gmv`` per time) -> one row per time."""
    out = pd.DataFrame({time_col: pd.Series(dtype="datetime64[ns, UTC]")})
    for frame in by_event.values():
        if frame.empty:
            continue
        frame = frame.assign(**{time_col: pd.to_datetime(frame[time_col], utc=True)})
        out = out.merge(frame, on=time_col, how="outer")
    for column, kind in (("views", "int64"), ("purchases", "int64"), ("gmv", "float64")):
        values = out[column] if column in out else pd.Series(0, index=out.index)
        out[column] = pd.to_numeric(values).fillna(0).astype(kind)
    return out.sort_values(time_col, kind="mergesort").reset_index(drop=True)[[time_col, "views", "purchases", "gmv"]]


TIMES = ("claimed_at", "landed_at", "in_t1_at")


def manifest_frame(manifests: list[dict]) -> pd.DataFrame:
    """One row per claimed file of the given hour manifests (``layout.Manifest`` JSON)."""
    rows = [{"name": e["name"], "minute": e["minute"], "server": e["server"], "status": e["status"],
             **{time: e.get(time) or None for time in TIMES}}
            for manifest in manifests for e in manifest.get("files", {}).values()]
    frame = pd.DataFrame(rows, columns=["name", "minute", "server", "status", *TIMES])
    frame["minute"] = pd.to_datetime(frame["minute"], utc=True)
    for time in TIMES:
        frame[time] = pd.to_datetime(frame[time], utc=True, format="ISO8601")
    return mark_late(frame)


def landing_to_t1(files: pd.DataFrame, now: pd.Timestamp, window: pd.Timedelta = pd.Timedelta(hours=1)) -> dict:
    """p95 of (in t1 - landed) over the files that reached t1 in the ``window`` before ``now``, for
    every file and for the live ones (not late); seconds, None without files."""
    if files.empty:
        return {"p95_s": None, "files": 0, "live_p95_s": None, "live_files": 0}
    recent = files[(files["in_t1_at"] > now - window) & (files["in_t1_at"] <= now) & files["landed_at"].notna()]
    seconds = (recent["in_t1_at"] - recent["landed_at"]).dt.total_seconds().clip(lower=0)
    live = seconds[~recent["late"]]

    def p95(values: pd.Series) -> float | None:
        return float(values.quantile(0.95, interpolation="higher")) if len(values) else None

    return {"p95_s": p95(seconds), "files": len(seconds), "live_p95_s": p95(live), "live_files": len(live)}


def _lag(value: pd.Timedelta | None) -> str:
    if value is None:
        return "n/a"
    seconds = value.total_seconds()
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:,.1f} min" if seconds < 7200 else \
        f"{seconds / 3600:,.1f} h"


def mark_late(files: pd.DataFrame) -> pd.DataFrame:
    """``late``: the file was claimed after a file of a later minute had been claimed.

    That is the platform's backlog (DESIGN section 5: a file older than what t1 already holds),
    told from the manifests alone. Same-second claims count as on time.
    """
    if files.empty:
        return files.assign(late=pd.Series(dtype=bool))
    first_claim = files.groupby("minute")["claimed_at"].min().sort_index()
    # earliest claim of any strictly later minute, per minute
    later = first_claim[::-1].cummin()[::-1].shift(-1)
    bound = files["minute"].map(later)
    return files.assign(late=(files["claimed_at"] > bound).fillna(False).astype(bool))


def arrival_status(files: pd.DataFrame) -> pd.Series:
    status = pd.Series("on time", index=files.index)
    status[files["late"]] = "late"
    status[files["status"] == "quarantined"] = "quarantined"
    return status


def files_per_minute(files: pd.DataFrame, by: str) -> pd.DataFrame:
    """Files per minute by ``server`` or by ``arrival`` (on time, late, quarantined)."""
    keyed = files.assign(arrival=arrival_status(files)) if by == "arrival" else files
    counts = keyed.groupby(["minute", by]).size().rename("files").reset_index()
    return counts.sort_values(["minute", by], kind="mergesort").reset_index(drop=True)


def quarantine_frame(entries: list[tuple[str, str]]) -> pd.DataFrame:
    """``(lake key of a .reason.json, its text)`` -> when, file, reason; newest first.

    Keys look like ``quarantine/20191001T000000123456-<file>.reason.json`` (``layout.quarantine``).
    """
    rows = []
    for key, text in entries:
        name = key.rsplit("/", 1)[-1].removesuffix(".reason.json")
        stamp, _, original = name.partition("-")
        try:
            reason = json.loads(text).get("reason", "")
        except ValueError:
            reason = "unreadable reason file"
        rows.append({"when": pd.to_datetime(stamp, format="%Y%m%dT%H%M%S%f", utc=True, errors="coerce"),
                     "file": original, "reason": reason})
    frame = pd.DataFrame(rows, columns=["when", "file", "reason"])
    return frame.sort_values("when", ascending=False, kind="mergesort").reset_index(drop=True)


def last_hour(minutes: pd.DataFrame, newest: pd.Timestamp | None) -> dict[str, float]:
    """Views, purchases and GMV of the 60 minutes ending at the newest minute (the rankings' window)."""
    if newest is None or minutes.empty:
        return {"views": 0, "purchases": 0, "gmv": 0.0}
    window = minutes[minutes["minute"] > newest - pd.Timedelta(minutes=60)]
    return {"views": int(window["views"].sum()), "purchases": int(window["purchases"].sum()),
            "gmv": float(window["gmv"].sum())}


def kpis(data: DashboardData) -> list[tuple[str, str, str]]:
    """(label, value, hint) tiles of the page header."""
    hour = last_hour(data.minutes, data.newest_minute)
    late = int(data.files["late"].sum()) if len(data.files) else 0
    accepted = int((data.files["status"] == "accepted").sum()) if len(data.files) else 0
    latency = landing_to_t1(data.files, data.generated_at)
    p95 = "n/a" if latency["p95_s"] is None else f"{latency['p95_s']:,.1f} s"
    live = "" if latency["live_p95_s"] is None else f"; live files {latency['live_p95_s']:,.1f} s"
    return [
        ("t1 lag, wall clock", _lag(data.lag_wall_clock), "now - end of the newest t1 minute"),
        ("t1 lag, landing", _lag(data.lag_landing), "newest landed minute - newest t1 minute"),
        ("landing → t1 p95", p95, f"{latency['files']:,} files in t1 in the last hour{live}"),
        ("GMV, last hour", f"{hour['gmv']:,.2f}", "sum of purchase prices"),
        ("purchases, last hour", f"{hour['purchases']:,}", ""),
        ("views, last hour", f"{hour['views']:,}", "one per session and product per minute"),
        ("files claimed", f"{accepted:,}", f"last {data.t1_hours} h"),
        ("late files", f"{late:,}", "claimed after a newer minute"),
        ("quarantined", f"{data.quarantined_total:,}", "files with a reason in quarantine/"),
        ("waiting in landing/", f"{data.waiting:,}", "not claimed yet"),
    ]


def _rank_metric(event: str) -> str:
    return "gmv" if event == "purchase" else "view_count"


def top_markdown(top: dict[tuple[str, str], pd.DataFrame], limit: int = 10) -> str:
    """A compact top-N, one column pair per dimension (purchases by GMV, else views)."""
    columns = []
    for (event, dimension), frame in top.items():
        if event == "purchase" or ("purchase", dimension) not in top:
            columns.append((dimension, _rank_metric(event), frame.head(limit).reset_index(drop=True)))
    if not columns or all(f.empty for *_, f in columns):
        return "no rankings yet"
    header = "| # | " + " | ".join(f"{DIMENSION_LABELS.get(d, d)} | {m}" for d, m, _ in columns) + " |"
    lines = [header, "|---:|" + "---|---:|" * len(columns)]
    for i in range(max(len(f) for *_, f in columns)):
        cells = []
        for dimension, metric, frame in columns:
            if i < len(frame):
                value = frame.loc[i, metric]
                cells += [str(frame.loc[i, dimension]).replace("|", "\\|"),
                          f"{value:,.2f}" if metric == "gmv" else f"{int(value):,}"]
            else:
                cells += ["", ""]
        lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- charts


def _iso(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Times as ISO UTC strings: Vega parses them as UTC and the axes say UTC, whatever the viewer's zone."""
    return frame.assign(**{column: frame[column].dt.strftime(ISO_UTC)})


TIME_UNITS = {"minute": "utcyearmonthdatehoursminutes", "hour": "utcyearmonthdatehours"}


def _time_x(column: str, fmt: str, times: pd.Series) -> alt.X:
    """One band per minute or hour, in UTC; a short series gets a tick on each of its times."""
    values = [int(t.timestamp() * 1000) for t in times.drop_duplicates()] if times.nunique() <= 12 else alt.Undefined
    return alt.X(f"{TIME_UNITS[column]}({column}):T", title=f"{column} (UTC)", scale=alt.Scale(type="utc"),
                 axis=alt.Axis(format=fmt, labelOverlap=True, values=values))


def _spacing(rows) -> int:
    """A pixel between bars while they are wide enough; none for a day of minutes or a month of hours."""
    return 1 if len(rows) <= 200 else 0


def series_chart(frame: pd.DataFrame, time_col: str, metric: str, title: str, fmt: str) -> alt.Chart:
    """One bar per minute or hour (a day of minutes is 1,440 thin bars: still exact, still readable)."""
    color = GMV_COLOR if metric == "gmv" else VIEW_COLOR
    number = ",.2f" if metric == "gmv" else ","
    other = alt.Tooltip("purchases:Q", format=",") if metric == "gmv" else alt.Tooltip("views:Q", format=",")
    return alt.Chart(_iso(frame, time_col), title=title).mark_bar(color=color, binSpacing=_spacing(frame)).encode(
        x=_time_x(time_col, fmt, frame[time_col]),
        y=alt.Y(f"{metric}:Q", title=metric),
        tooltip=[alt.Tooltip(f"{time_col}:T", format="%Y-%m-%d %H:%M", formatType="utc", title=time_col),
                 alt.Tooltip(f"{metric}:Q", format=number), other],
    ).properties(width="container", height=180)


def top_chart(frame: pd.DataFrame, event: str, dimension: str, limit: int = 10) -> alt.Chart:
    metric = _rank_metric(event)
    rows = frame.head(limit).assign(key=lambda f: f[dimension].astype(str))[["rank", "key", metric]]
    label = DIMENSION_LABELS.get(dimension, dimension)
    title = f"top {label} by {'GMV' if metric == 'gmv' else 'views'}"
    bars = alt.Chart(rows, title=title).mark_bar(color=GMV_COLOR if metric == "gmv" else VIEW_COLOR,
                                                 cornerRadiusEnd=2).encode(
        x=alt.X(f"{metric}:Q", title=metric),
        y=alt.Y("key:N", title=None, sort=alt.EncodingSortField("rank", order="ascending")),
        tooltip=["rank:Q", alt.Tooltip("key:N", title=dimension),
                 alt.Tooltip(f"{metric}:Q", format=",.2f" if metric == "gmv" else ",")],
    )
    text = bars.mark_text(align="left", dx=3, fontSize=10, color="#334155").encode(
        text=alt.Text(f"{metric}:Q", format=",.0f"))
    return alt.layer(bars, text).properties(width="container", height=max(60, 18 * len(rows)))


def files_chart(files: pd.DataFrame, by: str) -> alt.Chart:
    per_minute = files_per_minute(files, by)
    counts = _iso(per_minute, "minute")
    if by == "arrival":
        color = alt.Color("arrival:N", title=None, scale=alt.Scale(domain=list(STATUS_COLORS),
                                                                    range=list(STATUS_COLORS.values())))
        title = "files per minute by arrival"
    else:
        color = alt.Color("server:N", title=None, scale=alt.Scale(scheme="tableau10"))
        title = "files per minute by server"
    spacing = _spacing(per_minute["minute"].drop_duplicates())
    return alt.Chart(counts, title=title).mark_bar(binSpacing=spacing).encode(
        x=_time_x("minute", "%H:%M", per_minute["minute"]),
        y=alt.Y("sum(files):Q", title="files", stack="zero"),
        color=color,
        tooltip=[alt.Tooltip("minute:T", format="%Y-%m-%d %H:%M", formatType="utc"), f"{by}:N", "files:Q"],
    ).properties(width="container", height=180)


def _styled(chart: alt.TopLevelMixin) -> dict:
    chart = chart.configure(font="system-ui, -apple-system, Segoe UI, sans-serif", background="transparent")
    chart = chart.configure_view(stroke=None).configure_axis(
        labelColor="#475569", titleColor="#475569", gridColor="#e2e8f0", domainColor="#cbd5e1", tickColor="#cbd5e1",
    ).configure_title(anchor="start", fontSize=13, fontWeight=600, color="#0f172a")
    return chart.to_dict()


def chart_specs(data: DashboardData) -> list[tuple[str, str, dict | None]]:
    """(section, element id, Vega-Lite spec or None when there is nothing to draw yet), in page order."""
    out = []
    with alt.data_transformers.disable_max_rows():
        for time_col, frame, fmt, section in (
            ("minute", data.minutes, "%H:%M", f"per minute, last {data.t1_hours} h (t1)"),
            ("hour", data.hours, "%b %d %H:%M", f"per hour, last {data.t2_days} days (t2)"),
        ):
            for metric, what in (("gmv", "GMV"), ("views", "views")):
                spec = None if frame.empty else _styled(
                    series_chart(frame, time_col, metric, f"{what} per {time_col}", fmt))
                out.append((section, f"{time_col}-{metric}", spec))
        for (event, dimension), frame in data.top.items():
            spec = None if frame.empty else _styled(top_chart(frame, event, dimension))
            out.append(("top of the last hour", f"top-{event}-{dimension}", spec))
        for by in ("server", "arrival"):
            spec = None if data.files.empty else _styled(files_chart(data.files, by))
            out.append(("platform health", f"files-{by}", spec))
    return out


# --------------------------------------------------------------------------- page


@functools.cache
def vega_bundle() -> str:
    """vega + vega-lite + vega-embed, one script, from the vl-convert-python wheel (~0.9 MB).

    Building it takes 1-3 s and depends only on installed versions, so it is built once per
    machine and kept in the user's cache folder (``$XDG_CACHE_HOME/clickflow``, else
    ``~/.cache/clickflow``); a cache that cannot be written is simply not used.
    """
    version = "v" + ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])  # the Vega-Lite altair writes
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "clickflow"
    cached = cache_root / f"vega-bundle-{importlib.metadata.version('vl-convert-python')}-{version}.js"
    try:
        return cached.read_text(encoding="utf-8")
    except OSError:
        pass
    import vl_convert

    bundle = vl_convert.javascript_bundle(vl_version=version)
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        partial.write_text(bundle, encoding="utf-8")
        os.replace(partial, cached)  # whole or absent, even with parallel builders
    except OSError:
        pass
    return bundle


def _script_json(value) -> str:
    """JSON safe inside <script>: with every ``<`` escaped, no data (a brand name) can end the element."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_ENV.filters["script_json"] = lambda value: Markup(_script_json(value))
PAGE = _ENV.from_string("""\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Clickflow · events dashboard</title>
<style>
  :root { color-scheme: light; }
  body { margin: 0; background: #f1f5f9; color: #0f172a;
         font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
  header { background: #0f172a; color: #e2e8f0; padding: 18px 28px;
           display: flex; align-items: baseline; gap: 18px; flex-wrap: wrap; }
  header h1 { margin: 0; font-size: 20px; color: #fff; font-weight: 650; }
  header .meta { font-size: 13px; color: #94a3b8; }
  main { padding: 18px 28px 40px; max-width: 1500px; margin: 0 auto; }
  .kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; margin-bottom: 8px; }
  .kpi { background: #fff; border-radius: 10px; padding: 12px 14px; box-shadow: 0 1px 2px rgba(15,23,42,.08); }
  .kpi .label { font-size: 12px; color: #64748b; text-transform: uppercase; letter-spacing: .03em; }
  .kpi .value { font-size: 24px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
  .kpi .hint { font-size: 11px; color: #94a3b8; }
  h2 { font-size: 15px; margin: 26px 0 10px; color: #334155; text-transform: uppercase; letter-spacing: .04em; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 14px; }
  .grid.three { grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); }
  .card { background: #fff; border-radius: 10px; padding: 12px 14px; min-width: 0;
          box-shadow: 0 1px 2px rgba(15,23,42,.08); }
  .chart { width: 100%; }
  .empty { color: #94a3b8; padding: 30px 0; text-align: center; }
  table { border-collapse: collapse; width: 100%; font-size: 13px; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e2e8f0; vertical-align: top; }
  th { color: #64748b; font-weight: 600; }
  td.when { white-space: nowrap; color: #64748b; font-variant-numeric: tabular-nums; }
  footer { color: #94a3b8; font-size: 12px; margin-top: 28px; }
</style>
<script>
{{ bundle }}
</script>
</head>
<body>
<header>
  <h1>Clickflow · events</h1>
  <span class="meta">newest minute {{ newest }} · generated {{ generated }} · all times UTC</span>
</header>
<main>
<section class="kpis" id="kpis">
{% for label, value, hint in kpis %}
  <div class="kpi"><div class="label">{{ label }}</div><div class="value">{{ value }}</div>
    <div class="hint">{{ hint }}</div></div>
{% endfor %}
</section>
{% for section, charts in sections %}
<h2>{{ section }}</h2>
<div class="grid{% if charts|length == 3 %} three{% endif %}">
{% for chart_id, spec in charts %}
  <div class="card">
  {% if spec %}
    <div class="chart" id="{{ chart_id }}" data-chart="{{ chart_id }}"></div>
  {% else %}
    <div class="empty">no data yet</div>
  {% endif %}
  </div>
{% endfor %}
</div>
{% endfor %}
<h2>quarantine ({{ quarantined_total }} file{{ "s" if quarantined_total != 1 }})</h2>
<div class="card">
{% if quarantine %}
<table id="quarantine"><thead><tr><th>when</th><th>file</th><th>reason</th></tr></thead><tbody>
{% for when, file, reason in quarantine %}
<tr><td class="when">{{ when }}</td><td>{{ file }}</td><td>{{ reason }}</td></tr>
{% endfor %}
</tbody></table>
{% else %}<div class="empty">nothing quarantined</div>{% endif %}
</div>
<footer>Built by the <code>dashboard</code> asset of the events group after each rankings refresh.</footer>
</main>
<script>
const specs = {{ specs|script_json }};
for (const [id, spec] of Object.entries(specs)) {
  vegaEmbed("#" + id, spec, {{ embed_options|script_json }}).catch((error) => {
    document.getElementById(id).textContent = "chart failed: " + error;
  });
}
</script>
</body>
</html>
""")


def render_page(data: DashboardData, bundle: str, quarantine_rows: int = 50) -> str:
    """The whole page; ``bundle`` is :func:`vega_bundle` (tests may pass a stub)."""
    sections: dict[str, list[tuple[str, dict | None]]] = {}
    specs = {}
    for section, chart_id, spec in chart_specs(data):
        sections.setdefault(section, []).append((chart_id, spec))
        if spec is not None:
            specs[chart_id] = spec
    quarantine = [(f"{r.when:%Y-%m-%d %H:%M:%S}" if pd.notna(r.when) else "", r.file, r.reason)
                  for r in data.quarantine.head(quarantine_rows).itertuples(index=False)]
    return PAGE.render(
        bundle=Markup(bundle.replace("</script", "<\\/script")),
        newest=f"{data.newest_minute:%Y-%m-%d %H:%M}" if data.newest_minute is not None else "none yet",
        generated=f"{data.generated_at:%Y-%m-%d %H:%M:%S}",
        kpis=kpis(data),
        sections=list(sections.items()),
        quarantine=quarantine,
        quarantined_total=data.quarantined_total,
        specs=specs,
        embed_options=EMBED_OPTIONS,
    )
