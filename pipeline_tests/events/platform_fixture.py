"""A whole platform on a temporary lake and a fresh database, driven like production."""

from __future__ import annotations

import datetime as dt
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
from psycopg import sql

from pipeline.batch import process
from pipeline.definitions import build_definitions
from pipeline.events.generate import GeneratorConfig, generate_files
from pipeline.events.tables import rank_table, t1_table, t2_table
from pipeline.resources.lake import LocalLake
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings


@dataclass
class Platform:
    settings: Settings
    defs: dg.Definitions
    instance: dg.DagsterInstance
    lake: LocalLake
    warehouse: Warehouse

    def land(self, name: str, data: bytes) -> None:
        self.lake.write_bytes(f"landing/{name}", data)

    def process(self):
        return process(self.defs, self.instance)

    def table(self, spec) -> pd.DataFrame:
        return self.warehouse.read_frame(sql.SQL("SELECT * FROM {}").format(spec.table))

    def t1(self, event, dimension):
        return self.table(t1_table(event, dimension))

    def t2(self, event, dimension):
        return self.table(t2_table(event, dimension))

    def rank(self, event, dimension):
        return self.table(rank_table(event, dimension))

    def archived_rows(self) -> pd.DataFrame:
        frames = [pd.read_csv(io.BytesIO(gzip.decompress(self.lake.read_bytes(o.key))), dtype=str,
                              keep_default_na=False) for o in self.lake.list("archive/")]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["source_file"])


def make_platform(tmp_path: Path, pg_url: str, monkeypatch, **overrides: str) -> Platform:
    env = {
        "PIPELINE_HOME": str(tmp_path / "home"),
        "PIPELINE_PG_URL": pg_url,
        "PIPELINE_LAKE_URL": str(tmp_path / "lake"),
        "PIPELINE_PARTITIONS_START": "2019-10-01",
        "PIPELINE_PARTITIONS_END": "2019-10-03",
        **overrides,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env(env)
    return Platform(settings, build_definitions(settings), dg.DagsterInstance.ephemeral(),
                    LocalLake(tmp_path / "lake"), Warehouse(pg_url))


def sample_files(start: str, minutes: int, events_per_minute: int = 60, servers: int = 2, seed: int = 0,
                 gzip_files: bool = False) -> list[tuple[str, bytes]]:
    # The first generator's shape: these tests were written on its files and some rely on where their
    # purchases fall (test_exactly_once's killed run needs one in the late file's minute).
    config = GeneratorConfig(start=dt.datetime.fromisoformat(start).replace(tzinfo=dt.timezone.utc), minutes=minutes,
                             events_per_minute=events_per_minute, servers=servers, seed=seed, gzip=gzip_files,
                             products=300, users=500, shape="simple")
    return list(generate_files(config))


def write_sources(tmp_path: Path, files: list[tuple[str, bytes]]) -> list[Path]:
    folder = tmp_path / "accepted"
    folder.mkdir(exist_ok=True)
    paths = []
    for name, data in files:
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return paths
