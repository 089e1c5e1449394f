"""`clickflow`: generate, replay, process, backfill, demo, status and dev, with progress bars."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import warnings
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.settings import Settings, SettingsError

console = Console()
DEMO_DAY = "2019-10-01"  # the first day of the public data set the seed replayed


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


def _settings() -> Settings:
    return Settings.from_env()


def _lake(settings: Settings):
    from pipeline.resources.lake import open_lake

    return open_lake(settings.lake_url)


def _instance_and_defs(settings: Settings):
    import dagster as dg

    from pipeline.definitions import build_definitions
    from pipeline.instance import prepare_instance

    prepare_instance(settings)
    return dg.DagsterInstance.get(), build_definitions(settings)


# --------------------------------------------------------------------------- commands


GROUP_SAMPLES = {  # group -> (module, what it writes) for `clickflow generate <group>`
    "insights": ("pipeline.insights.generate", "a month of event dumps under insights/events/"),
    "clickstream": ("pipeline.clickstream.generate", "a click batch (CSV, JSON, XLSX) and its metadata marker"),
    "b2b": ("pipeline.b2b.generate", "the initial tables and a day of quotes, leads and web logs"),
    "basket": ("pipeline.basket.generate", "reference tables and three days of streamed orders"),
}


def _clickstream_days(settings: Settings) -> dict:
    """A clickstream batch inside the group's daily partitions (PIPELINE_PARTITIONS_START .. END),
    so that `clickflow process` loads it: the first days from the start, never past today."""
    today = dt.date.today()
    if settings.partitions_end:
        today = min(today, dt.date.fromisoformat(settings.partitions_end) - dt.timedelta(days=1))
    return {"start": dt.date.fromisoformat(settings.partitions_start), "today": today}


def cmd_generate(args) -> int:
    from pipeline.events.generate import GeneratorConfig, write_files

    if args.group != "events":
        import importlib

        module, what = GROUP_SAMPLES[args.group]
        settings = _settings()
        window = _clickstream_days(settings) if args.group == "clickstream" else {}
        keys = importlib.import_module(module).generate(_lake(settings), seed=args.seed, **window)
        keys = keys if isinstance(keys, list) else [keys]
        console.print(f"wrote {what}: {len(keys)} object(s) in {settings.lake_url}")
        return 0

    start = dt.datetime.fromisoformat(args.start).replace(tzinfo=dt.timezone.utc)
    config = GeneratorConfig(start=start, minutes=args.minutes, events_per_minute=args.events_per_minute,
                             servers=args.servers, seed=args.seed, gzip=args.gzip,
                             shape="simple" if args.simple else "realistic")
    target = Path(args.out)
    target.mkdir(parents=True, exist_ok=True)
    with _progress() as progress:
        task = progress.add_task("generating events", total=config.total_events)
        written = write_files(config, target, progress=lambda n: progress.advance(task, n))
    console.print(f"wrote {len(written)} files ({args.minutes * args.events_per_minute:,} events) to {target}")
    return 0


def cmd_replay(args) -> int:
    from pipeline.events.replay import replay

    settings = _settings()
    source = Path(args.source)
    if not source.is_dir():
        console.print(f"[red]{source} is not a folder[/red]: generate files first with `clickflow generate --out {source}`")
        return 2
    total = len([p for p in source.iterdir() if p.is_file()])
    with _progress() as progress:
        task = progress.add_task("landing files", total=total)
        summary = replay(source, _lake(settings), pace_seconds=args.pace, minutes_per_step=args.minutes_per_step,
                         shift_to_now=args.shift_to_now, late_fraction=args.late, duplicate_fraction=args.duplicates,
                         seed=args.seed, progress=lambda n=1: progress.update(task, advance=n))
    console.print(f"landed {summary.landed} files ({summary.late} late, {summary.duplicates} duplicates, "
                  f"{summary.bytes:,} bytes) into {settings.lake_url}/landing/")
    return 0


def _warm_workers(settings: Settings) -> None:
    """With many files waiting, start the pandas engine's worker processes now, in the background,
    so that they are ready when the first claim wants them (their start overlaps this one's)."""
    if settings.engine != "pandas":
        return
    from pipeline.events import workers

    if len(_lake(settings).list_page("landing/", limit=workers.PROCESSES_FROM)) >= workers.PROCESSES_FROM:
        workers.warm()


def cmd_process(args) -> int:
    from pipeline.batch import process

    settings = _settings()
    _warm_workers(settings)
    instance, defs = _instance_and_defs(settings)

    def on_run(job: str, label: str, ok: bool) -> None:
        mark = "[green]ok[/green]" if ok else "[red]FAILED[/red]"
        console.print(f"  {job:<18} {label:<36} {mark}")

    console.print(f"processing {settings.lake_url}: every sensor and automation condition, until idle ...")
    summary = process(defs, instance, on_run=on_run, log_level=args.log_level)
    console.print(f"{len(summary.runs)} run(s), {len(summary.failed)} failed, "
                  f"{summary.skipped_run_keys} already done")
    if summary.failed:
        console.print("[red]some runs failed[/red]: open the run in the UI (`make dev`) or "
                      "`dagster run list` for the error; fix it and run `clickflow process` again.")
        return 1
    return 0


def cmd_backfill(args) -> int:
    import dagster as dg

    from pipeline.batch import Batch
    from pipeline.events.jobs import RANGE_END_TAG, RANGE_START_TAG, INGEST_JOB

    settings = _settings()
    instance, defs = _instance_and_defs(settings)
    start, end = args.start, args.end
    for value in (start, end):
        try:
            dt.datetime.strptime(value, "%Y-%m-%d-%H:%M")
        except ValueError:
            console.print(f"[red]{value!r} is not an hour partition key[/red]: use e.g. 2019-10-01-05:00")
            return 2
    request = dg.RunRequest(tags={RANGE_START_TAG: start, RANGE_END_TAG: end, "backlog": "true"})
    console.print(f"backfilling {start} .. {end} as one run")
    batch = Batch(defs, instance, log_level="WARNING")  # before the run: its automation follows it
    ok = batch.execute(INGEST_JOB, request, {"clickflow/mode": "backfill"})
    if ok:
        batch.until_idle(retention=False)  # downstream: rankings, settled archives
    console.print(f"{batch.summary.runs[0][1]}: {'[green]ok[/green]' if ok else '[red]FAILED[/red]'}")
    return 0 if ok else 1


def cmd_status(args) -> int:
    from psycopg import sql

    from pipeline.events.clock import newest_t1_minute
    from pipeline.events.tables import all_tables
    from pipeline.resources.warehouse import Warehouse, embedded_server_url

    settings = _settings()
    warehouse = Warehouse(settings.pg_url or embedded_server_url(settings.pg_dir))
    lake = _lake(settings)
    counts = {prefix: sum(1 for _ in lake.list(prefix)) for prefix in
              ("landing/", "raw/", "staged/", "manifests/", "aggregates/", "archive/", "quarantine/")}
    table = Table(title="lake")
    table.add_column("prefix")
    table.add_column("objects", justify="right")
    for prefix, count in counts.items():
        table.add_row(prefix, f"{count:,}")
    console.print(table)
    table = Table(title=f"warehouse (newest t1 minute: {newest_t1_minute(warehouse, settings)})")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for spec in all_tables(settings.events, settings.dimensions):
        exists = warehouse.scalar(sql.SQL("SELECT to_regclass(%s) IS NOT NULL"), (spec.qualified,))
        table.add_row(spec.qualified, f"{warehouse.row_count(spec):,}" if exists else "-")
    console.print(table)
    console.print(f"hour partitions with a manifest: {counts['manifests/']:,}")
    return 0


def cmd_demo(args) -> int:
    """Two passes, like a real stream: on-time files first, then late, duplicate and broken ones."""
    from pipeline.batch import process
    from pipeline.events.generate import GeneratorConfig, write_files
    from pipeline.events.replay import plan_replay

    settings = _settings()
    samples = settings.home / "samples" / "events"
    config = GeneratorConfig(start=dt.datetime.fromisoformat(DEMO_DAY).replace(tzinfo=dt.timezone.utc),
                             minutes=args.minutes, events_per_minute=args.events_per_minute, seed=7)
    if not samples.is_dir() or len(list(samples.iterdir())) != args.minutes * config.servers:
        shutil.rmtree(samples, ignore_errors=True)
        samples.mkdir(parents=True)
        with _progress() as progress:
            task = progress.add_task("generating sample events", total=config.total_events)
            write_files(config, samples, progress=lambda n: progress.advance(task, n))
    steps = plan_replay(sorted(p.name for p in samples.iterdir()), late_fraction=0.1, duplicate_fraction=0.05, seed=7)
    lake = _lake(settings)
    instance, defs = _instance_and_defs(settings)
    failed = 0
    passes = [("on-time files", [s for s in steps if s.kind == "on_time"]),
              ("late and duplicate files", [s for s in steps if s.kind != "on_time"])]
    for label, batch in passes:
        for step in batch:
            lake.write_bytes(f"landing/{step.name}", (samples / step.name).read_bytes())
        broken = _land_broken_files(lake) if batch is passes[1][1] else 0
        console.print(f"[bold]landed {len(batch)} {label}[/bold]" + (f" and {broken} broken ones" if broken else ""))
        with _progress() as progress:
            task = progress.add_task("runs", total=None)
            result = process(defs, instance, log_level="WARNING", on_run=lambda *_: progress.advance(task))
        for job, partition, ok in result.runs:
            console.print(f"  {job:<16} {partition:<36} {'[green]ok[/green]' if ok else '[red]FAILED[/red]'}")
        failed += len(result.failed)
    _print_top(settings)
    failed += _demo_other_groups(lake, defs, instance)
    console.print("\nNext: `make dev` opens the Dagster UI at http://127.0.0.1:3000 on this state "
                  "(Assets -> events, Runs, Automation -> landing_sensor); `make status` lists the tables.")
    return 1 if failed else 0


def _demo_other_groups(lake, defs, instance) -> int:
    """A month of insights, a clickstream week, two B2B days and three basket days, loaded by
    batch mode through their own sensors and automation; then the basket features of the last day
    (the job of its 23:35 schedule, which batch mode does not evaluate). Returns the failed runs."""
    import dagster as dg

    from pipeline.b2b.generate import generate as b2b_generate
    from pipeline.basket.generate import generate as basket_generate
    from pipeline.batch import execute_request, process
    from pipeline.clickstream.generate import generate as clickstream_generate
    from pipeline.insights.generate import generate as insights_generate

    insights_generate(lake, month="2019-10", seed=7)
    clickstream_generate(lake, seed=7, start=dt.date.fromisoformat(DEMO_DAY), days=7)
    b2b_generate(lake, seed=7, start=dt.date(2024, 1, 1), days=2)
    basket_generate(lake, seed=7, start="2024-01-01", days=3)
    with _progress() as progress:
        task = progress.add_task("other groups", total=None)
        summary = process(defs, instance, log_level="WARNING", on_run=lambda *_: progress.advance(task))
        runs = list(summary.runs)
        runs.append(("basket_daily_job", *execute_request(defs, instance, "basket_daily_job",
                                                          dg.RunRequest(partition_key="2024-01-03"),
                                                          {"clickflow/mode": "demo"}, "WARNING")))
    for job, partition, ok in runs:
        console.print(f"  {job:<28} {partition:<24} {'[green]ok[/green]' if ok else '[red]FAILED[/red]'}")
    return sum(1 for *_, ok in runs if not ok)


def _land_broken_files(lake) -> int:
    broken = {
        f"{DEMO_DAY}-00-07-00-broken1.csv": b"",
        f"{DEMO_DAY}-00-08-00-broken2.csv": b"event_time,event_type,oops\n1,2,3\n",
        f"{DEMO_DAY}-00-09-00-broken3.csv.gz": b"\x1f\x8b\x08\x00garbage",
        "not-a-valid-name.csv": b"x",
    }
    for name, data in broken.items():
        lake.write_bytes(f"landing/{name}", data)
    return len(broken)


def _print_top(settings: Settings) -> None:
    from psycopg import sql

    from pipeline.events.tables import metric_names, pairs, rank_table
    from pipeline.resources.warehouse import Warehouse, embedded_server_url

    warehouse = Warehouse(settings.pg_url or embedded_server_url(settings.pg_dir))
    for event, dimension in pairs(settings.events, settings.dimensions):
        spec = rank_table(event, dimension)
        frame = warehouse.read_frame(sql.SQL("SELECT * FROM {} ORDER BY rank LIMIT 5").format(spec.table))
        table = Table(title=f"{spec.qualified}: top 5 of the last hour")
        columns = ["rank", dimension, *metric_names(event, dimension)]
        for column in columns:
            table.add_column(column, justify="right" if column != dimension else "left")
        for row in frame[columns].itertuples(index=False) if len(frame) else []:
            table.add_row(*(f"{v:,.2f}" if isinstance(v, float) else str(v) for v in row))
        console.print(table)


def cmd_dev(args) -> int:
    """The UI on this instance; on a lake with nothing processed yet, the demo runs first so the
    UI opens on populated assets, partitions, runs and a dashboard."""
    settings = _settings()
    from pipeline.instance import prepare_instance

    if not args.no_demo and next(iter(_lake(settings).list("manifests/", 1)), None) is None:
        console.print("[bold]nothing processed yet: running `clickflow demo` first[/bold] (skip with --no-demo)")
        if cmd_demo(build_parser().parse_args(["demo"])) != 0:
            console.print("[yellow]the demo had failed runs: the UI shows them under Runs[/yellow]")
    prepare_instance(settings)
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    workspace = Path(__file__).resolve().parents[1] / "workspace.yaml"
    console.print(f"Dagster UI on http://{args.host}:{args.port} (instance {os.environ['DAGSTER_HOME']})")
    os.execv(dagster, [dagster, "dev", "-h", args.host, "-p", str(args.port), "-w", str(workspace)])
    return 0  # not reached


# --------------------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clickflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="write synthetic event files (seed schema) to a folder, or another "
                                          "group's sample input into the lake")
    p.add_argument("group", nargs="?", default="events", choices=["events", *GROUP_SAMPLES])
    p.add_argument("--out", default=".clickflow/samples/events")
    p.add_argument("--start", default=DEMO_DAY, help="UTC start, ISO (default %(default)s)")
    p.add_argument("--minutes", type=int, default=60)
    p.add_argument("--events-per-minute", type=int, default=2000)
    p.add_argument("--servers", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gzip", action="store_true")
    p.add_argument("--simple", action="store_true",
                   help="the first generator's easy shape (5,000 products, long sessions) instead of the "
                        "public data set's (bench/README.md)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("replay", help="land files from a folder into the lake's landing/")
    p.add_argument("source")
    p.add_argument("--pace", type=float, default=0.0, help="seconds between steps (0: all at once)")
    p.add_argument("--minutes-per-step", type=int, default=1)
    p.add_argument("--shift-to-now", action="store_true", help="move names and event times to the current time")
    p.add_argument("--late", type=float, default=0.0, help="fraction of files held back and landed last")
    p.add_argument("--duplicates", type=float, default=0.0, help="fraction of files landed twice")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("process", help="run the sensors and every run they request until nothing is pending")
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("backfill", help="recompute a range of hours as one run (same result as live)")
    p.add_argument("--from", dest="start", required=True, help="first hour, e.g. 2019-10-01-00:00")
    p.add_argument("--to", dest="end", required=True, help="last hour, e.g. 2019-10-01-23:00")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("demo", help="generate, replay (late, duplicate, broken files), process, show the top")
    p.add_argument("--minutes", type=int, default=120)
    p.add_argument("--events-per-minute", type=int, default=1000)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("status", help="lake objects and table row counts")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("dev", help="start the Dagster webserver and daemon on this instance (runs the demo "
                                     "first when nothing was processed yet)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--no-demo", action="store_true", help="start on an empty lake as it is")
    p.set_defaults(func=cmd_dev)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Library chatter a user can do nothing about: beta flags we chose on purpose, and
    # platformdirs' note about a missing XDG_RUNTIME_DIR on servers.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    from pipeline.resources.warehouse import WarehouseError

    try:
        return args.func(args)
    except SettingsError as error:
        console.print(f"[red]configuration error:[/red] {error}")
        return 2
    except WarehouseError as error:
        # One line on stderr, however narrow the terminal, and no traceback.
        Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(str(error))}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
