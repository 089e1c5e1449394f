"""``python -m bench.run``: backfill throughput, live latency and scaling, in one invocation.

The backfill figure is the wall time of ``clickflow process`` run as a command, start-up included,
against the DuckDB floor on the same files in the same run, at ``--events`` (2M) and ``--large``
(20M) events. Every measured run starts in a fresh process (``bench.child``) on a fresh database of
one embedded PostgreSQL server, with its process tree's memory sampled every 0.2 s. Results go to
``bench/results.md`` and ``bench/results.png``; the raw numbers to ``<workdir>/results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import report
from bench.data import Dataset, dataset
from bench.memory import PeakMemory
from bench.pg import drop_database, fresh_database, same_totals, start_server, t1_totals

ROOT = Path(__file__).resolve().parents[1]
EVENTS, DIMENSIONS = ("purchase", "view"), ("product_id", "brand", "category_l3")
QUICK = {
    "events": 200_000, "minutes": 10, "large": "400000:20", "seed_minutes": 2, "live_minutes": 5,
    "scaling": "100000,200000", "surge_backlog_hours": 1, "surge_live_minutes": 3,
    "cluster_sizes": "100000,200000",
}
PARTS = ("backfill", "scaling", "live", "surge", "cluster")
PLATFORM_KINDS = ("command", "batch")  # runs of the platform: they get a Dagster database


@dataclass
class Measured:
    label: str
    events: int
    wall_s: float | None = None
    peak_bytes: int = 0
    result: dict = field(default_factory=dict)
    same_totals: bool | None = None  # t1 totals equal to the DuckDB floor's on the same minutes
    error: str | None = None  # no figures
    note: str | None = None  # figures, with a caveat (e.g. a downstream run failed)


class Bench:
    def __init__(self, workdir: Path, timeout: float):
        self.workdir, self.timeout = workdir, timeout
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.admin_url = start_server(workdir)

    def measure(
        self,
        label: str,
        kind: str,
        data: Dataset,
        *,
        reference: dict | None = None,
        before: pd.Timestamp | None = None,
        profile: Path | None = None,
        **spec,
    ) -> Measured:
        """Run one measurement in a child process; compare its t1 totals with ``reference``."""
        slug = label.replace(" ", "-").lower()
        print(f"[bench] {label}: {data.events:,} events ...", flush=True)
        pg_url = fresh_database(self.admin_url, kind)
        dagster_url = fresh_database(self.admin_url, "dagster") if kind in PLATFORM_KINDS else None
        work = self.workdir / "runs" / slug
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        spec_path, out_path = work / "spec.json", work / "result.json"
        spec_path.write_text(
            json.dumps(
                {
                    "kind": kind,
                    "files": [str(p) for p in data.files],
                    "pg_url": pg_url,
                    "dagster_pg_url": dagster_url,
                    "work": str(work),
                    "profile": str(profile) if profile else None,
                    **spec,
                }
            )
        )
        measured = Measured(label, data.events)
        try:
            with open(self.logs / f"{slug}.log", "wb") as log:
                child = subprocess.Popen(
                    [sys.executable, "-m", "bench.child", str(spec_path), str(out_path)],
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                with PeakMemory(child.pid) as peak:
                    try:
                        code = child.wait(self.timeout)
                    except subprocess.TimeoutExpired:
                        os.killpg(child.pid, signal.SIGKILL)  # the child and its JVM, nothing else
                        child.wait()
                        code = None
            measured.peak_bytes = peak.bytes  # the child's tree; a command's own tree replaces it below
            if code is None:
                measured.error = f"stopped after --timeout {self.timeout:g} s"
                return measured
            if code != 0:
                measured.error = f"exited with {code}; see {self.logs / f'{slug}.log'}"
                return measured
            measured.result = json.loads(out_path.read_text())
            measured.wall_s = measured.result["wall_s"]
            measured.peak_bytes = measured.result.get("peak_bytes", measured.peak_bytes)
            failed = sorted({job for job, *_ in measured.result.get("failed_runs") or []})
            if failed:
                measured.note = f"failed runs: {', '.join(failed)} (see {self.logs / f'{slug}.log'})"
            elif measured.result.get("exit_code"):
                code = measured.result["exit_code"]
                measured.note = f"exited with {code} (see {self.logs / f'{slug}.log'})"
            if reference is not None:
                measured.same_totals = same_totals(reference, t1_totals(pg_url, EVENTS, DIMENSIONS, before))
            else:
                measured.result["totals"] = t1_totals(pg_url, EVENTS, DIMENSIONS)
                if before is not None:
                    measured.result["totals_before"] = t1_totals(pg_url, EVENTS, DIMENSIONS, before)
            return measured
        finally:
            for url in filter(None, (pg_url, dagster_url)):
                drop_database(self.admin_url, url)
            shutil.rmtree(work / "lake", ignore_errors=True)
            shutil.rmtree(work / "home", ignore_errors=True)
            print(f"[bench]   -> {_brief(measured)}", flush=True)


def _brief(m: Measured) -> str:
    if m.error:
        return f"ERROR {m.error}"
    note = f" ({m.note})" if m.note else ""
    return f"{m.wall_s:.1f} s, peak {m.peak_bytes / 2**20:,.0f} MiB, same t1 totals: {m.same_totals}{note}"


def spark_engine_available() -> tuple[bool, str]:
    """Whether ``get_engine("spark")`` works, asked in a child process (it may start a JVM)."""
    probe = subprocess.run(
        [sys.executable, "-c", "from pipeline.events.engine import get_engine; get_engine('spark')"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if probe.returncode == 0:
        return True, ""
    lines = [line for line in probe.stderr.strip().splitlines() if line.strip()]
    return False, lines[-1] if lines else f"exit code {probe.returncode}"


def run_backfill(bench: Bench, data: Dataset, seed_minutes: int, profile: str) -> dict:
    cut = pd.Timestamp(data.config.start) + pd.Timedelta(minutes=seed_minutes)
    floor = bench.measure("DuckDB floor", "floor", data, before=cut)
    reference = floor.result.get("totals")
    rows = [floor, bench.measure("pandas engine", "command", data, reference=reference, engine="pandas")]
    available, why = spark_engine_available()
    spark = (
        bench.measure("Spark engine", "command", data, reference=reference, engine="spark")
        if available
        else Measured("Spark engine", data.events, error=f"not available ({why})")
    )
    rows.append(spark)
    seed = bench.measure(
        "seed micro-batch", "seed", data, reference=floor.result.get("totals_before"), minutes=seed_minutes
    )
    section = {
        "rows": [dataclasses.asdict(m) for m in rows],
        "seed": dataclasses.asdict(seed),
        "seed_minutes": seed_minutes,
        "minutes": data.minutes,
        "events": data.events,
    }
    pandas_row = rows[1]
    ratio = floor.wall_s and pandas_row.wall_s and pandas_row.wall_s / floor.wall_s
    missed = ratio and ratio > report.TARGET_FLOOR_RATIO
    if profile == "always" or (profile == "auto" and missed):
        stats = bench.workdir / "pandas.prof"
        profiled = bench.measure("pandas engine (cProfile)", "batch", data, profile=stats, engine="pandas")
        if not profiled.error:
            section["profile"] = report.profile_summary(stats)
    return section


def run_large(bench: Bench, data: Dataset) -> dict:
    """The DuckDB floor and ``clickflow process`` (pandas) on the large data set."""
    floor = bench.measure("DuckDB floor (large)", "floor", data)
    pandas = bench.measure(
        "pandas engine (large)", "command", data, reference=floor.result.get("totals"), engine="pandas"
    )
    return {"rows": [dataclasses.asdict(floor), dataclasses.asdict(pandas)], "events": data.events,
            "minutes": data.minutes}


def run_scaling(
    bench: Bench, sizes: list[int], minutes: int, shape: str, measured: list[dict]
) -> list[dict]:
    """``clickflow process`` at each size over the same minutes; a size already measured (the
    backfill's) is reused."""
    points = []
    for size in sizes:
        data = dataset(bench.workdir / "data", size, minutes, shape=shape)
        done = next((m for m in measured if m["events"] == data.events and m["wall_s"]), None)
        if done:
            points.append(dict(done))
        else:
            point = bench.measure(f"pandas scaling {data.events}", "command", data, engine="pandas")
            points.append(dataclasses.asdict(point))
    return points


def run_surge_part(bench: Bench, args: argparse.Namespace) -> dict:
    from bench import surge

    # Enough live minutes to outlast the backlog; the stream stops once the backlog is in t1.
    extra = max(args.surge_live_minutes, 10 * args.surge_backlog_hours + 30)
    data = surge.surge_dataset(bench.workdir / "data", args.surge_events_per_minute, args.surge_backlog_hours, extra)
    print(f"[bench] surge: {args.surge_backlog_hours} h backlog at once, a live minute every "
          f"{args.surge_interval:g} s ...", flush=True)
    work = bench.workdir / "runs" / "surge"
    shutil.rmtree(work, ignore_errors=True)
    try:
        result = surge.run_surge(data, bench.admin_url, work, backlog_hours=args.surge_backlog_hours,
                                 live_minutes=args.surge_live_minutes, interval=args.surge_interval,
                                 sensor_interval=args.sensor_interval, log=bench.logs / "surge-daemon.log")
    except Exception as error:  # reported in the results, like a failed measurement
        result = surge.SurgeResult(args.surge_events_per_minute, 0, 60 * args.surge_backlog_hours,
                                   args.surge_interval, args.sensor_interval, error=f"{type(error).__name__}: {error}")
    section = surge.summary(result)
    print(f"[bench]   -> live p95 {section['p95_s']} s, max {section['max_s']} s, backlog {section['backlog_s']} s, "
          f"failed ticks {result.failed_ticks}, empty runs {len(result.empty_runs)}, "
          f"oracle {result.same_as_oracle}, error {result.error}", flush=True)
    return section


def _size(text: str) -> tuple[int, int] | None:
    if text.strip().lower() in ("", "none", "0"):
        return None
    events, _, minutes = text.partition(":")
    return int(events), int(minutes or 500)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2_000_000, help="events of the backfill data set")
    parser.add_argument("--minutes", type=int, default=50, help="minutes the events span")
    parser.add_argument(
        "--large",
        default="20000000:500",
        help="EVENTS:MINUTES of the large backfill (floor and pandas command only; 'none' skips it)",
    )
    parser.add_argument(
        "--simple", action="store_true", help="the generator's first, easy shape instead of the realistic one"
    )
    parser.add_argument(
        "--seed-minutes", type=int, default=5, help="minutes the seed micro-batch baseline runs"
    )
    parser.add_argument("--live-minutes", type=int, default=30, help="minutes of data replayed live")
    parser.add_argument("--live-interval", type=float, default=5.0, help="seconds between two landed minutes")
    parser.add_argument(
        "--sensor-interval", type=int, default=5, help="PIPELINE_SENSOR_INTERVAL_SECONDS when live"
    )
    parser.add_argument("--surge-backlog-hours", type=int, default=6, help="hours of backlog landed at once")
    parser.add_argument("--surge-events-per-minute", type=int, default=4000, help="events per minute in the surge")
    parser.add_argument("--surge-interval", type=float, default=10.0, help="seconds between live minutes in the surge")
    parser.add_argument("--surge-live-minutes", type=int, default=12, help="live minutes landed at least in the surge")
    parser.add_argument(
        "--scaling", help="event counts of the scaling runs (default: events x 1/4, 1/2, 1, 2)"
    )
    parser.add_argument(
        "--cluster-sizes", default="1000000,4000000",
        help="event counts of the Spark standalone cluster backfills (part 'cluster')",
    )
    parser.add_argument(
        "--cluster-workers", default="1,2", help="worker counts of the Spark standalone cluster (one core each)"
    )
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts to run ({', '.join(PARTS)})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds after which one measurement is stopped and reported as such",
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="profile the pandas backfill with cProfile (auto: when it misses its target)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a check of the harness in minutes: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()),
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(os.environ.get("PIPELINE_HOME", ".clickflow")) / "bench",
        help="data, logs and the benchmark's PostgreSQL (default: $PIPELINE_HOME/bench)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench", help="where results.md and results.png go"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: write results.md and results.png again from <workdir>/results.json",
    )
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if not parts or parts - set(PARTS):
        parser.error(f"--only takes some of {', '.join(PARTS)}")
    args.parts = parts
    sizes = args.scaling or ",".join(str(args.events * k // 4) for k in (1, 2, 4, 8))
    args.sizes = [int(s) for s in sizes.split(",")]
    args.cluster_sizes = [int(s) for s in str(args.cluster_sizes).split(",")]
    args.cluster_workers = [int(s) for s in str(args.cluster_workers).split(",")]
    try:
        args.large_size = _size(args.large)
    except ValueError:
        parser.error(f"--large takes EVENTS:MINUTES or none, got {args.large!r}")
    if min(args.events, *args.sizes) < 4 * args.minutes or args.live_minutes < 1 or args.seed_minutes < 1:
        parser.error("need at least 4 events per minute, one live minute and one seed minute")
    if args.large_size and args.large_size[0] < 4 * args.large_size[1]:
        parser.error("--large needs at least 4 events per minute")
    args.shape = "simple" if args.simple else "realistic"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir.absolute()
    if args.report_only:
        results = json.loads((workdir / "results.json").read_text())
        args.out.mkdir(parents=True, exist_ok=True)
        report.write(results, args.out / "results.md", args.out / "results.png")
        print(
            f"[bench] wrote {args.out / 'results.md'} and {args.out / 'results.png'} from "
            f"{workdir / 'results.json'}"
        )
        return 0
    started = time.monotonic()
    bench = Bench(workdir, args.timeout)
    results: dict = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "cores": os.cpu_count(),
        "command": " ".join(["python -m bench.run", *(argv or sys.argv[1:])]),
        "sensor_interval_s": args.sensor_interval,
        "shape": args.shape,
    }
    print(f"[bench] generating data under {workdir / 'data'} ...", flush=True)
    main_data = dataset(workdir / "data", args.events, args.minutes, shape=args.shape) if args.parts & {
        "backfill", "live"} else None
    measured: list[dict] = []  # pandas commands, reused by the scaling part
    if "backfill" in args.parts:
        results["backfill"] = run_backfill(
            bench, main_data, min(args.seed_minutes, args.minutes), args.profile
        )
        measured.append(results["backfill"]["rows"][1])
        if args.large_size:
            events, minutes = args.large_size
            print(f"[bench] generating {events:,} events over {minutes} minutes ...", flush=True)
            generating = time.monotonic()
            large = dataset(workdir / "data", events, minutes, shape=args.shape)
            generated_s = time.monotonic() - generating
            results["large"] = run_large(bench, large)
            results["large"]["data_s"] = generated_s  # near 0 when the data was cached
            measured.append(results["large"]["rows"][1])
    if "scaling" in args.parts:
        results["scaling"] = run_scaling(bench, args.sizes, args.minutes, args.shape, measured)
    if "cluster" in args.parts:
        from bench.cluster import run_cluster

        results["cluster"] = run_cluster(bench, args.cluster_sizes, args.minutes, args.shape, args.cluster_workers)
    if "live" in args.parts:
        from bench.live import run_live

        per_minute = main_data.config.events_per_minute  # live minutes as heavy as the backfill's
        live_data = dataset(
            workdir / "data", per_minute * (args.live_minutes + 1), args.live_minutes + 1, shape=args.shape
        )
        print(
            f"[bench] live: {args.live_minutes} minutes + 1 warm-up, one every {args.live_interval} s ...",
            flush=True,
        )
        live_work = workdir / "runs" / "live"
        shutil.rmtree(live_work, ignore_errors=True)
        try:
            live = run_live(
                live_data,
                bench.admin_url,
                live_work,
                interval=args.live_interval,
                sensor_interval=args.sensor_interval,
                log=bench.logs / "live-daemon.log",
            )
        except Exception as error:  # reported in the results, like a failed measurement
            from bench.live import LiveResult

            live = LiveResult(
                args.live_interval, args.sensor_interval, None, error=f"{type(error).__name__}: {error}"
            )
        results["live"] = {
            **dataclasses.asdict(live),
            "events_per_minute": live_data.config.events_per_minute,
            "p50_s": live.percentile(0.5),
            "p95_s": live.percentile(0.95),
            "max_s": live.percentile(1.0),
        }
        print(
            f"[bench]   -> p50 {live.percentile(0.5)} s, p95 {live.percentile(0.95)} s, "
            f"missing {len(live.missing)}, error {live.error}",
            flush=True,
        )
    if "surge" in args.parts:
        results["surge"] = run_surge_part(bench, args)
    results["elapsed_s"] = time.monotonic() - started
    (workdir / "results.json").write_text(json.dumps(results, indent=2, default=str))
    args.out.mkdir(parents=True, exist_ok=True)
    report.write(results, args.out / "results.md", args.out / "results.png")
    print(
        f"[bench] wrote {args.out / 'results.md'} and {args.out / 'results.png'} "
        f"in {results['elapsed_s'] / 60:.1f} min",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
