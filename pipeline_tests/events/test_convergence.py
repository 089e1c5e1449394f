"""The convergence property (DESIGN section 7): whatever the arrival order, batching, duplication
and lateness of the files, once the platform is idle every table equals a from-scratch batch
computation over all accepted files, and the archives plus raw/ hold every accepted row once.

Each case is seeded; a failing case prints its seed and arrival plan. More cases:
CLICKFLOW_CONVERGENCE_CASES=50 make test PYTEST_ARGS="-k convergence".
"""

from __future__ import annotations

import json
import os
import random

import pandas as pd
import pytest
from pipeline_tests.events.event_oracle import assert_same, batch_oracle, to_hours
from pipeline_tests.events.platform_fixture import make_platform, sample_files, write_sources

from pipeline.events import workers
from pipeline.events.tables import pairs

CASES = int(os.environ.get("CLICKFLOW_CONVERGENCE_CASES", "4"))
BAD_FILES = {
    "2019-10-01-00-03-00-bad1.csv": b"",
    "2019-10-01-00-04-00-bad2.csv": b"event_time,event_type\n2019-10-01 00:04:00 UTC,view\n",
    "2019-10-01-02-05-00-bad3.csv.gz": b"\x1f\x8b\x08\x00\x00garbage",
    "weird name!.csv": b"x",
}


def _arrival_plan(rng: random.Random, files: list[tuple[str, bytes]]):
    """Random batches: most files roughly in time order, some held back (late), some twice."""
    order = sorted(files, key=lambda f: f[0])
    late = rng.sample(order, k=len(order) // 5)
    on_time = [f for f in order if f not in late]
    # jitter: swap neighbours now and then
    for i in range(len(on_time) - 1):
        if rng.random() < 0.3:
            on_time[i], on_time[i + 1] = on_time[i + 1], on_time[i]
    stream = on_time + rng.sample(late, k=len(late))
    stream += rng.sample(order, k=len(order) // 10)  # duplicates, after their originals
    stream += list(BAD_FILES.items())
    rng.shuffle(stream[-len(BAD_FILES) - 5:])
    batches, i = [], 0
    while i < len(stream):
        size = rng.randint(1, max(2, len(stream) // 4))
        batches.append(stream[i:i + size])
        i += size
    return batches


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(CASES))
def test_tables_converge_to_the_batch_oracle(seed, tmp_path, pg_url, monkeypatch):
    _converge(seed, tmp_path, pg_url, monkeypatch)


@pytest.mark.slow
def test_tables_converge_when_worker_processes_stage_and_sum(tmp_path, pg_url, monkeypatch):
    """The same property with every claim and t1 chunk sent to the worker processes (a large
    backfill's path), however few files: they write the staged rows, this process reads them."""
    monkeypatch.setattr(workers, "PROCESSES_FROM", 1)
    monkeypatch.setattr(workers, "COLD_FACTOR", 1)
    monkeypatch.setattr(workers, "WORKERS", 2)
    _converge(7, tmp_path, pg_url, monkeypatch)
    assert workers.running()
    workers.shutdown()


def _converge(seed, tmp_path, pg_url, monkeypatch):
    # t1 keeps one hour so early files fall outside its window; hour archives so blocks settle.
    platform = make_platform(tmp_path, pg_url, monkeypatch, PIPELINE_T1_RETENTION_HOURS="1",
                             PIPELINE_ARCHIVE_BLOCK="hour", PIPELINE_ARCHIVE_SETTLE_MINUTES="30")
    files = (sample_files("2019-10-01 00:00", 12, seed=seed)
             + sample_files("2019-10-01 01:50", 15, seed=seed + 100)
             + sample_files("2019-10-01 03:30", 10, seed=seed + 200, gzip_files=True))
    rng = random.Random(seed)
    batches = _arrival_plan(rng, files)
    plan = [[name for name, _ in batch] for batch in batches]
    for batch in batches:
        for name, data in batch:
            platform.land(name, data)
        summary = platform.process()
        assert not summary.failed, f"seed={seed} failed runs {summary.failed}; plan={plan}"

    settings = platform.settings
    oracle = batch_oracle(write_sources(tmp_path, files), settings.events, settings.dimensions)
    newest = max(frame["minute"].max() for frame in oracle.values() if len(frame))
    t1_cutoff = newest - pd.Timedelta(hours=1)
    context = f"seed={seed}, replay with plan={plan}"
    for event, dimension in pairs(settings.events, settings.dimensions):
        expected = oracle[(event, dimension)]
        t1 = platform.t1(event, dimension)
        t1 = t1[pd.to_datetime(t1["minute"], utc=True) > t1_cutoff]
        assert_same(t1, expected[expected["minute"] > t1_cutoff], ["minute", dimension],
                    f"t1 {event}/{dimension} {context}")
        assert_same(platform.t2(event, dimension), to_hours(expected, event, dimension), ["hour", dimension],
                    f"t2 {event}/{dimension} {context}")
        window = expected[expected["minute"] > newest - pd.Timedelta(minutes=60)].copy()
        window["minute"] = newest
        ranked = to_hours(window, event, dimension).drop(columns=["hour"])
        metric = "view_count" if event == "view" else "gmv"
        ranked = ranked.sort_values([metric, dimension], ascending=[False, True]).reset_index(drop=True)
        ranked["rank"] = range(1, len(ranked) + 1)
        actual = platform.rank(event, dimension).drop(columns=["window_start", "window_end"])
        assert_same(actual, ranked, [dimension], f"rank {event}/{dimension} {context}")

    # Nothing lost, nothing twice: archived rows + rows still in raw/ == every accepted file's rows.
    archived = platform.archived_rows()
    counts = archived.groupby("source_file").size().to_dict() if len(archived) else {}
    for obj in platform.lake.list("raw/"):
        assert obj.name not in counts, f"{obj.name} is both archived and still in raw/ ({context})"
        counts[obj.name] = None
    expected_names = {name for name, _ in files}
    assert set(counts) == expected_names, context
    sizes = {name: len(pd.read_csv(tmp_path / "accepted" / name)) for name in expected_names}
    for name, rows in counts.items():
        if rows is not None:
            assert rows == sizes[name], f"{name}: {rows} archived rows, file has {sizes[name]} ({context})"
    reasons = [json.loads(platform.lake.read_text(o.key)) for o in platform.lake.list("quarantine/")
               if o.name.endswith(".reason.json")]
    named = {r.get("original_name", r["file"]) for r in reasons}
    assert set(BAD_FILES) <= named, (named, context)
