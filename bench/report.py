"""results.md and results.png from one run's numbers, with the issue's targets checked.

Every comparison is a ratio between figures of the same run; absolute seconds are shown for
reading, not for comparing runs.
"""

from __future__ import annotations

import pstats
import statistics
from pathlib import Path

# The targets for `clickflow process` (pandas engine, as a command) against the DuckDB floor.
TARGET_FLOOR_RATIO = 2.0  # wall time / floor wall time, at most, at TARGET_EVENTS
TARGET_EVENTS = 2_000_000
TARGET_LARGE_FLOOR_RATIO = 1.3  # the same at TARGET_LARGE_EVENTS
TARGET_LARGE_EVENTS = 20_000_000
TARGET_PEAK_BYTES = 2 * 2**30  # peak memory of the command's process tree at TARGET_LARGE_EVENTS
TARGET_SEED_SPEEDUP = 10.0  # seed micro-batch wall time / pandas backfill wall time, at least
TARGET_LIVE_P95_S = 30.0
MIB = 2**20


# --------------------------------------------------------------------------- derived figures


# Self time is put in the first bucket whose marker the function's file or name contains.
_BUCKETS = (
    ("Dagster's instance storage (psycopg2, SQLAlchemy)", ("psycopg2", "sqlalchemy", "dagster_postgres")),
    ("warehouse I/O (psycopg 3)", ("psycopg/", "psycopg_binary", "psycopg.")),
    ("dashboard rendering (vl-convert, Altair, Pygments)", ("vl_convert", "altair", "pygments", "vega")),
    ("imports and code loading", ("marshal", "builtins.compile", "importlib", "<frozen", "_imp.", "re/_")),
    ("file I/O", ("posix.", "_io.", "io.open")),
    ("pandas, pyarrow, numpy", ("pandas/", "pyarrow", "numpy")),
    ("Dagster framework", ("dagster/", "dagster_shared", "pydantic")),
    ("the project's code", ("/pipeline/",)),
)
_WRAPPERS = ("pipeline/batch.py",)  # process() and its helpers: their cumulative time is everything


_ROOT = str(Path(__file__).resolve().parents[1]) + "/"


def _short(key) -> str:
    """``pipeline/events/assets.py:82(t1_minute)``: paths from the checkout or site-packages."""
    filename, line, name = key
    return f"{filename.split('site-packages/')[-1].removeprefix(_ROOT)}:{line}({name})"


def profile_summary(path: Path, top: int = 12) -> dict:
    """Self time by kind of work, the top self-time functions, and the project's own functions
    by cumulative time (the batch wrappers left out)."""
    stats = pstats.Stats(str(path)).stats
    total = sum(value[2] for value in stats.values())

    def row(key, value):
        return {"function": _short(key), "calls": value[1], "self_s": value[2], "cum_s": value[3]}

    buckets: dict[str, float] = {}
    for key, value in stats.items():
        where = f"{key[0]} {key[2]}"
        bucket = next((label for label, markers in _BUCKETS if any(m in where for m in markers)), "other")
        buckets[bucket] = buckets.get(bucket, 0.0) + value[2]
    by_self = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    ours = [
        kv for kv in stats.items() if "/pipeline/" in kv[0][0] and not any(w in kv[0][0] for w in _WRAPPERS)
    ]
    by_cum = sorted(ours, key=lambda kv: kv[1][3], reverse=True)[:top]
    return {
        "total_s": total,
        "buckets": dict(sorted(buckets.items(), key=lambda kv: -kv[1])),
        "self": [row(*kv) for kv in by_self],
        "pipeline": [row(*kv) for kv in by_cum],
    }


