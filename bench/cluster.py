"""The Spark engine on a local standalone cluster: the same backfill (``clickflow process`` as a
command, ``PIPELINE_ENGINE=spark``, ``PIPELINE_SPARK_MASTER=spark://...``) with 1 and 2 workers of
one core and 1 GiB each, at each size; the driver's peak memory (the ``clickflow`` process alone,
and with its driver JVM), events/s per worker and the speed-up from 1 to 2 workers.

The cluster is the tests' (``pipeline_tests/spark_cluster.py``: a master and workers started from
the pyspark package). On a 2-core machine the driver, PostgreSQL and the workers share the cores,
so the speed-up says what 2 cores allow, not what a cluster of separate machines gives.
"""

from __future__ import annotations

import dataclasses

from bench.data import dataset


def run_cluster(bench, sizes: list[int], minutes: int, shape: str, workers: list[int]) -> dict:
    from pipeline_tests.spark_cluster import start_cluster

    rows = []
    for size in sizes:
        data = dataset(bench.workdir / "data", size, minutes, shape=shape)
        floor = bench.measure(f"DuckDB floor {data.events}", "floor", data)
        for count in workers:
            label = f"Spark cluster {count} worker(s) {data.events}"
            print(f"[bench] starting a standalone cluster with {count} worker(s) ...", flush=True)
            cluster = start_cluster(count, log_dir=bench.logs / f"cluster-{count}-{data.events}")
            try:
                measured = bench.measure(label, "command", data, reference=floor.result.get("totals"),
                                         engine="spark", spark_master=cluster.master)
            finally:
                cluster.stop()
            row = dataclasses.asdict(measured)
            row.update(workers=count, size=data.events,
                       driver_peak_bytes=measured.result.get("root_peak_bytes"))
            rows.append(row)
    return {"rows": rows, "minutes": minutes, "workers": workers, "sizes": sizes}
