"""Benchmark data: the project's own generator, cached per configuration."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.events.generate import GeneratorConfig, write_files

START = dt.datetime(2019, 10, 1, tzinfo=dt.timezone.utc)  # the public data set's first day
_DONE = ".complete"


@dataclass(frozen=True)
class Dataset:
    folder: Path
    config: GeneratorConfig

    @property
    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file() and not p.name.startswith("."))

    @property
    def events(self) -> int:
        return self.config.total_events

    @property
    def minutes(self) -> int:
        return self.config.minutes

    def minute_files(self, minute: int) -> list[Path]:
        return [self.folder / self.config.file_name(minute, s) for s in range(self.config.servers)]


BYTES_PER_EVENT = 140  # a CSV line of the realistic shape is ~135 bytes


def dataset(root: Path, events: int, minutes: int, seed: int = 0, shape: str = "realistic") -> Dataset:
    """``events`` events (rounded down to a whole number per minute) over ``minutes`` minutes,
    generated once per configuration and kept under ``root``."""
    config = GeneratorConfig(
        start=START, minutes=minutes, events_per_minute=max(events // minutes, 4), seed=seed, shape=shape
    )
    folder = Path(root) / f"events-{shape}-{config.total_events}-{minutes}m-seed{seed}"
    if not (folder / _DONE).exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        need, free = config.total_events * BYTES_PER_EVENT, shutil.disk_usage(folder.parent).free
        if need > free * 0.9:
            raise OSError(
                f"{config.total_events:,} events need about {need / 2**30:.1f} GiB under {folder.parent}, "
                f"which has {free / 2**30:.1f} GiB free: free space or pass another --workdir"
            )
        write_files(config, folder)
        (folder / _DONE).touch()
    return Dataset(folder, config)
