"""One measurement in a fresh process, so that its peak memory (JVM included) is its own.

``python -m bench.child SPEC.json RESULT.json``: the spec names the kind (``floor``, ``command``:
``clickflow process`` as a command, ``batch``: the same in this process, ``seed``) and its inputs;
the result is the runner's timings as JSON. With ``profile`` set in the spec, the run is made under
cProfile and the statistics are written to that path.
"""

from __future__ import annotations

import cProfile
import json
import sys
import warnings
from pathlib import Path


def _run(spec: dict) -> dict:
    files = [Path(p) for p in spec["files"]]
    if spec["kind"] == "floor":
        from bench.duckdb_floor import run_floor

        return run_floor(files, spec["pg_url"])
    if spec["kind"] == "command":
        from bench.platform_batch import run_command

        return run_command(
            files, Path(spec["work"]), spec["pg_url"], spec["dagster_pg_url"], engine=spec["engine"]
        )
    if spec["kind"] == "batch":
        from bench.platform_batch import run_batch

        return run_batch(
            files,
            Path(spec["work"]),
            spec["pg_url"],
            engine=spec["engine"],
            dagster_pg_url=spec["dagster_pg_url"],
        )
    if spec["kind"] == "seed":
        from bench.seed_spark import run_seed

        return run_seed(files, spec["pg_url"], spec["minutes"])
    raise ValueError(f"unknown measurement kind {spec['kind']!r}")


def main(argv: list[str]) -> int:
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    spec = json.loads(Path(argv[0]).read_text())
    if spec.get("profile"):
        profiler = cProfile.Profile()
        result = profiler.runcall(_run, spec)
        profiler.dump_stats(spec["profile"])
    else:
        result = _run(spec)
    Path(argv[1]).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