def seed_figures(seed: dict, minutes: int) -> dict | None:
    """Per-minute cost of the seed baseline and its extrapolation to every minute.

    The first micro-batch pays the JVM's warm-up, so the per-minute cost is the median of the
    others (of the only one when a single minute ran); the extrapolation is start-up + first
    minute + that cost for each remaining minute.
    """
    result = seed.get("result") or {}
    measured = result.get("per_minute_s") or []
    if seed.get("error") or not measured:
        return None
    per_minute = statistics.median(measured[1:] or measured)
    return {
        "startup_s": result["startup_s"],
        "first_s": measured[0],
        "per_minute_s": per_minute,
        "measured_minutes": len(measured),
        "measured_s": result["wall_s"],
        "extrapolated_s": result["startup_s"] + measured[0] + per_minute * (minutes - 1),
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _floor_target(rows: list[dict], limit: float, target_events: int) -> dict:
    floor, pandas = rows[0], rows[1]
    ratio = _ratio(pandas["wall_s"], floor["wall_s"])
    at_size = pandas["events"] == target_events
    measured = f"{ratio:.2f}x" if ratio else "n/a"
    if ratio and not at_size:
        measured += f" at {pandas['events']:,} events"
    return {
        "target": f"`clickflow process` (pandas) within {limit:g}x of the DuckDB floor's wall time at "
        f"{target_events:,} events",
        "measured": measured,
        "met": None if ratio is None or not at_size else ratio <= limit,
        "by": f"{ratio / limit:.2f}x over" if ratio and ratio > limit else "",
    }


def targets(results: dict) -> list[dict]:
    rows = []
    backfill, large = results.get("backfill"), results.get("large")
    if backfill:
        rows.append(_floor_target(backfill["rows"], TARGET_FLOOR_RATIO, TARGET_EVENTS))
    if large:
        rows.append(_floor_target(large["rows"], TARGET_LARGE_FLOOR_RATIO, TARGET_LARGE_EVENTS))
        pandas = large["rows"][1]
        peak, at_size = pandas["peak_bytes"], pandas["events"] == TARGET_LARGE_EVENTS
        known = bool(pandas["wall_s"])
        rows.append(
            {
                "target": f"peak memory of `clickflow process` under {TARGET_PEAK_BYTES / 2**30:g} GiB at "
                f"{TARGET_LARGE_EVENTS:,} events",
                "measured": f"{peak / MIB:,.0f} MiB" + ("" if at_size else f" at {pandas['events']:,} events")
                if known
                else "n/a",
                "met": peak < TARGET_PEAK_BYTES if known and at_size else None,
                "by": f"{peak / TARGET_PEAK_BYTES:.2f}x over" if known and peak >= TARGET_PEAK_BYTES else "",
            }
        )
    if backfill:
        pandas = backfill["rows"][1]
        seed = seed_figures(backfill["seed"], backfill["minutes"])
        speedup = _ratio(seed and seed["extrapolated_s"], pandas["wall_s"])
        rows.append(
            {
                "target": f"`clickflow process` at least {TARGET_SEED_SPEEDUP:g}x faster than the seed "
                "micro-batch (extrapolated to all minutes)",
                "measured": f"{speedup:.1f}x" if speedup else "n/a",
                "met": None if speedup is None else speedup >= TARGET_SEED_SPEEDUP,
                "by": f"{TARGET_SEED_SPEEDUP / speedup:.2f}x short"
                if speedup and speedup < TARGET_SEED_SPEEDUP
                else "",
            }
        )
    live = results.get("live")
    if live:
        p95 = live.get("p95_s")
        met = None if p95 is None else p95 < TARGET_LIVE_P95_S and not live["missing"] and not live["error"]
        rows.append(
            {
                "target": f"live landing-to-t1 p95 under {TARGET_LIVE_P95_S:g} s",
                "measured": f"{p95:.1f} s" if p95 is not None else "n/a",
                "met": met,
                "by": f"{p95 - TARGET_LIVE_P95_S:.1f} s over" if p95 and p95 >= TARGET_LIVE_P95_S else "",
            }
        )
    if results.get("surge"):
        from bench.surge import targets as surge_targets

        rows += surge_targets(results["surge"])
    if results.get("cluster"):
        rows += cluster_targets(results["cluster"]["rows"])
    return rows


def cluster_targets(rows: list[dict]) -> list[dict]:
    """Issue 17's: the Spark driver's peak (its Python) flat from the smallest to the largest size
    (within 25 %) at every worker count, and under 1 GiB everywhere."""
    peaks = {(r["events"], r["workers"]): r.get("driver_peak_bytes") for r in rows}
    sizes = sorted({size for size, _ in peaks})
    ratios = [peaks[sizes[-1], w] / peaks[sizes[0], w] for w in sorted({w for _, w in peaks})
              if peaks.get((sizes[0], w)) and peaks.get((sizes[-1], w))]
    worst = max(ratios) if len(sizes) > 1 and ratios else None
    top = max(filter(None, peaks.values()), default=None)
    return [
        {"target": f"Spark driver peak flat from {sizes[0]:,} to {sizes[-1]:,} events (within 25 %)",
         "measured": f"{worst:.2f}x" if worst else "n/a", "met": None if worst is None else worst <= 1.25,
         "by": f"{worst / 1.25:.2f}x over" if worst and worst > 1.25 else ""},
        {"target": "Spark driver peak under 1 GiB", "measured": f"{top / MIB:,.0f} MiB" if top else "n/a",
         "met": None if top is None else top < 2**30, "by": f"{top / 2**30:.2f}x over" if top and top >= 2**30 else ""},
    ]


# --------------------------------------------------------------------------- markdown


def _num(value, fmt: str = "{:,.1f}") -> str:
    return fmt.format(value) if value is not None else "n/a"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _backfill_md(backfill: dict) -> list[str]:
    floor_s = backfill["rows"][0]["wall_s"]
    rows = []
    for m in backfill["rows"]:
        if m["error"]:
            rows.append([m["label"], f"{m['events']:,}", "n/a", "n/a", "n/a", "n/a", m["error"]])
            continue
        parity = "reference" if m["same_totals"] is None else ("yes" if m["same_totals"] else "**NO**")
        rows.append(
            [
                m["label"],
                f"{m['events']:,}",
                _num(m["wall_s"]),
                f"{m['events'] / m['wall_s']:,.0f}",
                f"{m['peak_bytes'] / MIB:,.0f}",
                _num(_ratio(m["wall_s"], floor_s), "{:.2f}x"),
                parity + (f"; {m['note']}" if m.get("note") else ""),
            ]
        )
    seed, minutes = backfill["seed"], backfill["minutes"]
    figures = seed_figures(seed, minutes)
    if figures:
        events = backfill["events"] * figures["measured_minutes"] // minutes
        same = {None: "n/a", True: "yes", False: "**NO**"}[seed["same_totals"]]
        rows.append(
            [
                f"seed micro-batch, measured ({figures['measured_minutes']} of {minutes} minutes)",
                f"{events:,}",
                _num(figures["measured_s"]),
                f"{events / figures['measured_s']:,.0f}",
                f"{seed['peak_bytes'] / MIB:,.0f}",
                "-",
                same + " (on those minutes)",
            ]
        )
        rows.append(
            [
                f"seed micro-batch, **extrapolated** to {minutes} minutes",
                f"{backfill['events']:,}",
                _num(figures["extrapolated_s"]),
                f"{backfill['events'] / figures['extrapolated_s']:,.0f}",
                "-",
                _num(_ratio(figures["extrapolated_s"], floor_s), "{:.2f}x"),
                "-",
            ]
        )
    else:
        rows.append(
            ["seed micro-batch", "-", "n/a", "n/a", "n/a", "n/a", seed.get("error") or "no minute ran"]
        )
    lines = _table(
        [
            "run",
            "events",
            "wall time (s)",
            "events/s",
            "peak memory (MiB)",
            "x DuckDB floor wall",
            "same t1 totals as the floor",
        ],
        rows,
    )
    if figures:
        lines += [
            "",
            f"Seed baseline: Spark session start-up {figures['startup_s']:.1f} s, first minute "
            f"{figures['first_s']:.1f} s (JVM warm-up), then a median of {figures['per_minute_s']:.1f} s per "
            f"minute over {figures['measured_minutes'] - 1 or 1} minute(s). The extrapolation is start-up + "
            f"first minute + {minutes - 1} x the median: an **estimate**, not a measurement.",
        ]
    return lines


def _scaling_md(points: list[dict]) -> list[str]:
    good = sorted((p for p in points if not p.get("error")), key=lambda p: p["events"])
    rows = []
    base = good[0] if good else None
    for p in sorted(points, key=lambda p: p["events"]):
        if p.get("error"):
            rows.append([f"{p['events']:,}", "n/a", "n/a", "n/a", "n/a", p["error"]])
            continue
        linear = base["wall_s"] * p["events"] / base["events"]
        rows.append(
            [
                f"{p['events']:,}",
                _num(p["wall_s"]),
                f"{p['events'] / p['wall_s']:,.0f}",
                f"{p['wall_s'] / p['events'] * 1e6:.1f}",
                f"{p['wall_s'] / linear:.2f}",
                f"{p['peak_bytes'] / MIB:,.0f}",
            ]
        )
    lines = _table(
        [
            "events",
            "wall time (s)",
            "events/s",
            "us per event",
            "x linear from the smallest",
            "peak memory (MiB)",
        ],
        rows,
    )
    if len(good) >= 2:
        growth = (good[-1]["wall_s"] / good[0]["wall_s"]) / (good[-1]["events"] / good[0]["events"])
        verdict = (
            "about linear"
            if 0.75 <= growth <= 1.25
            else "sub-linear (fixed costs dominate the small runs)"
            if growth < 0.75
            else "super-linear"
        )
        lines += [
            "",
            f"From {good[0]['events']:,} to {good[-1]['events']:,} events the wall time grows "
            f"{good[-1]['wall_s'] / good[0]['wall_s']:.2f}x for "
            f"{good[-1]['events'] / good[0]['events']:.0f}x "
            f"the events: {verdict}.",
        ]
        fixed, per_million = linear_fit(good, "wall_s")
        lines[-1] += (
            f" A least-squares line gives {fixed:.1f} s fixed + {per_million:.1f} s per million events "
            "(the fixed part: start-up, Dagster runs, rankings, dashboard)."
        )
        base_mib, mib_per_million = linear_fit(good, "peak_bytes")
        peaks = [p["peak_bytes"] / MIB for p in good]
        growth = (
            f"Peak memory grows by about {mib_per_million / MIB:,.0f} MiB per million events "
            f"(from {base_mib / MIB:,.0f} MiB)"
            if mib_per_million / MIB >= 1
            else f"Peak memory does not grow with the events ({min(peaks):,.0f}-{max(peaks):,.0f} MiB)"
        )
        lines += [
            "",
            f"{growth}; t1 computes a backfill in chunks of whole minutes of at most "
            "`minutes.CHUNK_ROWS` rows.",
        ]
    return lines


def linear_fit(points: list[dict], field: str) -> tuple[float, float]:
    """Intercept and slope per million events of ``field`` over the points (least squares)."""
    import numpy as np

    xs = np.array([p["events"] / 1e6 for p in points])
    ys = np.array([float(p[field]) for p in points])
    slope, intercept = np.polyfit(xs, ys, 1)
    return float(intercept), float(slope)


def _live_md(live: dict, sensor_interval: int) -> list[str]:
    lines = [
        f"Daemon: `dagster-daemon run -w workspace.yaml` on a temporary instance (dagster-postgres), "
        f"`PIPELINE_SENSOR_INTERVAL_SECONDS={sensor_interval}`; one minute of files "
        f"({live['events_per_minute']:,} events, 4 server files) landed every {live['interval_s']:g} s; "
        "latency = from the minute's last file landing until t1 holds all of its purchases "
        "(polled every 0.25 s)."
    ]
    if live.get("error"):
        return lines + ["", f"**Error:** {live['error']}"]
    lines += [""] + _table(
        ["minutes measured", "p50 (s)", "p95 (s)", "max (s)", "not visible in time", "warm-up minute (s)"],
        [
            [
                str(len(live["latencies"])),
                _num(live["p50_s"]),
                _num(live["p95_s"]),
                _num(live["max_s"]),
                str(len(live["missing"])),
                _num(live["warmup_s"]),
            ]
        ],
    )
    if live.get("ingest_runs"):
        shortest = (
            f", {live['run_wait_min_s']:.1f} s at the shortest (launch without a queue)"
            if live.get("run_wait_min_s") is not None
            else ""
        )
        lines += [
            "",
            f"{live['ingest_runs']} ingest runs for {len(live['latencies']) + 1} minutes; from run creation "
            f"to start a median of {_num(live['run_wait_s'])} s{shortest}: runs of one hour queue behind "
            "each other (one at a time per hour), then each starts a process that loads the code location. "
            "A run claims every file landed by then, so a queued run often finds its files already "
            f"in t1 and latency stays below that wait. Median execution {_num(live['run_exec_s'])} s. "
            f"The sensor interval adds up to {sensor_interval} s before a landed file is seen.",
        ]
    return lines


def _profile_md(profile: dict) -> list[str]:
    lines = [
        f"cProfile of the pandas backfill run in process (`pipeline.batch.process` in the profiled "
        f"process, so without the command's start-up; a separate run: profiling slows it down; "
        f"{profile['total_s']:.1f} s of self time profiled).",
        "",
        "Self time by kind of work:",
        "",
    ]
    lines += _table(
        ["kind", "self (s)", "share"],
        [
            [kind, f"{seconds:.1f}", f"{seconds / profile['total_s']:.0%}"]
            for kind, seconds in profile["buckets"].items()
        ],
    )
    lines += ["", "Top self time:", ""]
    lines += _table(
        ["function", "calls", "self (s)", "cumulative (s)"],
        [
            [f"`{r['function']}`", f"{r['calls']:,}", f"{r['self_s']:.2f}", f"{r['cum_s']:.2f}"]
            for r in profile["self"]
        ],
    )
    lines += ["", "The project's functions by cumulative time:", ""]
    lines += _table(
        ["function", "calls", "cumulative (s)"],
        [[f"`{r['function']}`", f"{r['calls']:,}", f"{r['cum_s']:.2f}"] for r in profile["pipeline"]],
    )
    return lines


STEPS = ("claim", "t1", "t2", "rankings", "freshness", "dashboard", "retention")


def time_split(row: dict) -> dict | None:
    """Where a command's wall time went, from the runs and steps its Dagster instance recorded:
    before the first run (interpreter start-up, imports, definitions, instance, the first sensor
    tick), the runs (their steps, and the run machinery around them), between runs (sensor ticks,
    run-key look-ups) and after the last run (exit)."""
    result = row.get("result") or {}
    runs = result.get("runs")
    if row.get("error") or not runs or not isinstance(runs[0], dict):
        return None
    first, last = min(r["start_s"] for r in runs), max(r["end_s"] for r in runs)
    in_runs = sum(r["end_s"] - r["start_s"] for r in runs)
    steps = dict(result.get("steps") or {})
    in_steps = sum(steps.values())
    return {
        "wall_s": row["wall_s"],
        "before_first_run_s": first,
        "first_to_last_run_s": last - first,
        "runs_s": in_runs,
        "steps_s": in_steps,
        "run_machinery_s": in_runs - in_steps,
        "between_runs_s": (last - first) - in_runs,
        "after_last_run_s": row["wall_s"] - last,
        "steps": {name: steps.pop(name, 0.0) for name in STEPS} | steps,
        "runs": len(runs),
    }


def _split_md(rows: list[dict]) -> list[str]:
    """One column per measured command: its wall time taken apart."""
    splits = [(m, time_split(m)) for m in rows]
    splits = [(m, split) for m, split in splits if split]
    if not splits:
        return []
    names = list(dict.fromkeys(name for _, split in splits for name in split["steps"]))
    header = ["", *[f"{m['label']}, {m['events']:,} events (s)" for m, _ in splits]]

    def line(label: str, key: str) -> list[str]:
        return [label, *[_num(split[key]) for _, split in splits]]

    table = [
        line("**wall time of the command**", "wall_s"),
        line("before the first run: start-up (interpreter, imports, definitions, instance), "
             "first sensor tick", "before_first_run_s"),
        line("**in process**: first run start to last run end", "first_to_last_run_s"),
        line("&nbsp;&nbsp;steps (below)", "steps_s"),
        line("&nbsp;&nbsp;run machinery around the steps (run start/end, event log, step launch)",
             "run_machinery_s"),
        line("&nbsp;&nbsp;between runs (sensor ticks, run-key look-ups)", "between_runs_s"),
        line("after the last run (exit)", "after_last_run_s"),
    ]
    table += [
        [f"step: {name}" + (" (`events/raw_files`)" if name == "claim" else ""),
         *[_num(split["steps"].get(name)) for _, split in splits]]
        for name in names
    ]
    table.append(["runs", *[str(split["runs"]) for _, split in splits]])
    return [
        "",
        "Where the command's wall time goes, from the runs and steps its Dagster instance recorded "
        "(`get_run_records`, `STEP_START` / `STEP_SUCCESS` events of each run, read after the command "
        "ended); a step's time includes its asset checks:",
        "",
    ] + _table(header, table)


def _misses_md(results: dict, checks: list[dict]) -> list[str]:
    lines = []
    for check in checks:
        if check["met"] is not False:
            continue
        why = ""
        if "DuckDB floor" in check["target"]:
            large = f"{TARGET_LARGE_EVENTS:,}" in check["target"]
            section = results["large"] if large else results["backfill"]
            split = time_split(section["rows"][1])
            floor_s = section["rows"][0]["wall_s"]
            if split and floor_s:
                parts = {"start-up and first tick": split["before_first_run_s"],
                         "run machinery": split["run_machinery_s"], "between runs": split["between_runs_s"],
                         **{f"step {k}": v for k, v in split["steps"].items()}}
                top = sorted(parts.items(), key=lambda kv: -kv[1])[:4]
                why = " Largest parts of the command's wall time: " + ", ".join(
                    f"{name} {seconds:.1f} s ({seconds / floor_s:.2f}x the floor)" for name, seconds in top
                ) + "."
            if section is results.get("backfill") and section.get("profile"):
                profile = section["profile"]
                kinds = [(k, v) for k, v in profile["buckets"].items() if k != "other"][:3]
                why += (
                    " Profile (in process): "
                    + ", ".join(f"{k} {v / profile['total_s']:.0%}" for k, v in kinds)
                    + " of self time; the project's costliest functions "
                    + ", ".join(f"`{r['function']}` ({r['cum_s']:.1f} s)" for r in profile["pipeline"][:3])
                    + "."
                )
        elif "memory" in check["target"]:
            why = " See the scaling table for how the peak grows with the events."
        elif "live" in check["target"] and results.get("live", {}).get("run_wait_s") is not None:
            live = results["live"]
            why = (
                f" Each live minute waits for a sensor tick (up to {results['sensor_interval_s']} "
                "s), then a run "
                f"whose start costs {live['run_wait_s']:.1f} s (median) before "
                f"{live['run_exec_s']:.1f} s of work;"
                " runs of the same hour are serialised, so a queue forms when minutes land faster "
                "than runs end."
            )
        elif "seed" in check["target"]:
            seed = seed_figures(results["backfill"]["seed"], results["backfill"]["minutes"])
            if seed:
                why = (
                    f" The seed's micro-batches cost {seed['per_minute_s']:.1f} s per minute once warm "
                    f"({seed['first_s']:.1f} s for the first, {seed['startup_s']:.1f} s of Spark start-up);"
                    " the command's fixed costs (see Scaling) weigh the more, the fewer the minutes."
                )
        lines.append(
            f"- {check['target']}: {check['measured']}" + (f", {check['by']}." if check["by"] else ".") + why
        )
    return lines


def _large_md(large: dict) -> list[str]:
    floor_s = large["rows"][0]["wall_s"]
    rows = []
    for m in large["rows"]:
        if m["error"]:
            rows.append([m["label"], "n/a", "n/a", "n/a", "n/a", m["error"]])
            continue
        parity = "reference" if m["same_totals"] is None else ("yes" if m["same_totals"] else "**NO**")
        rows.append([
            m["label"],
            _num(m["wall_s"]),
            f"{m['events'] / m['wall_s']:,.0f}",
            f"{m['peak_bytes'] / MIB:,.0f}",
            _num(_ratio(m["wall_s"], floor_s), "{:.2f}x"),
            parity + (f"; {m['note']}" if m.get("note") else ""),
        ])
    generated = large.get("data_s")
    lines = [
        f"{large['events']:,} events over {large['minutes']} minutes"
        + (f" (generated in {generated:.0f} s when not cached)" if generated and generated > 5 else "")
        + ": the DuckDB floor and `clickflow process` (pandas) only.",
        "",
    ]
    lines += _table(
        ["run", "wall time (s)", "events/s", "peak memory (MiB)", "x DuckDB floor wall",
         "same t1 totals as the floor"],
        rows,
    )
    return lines + _split_md(large["rows"][1:2])


def _cluster_md(cluster: dict) -> list[str]:
    """The Spark standalone cluster backfills: per size and worker count, and the derived figures."""
    rows = cluster["rows"]
    lines = [
        "`clickflow process` as a command with `PIPELINE_ENGINE=spark` on a local standalone cluster "
        "(`pipeline_tests/spark_cluster.py`: a master and workers of one core and 1 GiB, separate JVMs "
        "started from the pyspark package): executors stage the files, compute the minute sums and write "
        "the archives; the driver gets reports and aggregates. Driver peak is the `clickflow` process "
        "alone (its Python; not its JVM, not the executors); with its JVM in brackets. The driver, "
        "PostgreSQL and the workers share this machine's cores.",
        "",
    ]
    table = []
    for r in rows:
        rate = r["events"] / r["wall_s"] if r.get("wall_s") else None
        table.append([
            f"{r['events']:,}", str(r["workers"]), _num(r.get("wall_s")),
            _num(rate, "{:,.0f}"), _num(rate and rate / r["workers"], "{:,.0f}"),
            (f"{r['driver_peak_bytes'] / 2**20:,.0f} MiB ({r['peak_bytes'] / 2**20:,.0f})"
             if r.get("driver_peak_bytes") else "-"),
            {True: "yes", False: "**no**", None: "-"}[r.get("same_totals")] + (f" ({r['error']})" if r.get("error") else ""),
        ])
    lines += _table(["events", "workers", "wall s", "events/s", "events/s per worker",
                     "driver peak (with JVM)", "t1 totals = DuckDB"], table)
    by = {(r["events"], r["workers"]): r for r in rows}
    sizes = sorted({r["events"] for r in rows})
    notes = []
    for size in sizes:
        one, two = by.get((size, 1)), by.get((size, 2))
        if one and two and one.get("wall_s") and two.get("wall_s"):
            notes.append(f"- {size:,} events: speed-up from 1 to 2 workers {one['wall_s'] / two['wall_s']:.2f}x")
    for workers in sorted({r["workers"] for r in rows}):
        peaks = [by[s, workers].get("driver_peak_bytes") for s in sizes if (s, workers) in by]
        if len(peaks) >= 2 and all(peaks):
            notes.append(f"- {workers} worker(s): driver peak at {sizes[-1]:,} events / at {sizes[0]:,}: "
                         f"{peaks[-1] / peaks[0]:.2f} (flat within 25 % is the target)")
    return lines + ([""] + notes if notes else [])


def write_markdown(results: dict, path: Path) -> None:
    backfill, large = results.get("backfill"), results.get("large")
    checks = targets(results)
    kind = "quick check (`--quick`)" if results.get("quick") else "full run"
    shape = results.get("shape", "realistic")
    lines = [
        "# Benchmark results",
        "",
        f"{kind}, {results['when']}, {results['cores']} cores, `{results['command']}` "
        f"({results['elapsed_s'] / 60:.1f} min). Figures are **ratios within this run**: the "
        "machine is shared, "
        "so absolute seconds are not comparable between runs. Peak memory is the summed RSS of the measured "
        "process and all its children (the JVM included), sampled every 0.2 s; the PostgreSQL server is "
        "shared by all runs and not counted.",
        "",
    ]
    if backfill:
        described = (
            "in its realistic shape (the public data set's October 2019 month: 200,000 products, "
            "~3,400 brands, sessions of ~4.6 events; `bench/README.md`)"
            if shape == "realistic"
            else "in its simple shape (`--simple`: 5,000 products, long sessions)"
        )
        lines += [
            f"Data: the project's generator {described}, {backfill['events']:,} events over "
            f"{backfill['minutes']} minutes "
            f"(4 server files per minute), landed at once for the backfill.",
            "",
        ]
    lines += ["## Targets", ""]
    lines += _table(
        ["target", "measured", "met"],
        [
            [c["target"], c["measured"], {True: "yes", False: "**no**", None: "not measured"}[c["met"]]]
            for c in checks
        ],
    )
    misses = _misses_md(results, checks)
    if misses:
        lines += ["", "Missed:", ""] + misses
    if backfill:
        lines += [
            "",
            "## Backfill throughput",
            "",
            "`clickflow process` run as a command, as a user runs it (`.venv/bin/clickflow process`: "
            "start-up included; the landing sensor and every run it requests on a dagster-postgres "
            "instance: claim, stage, t1, t2, checks, rankings, dashboard, retention), against the DuckDB "
            "floor "
            "(read every file at once, same cleaning, dedupe and aggregation in SQL, COPY into t1-shaped "
            "tables) and the seed's per-minute Spark micro-batch with a merge into t1. The Spark engine is "
            "the same command with `PIPELINE_ENGINE=spark`. Every run starts on an "
            "empty lake, database and Dagster instance; what persists between runs is this machine's "
            "cache of "
            "the dashboard's Vega bundle (built once per installed vl-convert, 1-3 s) and the files in the "
            "operating system's page cache.",
            "",
        ]
        lines += _backfill_md(backfill)
        lines += _split_md([m for m in backfill["rows"][1:]])
    if large:
        lines += ["", f"## Backfill at {large['events']:,} events", ""] + _large_md(large)
    if results.get("scaling"):
        lines += ["", "## Scaling of `clickflow process` (pandas)", ""] + _scaling_md(results["scaling"])
    if results.get("cluster"):
        lines += ["", "## Spark on a standalone cluster", ""] + _cluster_md(results["cluster"])
    if results.get("live"):
        lines += ["", "## Live latency", ""] + _live_md(results["live"], results["sensor_interval_s"])
    if results.get("surge"):
        from bench.surge import markdown as surge_markdown

        lines += ["", "## Surge: a backlog landed at once while live minutes arrive", ""]
        lines += surge_markdown(results["surge"])
    if backfill and backfill.get("profile"):
        lines += ["", "## Where the backfill's time goes (cProfile)", ""] + _profile_md(backfill["profile"])
    lines += ["", "Chart: [results.png](results.png).", ""]
    path.write_text("\n".join(lines))


# --------------------------------------------------------------------------- chart


def write_chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    backfill, scaling, live = results.get("backfill"), results.get("scaling"), results.get("live")

    ax = axes[0]
    large = results.get("large")
    if backfill and backfill["rows"][0]["wall_s"]:
        floor_s = backfill["rows"][0]["wall_s"]
        size = f"\n{backfill['events'] / 1e6:g}M"
        bars = [(m["label"] + size, m["wall_s"] / floor_s, False) for m in backfill["rows"] if m["wall_s"]]
        figures = seed_figures(backfill["seed"], backfill["minutes"])
        if figures:
            bars.append(("seed micro-batch\n(extrapolated)", figures["extrapolated_s"] / floor_s, True))
        if large and large["rows"][0]["wall_s"] and large["rows"][1]["wall_s"]:
            ratio = large["rows"][1]["wall_s"] / large["rows"][0]["wall_s"]
            bars.append((f"pandas engine\n{large['events'] / 1e6:g}M", ratio, False))
            ax.axhline(TARGET_LARGE_FLOOR_RATIO, color="#c73", linestyle=":",
                       label=f"target {TARGET_LARGE_FLOOR_RATIO:g}x at {TARGET_LARGE_EVENTS / 1e6:g}M")
        drawn = ax.bar(
            [b[0] for b in bars],
            [b[1] for b in bars],
            color=["#888" if b[2] else "#3a7" for b in bars],
            hatch=None,
        )
        for bar, (_, value, extrapolated) in zip(drawn, bars):
            bar.set_hatch("//" if extrapolated else "")
            ax.annotate(f"{value:.1f}x", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom")
        ax.axhline(TARGET_FLOOR_RATIO, color="#c33", linestyle="--",
                   label=f"target {TARGET_FLOOR_RATIO:g}x at {TARGET_EVENTS / 1e6:g}M")
        ax.set_yscale("log")
        ax.legend()
    ax.set_title("clickflow process wall time / DuckDB floor")
    ax.tick_params(axis="x", labelsize=8)

    ax = axes[1]
    good = sorted((p for p in scaling or [] if p.get("wall_s")), key=lambda p: p["events"])
    if good:
        xs = [p["events"] / 1e6 for p in good]
        ax.plot(xs, [p["wall_s"] for p in good], "o-", color="#37a", label="wall time")
        if len(good) >= 2:
            fixed, slope = linear_fit(good, "wall_s")
            ax.plot(
                [0, xs[-1]],
                [fixed, fixed + slope * xs[-1]],
                ":",
                color="#37a",
                label=f"fit: {fixed:.0f} s + {slope:.1f} s/M events",
            )
        ax.set_xlabel("million events")
        ax.set_ylabel("wall time (s)")
        memory = ax.twinx()
        memory.plot(xs, [p["peak_bytes"] / 2**30 for p in good], "s-", color="#a73", label="peak memory")
        memory.axhline(TARGET_PEAK_BYTES / 2**30, color="#c33", linestyle="--",
                       label=f"memory target (at {TARGET_LARGE_EVENTS / 1e6:g}M)")
        memory.set_ylabel("peak memory (GiB)")
        handles = ax.get_legend_handles_labels()
        extra = memory.get_legend_handles_labels()
        ax.legend(handles[0] + extra[0], handles[1] + extra[1], loc="upper left", fontsize=8)
    ax.set_title("Scaling of clickflow process (pandas)")

    ax = axes[2]
    if live and live.get("latencies"):
        values = list(live["latencies"].values())
        ax.bar(range(1, len(values) + 1), values, color="#37a")
        for value, label, style in ((live["p50_s"], "p50", ":"), (live["p95_s"], "p95", "--")):
            ax.axhline(value, color="#333", linestyle=style, label=f"{label} {value:.1f} s")
        ax.axhline(
            TARGET_LIVE_P95_S, color="#c33", linestyle="--", label=f"target p95 {TARGET_LIVE_P95_S:g} s"
        )
        ax.set_xlabel("landed minute")
        ax.set_ylabel("landing -> complete in t1 (s)")
        ax.legend()
    ax.set_title("Live latency")
    fig.suptitle("Clickflow benchmark" + (" (quick check)" if results.get("quick") else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict, markdown: Path, chart: Path) -> None:
    write_markdown(results, markdown)
    write_chart(results, chart)
