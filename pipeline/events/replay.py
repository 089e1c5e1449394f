"""Land a folder of event files into the lake's ``landing/`` the way live servers would.

The platform must end up with the same tables whatever the arrival order, so a replay can do
more than copy a folder: it paces the files (N minutes of files every S seconds), shifts them to
the current time like the seed's mimic server, holds some back to land them late, and lands an
identical copy of some again after the original. Which file lands when is decided up front by
:func:`plan_replay`, a pure function of the names and a seed, so tests can check the order.
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

from pipeline.events.generate import GZIP_LEVEL

if TYPE_CHECKING:  # the lake module imports dagster; a replay only needs its write_bytes
    from pipeline.resources.lake import Lake

LANDING_PREFIX = "landing/"
# A duplicate lands 1 to this many batches after its original, so that with pacing the platform
# has usually claimed (moved away) the original and the copy arrives as a new object.
MAX_DUPLICATE_DELAY = 3

Landing = Literal["on_time", "duplicate", "late"]
_LANDING_ORDER = {"on_time": 0, "duplicate": 1, "late": 2}
_FILE_NAME = re.compile(
    r"^(?P<stamp>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})"
    r"-(?P<server>[A-Za-z0-9][A-Za-z0-9_-]{0,63})"  # as in schema.py
    r"(?P<suffix>\.csv(?:\.gz)?)$"
)
_NAME_GRAMMAR = "YYYY-MM-DD-HH-MM-SS-<server>.csv[.gz]"
_NAME_STAMP = "%Y-%m-%d-%H-%M-%S"
# The minute of the time that starts a line: the event_time column ("2019-10-01 00:05" of
# "2019-10-01 00:05:17 UTC,view,...").
_EVENT_MINUTE = re.compile(rb"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}):", re.MULTILINE)
_EVENT_MINUTE_FORMAT = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class ReplayStep:
    """One landing: file ``name`` as part of ``batch`` (a paced replay waits between batches)."""

    name: str
    kind: Landing
    batch: int

    @property
    def late(self) -> bool:
        return self.kind == "late"

    @property
    def duplicate(self) -> bool:
        return self.kind == "duplicate"


@dataclass(frozen=True)
class ReplaySummary:
    landed: int  # every object written, late files and duplicates included
    late: int
    duplicates: int
    bytes: int
    shifted_minutes: int = 0


@dataclass(frozen=True)
class ReplayPlan:
    """The options of a replay, checked once so a bad value fails before anything lands."""

    pace_seconds: float = 0.0  # pause between batches; 0 lands everything at once
    minutes_per_step: int = 1  # minutes of files per batch
    shift_to_now: bool = False
    late_fraction: float = 0.0
    duplicate_fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.pace_seconds) and self.pace_seconds >= 0):
            raise ValueError(f"pace_seconds must be 0 or more, got {self.pace_seconds}")
        if self.minutes_per_step < 1:
            raise ValueError(f"minutes_per_step must be at least 1, got {self.minutes_per_step}")
        for name in ("late_fraction", "duplicate_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")

    def steps(self, files: list[str]) -> list[ReplayStep]:
        return plan_replay(
            files,
            late_fraction=self.late_fraction,
            duplicate_fraction=self.duplicate_fraction,
            seed=self.seed,
            minutes_per_step=self.minutes_per_step,
        )


def plan_replay(
    files: list[str],
    *,
    late_fraction: float = 0.0,
    duplicate_fraction: float = 0.0,
    seed: int = 0,
    minutes_per_step: int = 1,
) -> list[ReplayStep]:
    """Decide the landing order of ``files`` (names).

    On-time files land in time order, grouped in batches of ``minutes_per_step`` minutes (minutes
    without files make no batch). ``round(late_fraction * n)`` files are held back and land in one
    extra batch after every on-time file. ``round(duplicate_fraction * n)`` on-time files land a
    second time, at the end of a batch 1 to ``MAX_DUPLICATE_DELAY`` batches after their original
    (at the latest in the extra batch, before the late files).
    """
    ReplayPlan(  # checks the options
        minutes_per_step=minutes_per_step, late_fraction=late_fraction, duplicate_fraction=duplicate_fraction
    )
    times = _file_times(files)
    ordered = sorted(times, key=lambda name: (times[name], name))
    rng = random.Random(seed)
    late = set(rng.sample(ordered, round(late_fraction * len(ordered))))
    on_time = [name for name in ordered if name not in late]
    duplicated = set(rng.sample(on_time, min(len(on_time), round(duplicate_fraction * len(ordered)))))

    first = times[on_time[0]] if on_time else None
    windows = [_minutes(first, times[name]) // minutes_per_step for name in on_time]
    dense = {window: index for index, window in enumerate(sorted(set(windows)))}
    batch_of = {name: dense[window] for name, window in zip(on_time, windows)}
    final = len(dense)

    steps = [ReplayStep(name, "on_time", batch_of[name]) for name in on_time]
    steps += [
        ReplayStep(name, "duplicate", min(final, batch_of[name] + rng.randint(1, MAX_DUPLICATE_DELAY)))
        for name in on_time
        if name in duplicated
    ]
    steps += [ReplayStep(name, "late", final) for name in ordered if name in late]
    return sorted(steps, key=lambda step: (step.batch, _LANDING_ORDER[step.kind]))  # stable: keeps time order


def shift_minutes(names: list[str], now: dt.datetime) -> int:
    """Whole minutes to add to every file so that the newest one is ``now``'s minute."""
    if not names:
        raise ValueError("no file names to shift")
    newest = max(_file_times(names).values())
    return _minutes(_floor_minute(newest), _floor_minute(_utc(now)))


def shift_file(name: str, data: bytes, minutes: int) -> tuple[str, bytes]:
    """Move a file ``minutes`` later (earlier if negative): its name and every ``event_time``.

    Only the minute part changes, so seconds and every other column stay byte for byte. A
    ``.csv.gz`` file is decompressed, shifted and compressed again (reproducibly).
    """
    if minutes == 0:
        return name, data
    match = _match_name(name)
    stamp = _parse_stamp(name, match["stamp"]) + dt.timedelta(minutes=minutes)
    new_name = f"{stamp:{_NAME_STAMP}}-{match['server']}{match['suffix']}"
    packed = match["suffix"].endswith(".gz")
    if packed:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise ValueError(f"{name}: cannot shift a damaged gzip file ({error})") from error
    if not data.startswith(b"event_time,"):
        raise ValueError(f"{name}: the first column is not event_time, so its times cannot be shifted")
    shifted = _shift_event_times(data, dt.timedelta(minutes=minutes))
    return new_name, gzip.compress(shifted, compresslevel=GZIP_LEVEL, mtime=0) if packed else shifted


def replay(
    source_dir: Path,
    lake: Lake,
    *,
    pace_seconds: float = 0.0,
    minutes_per_step: int = 1,
    shift_to_now: bool = False,
    late_fraction: float = 0.0,
    duplicate_fraction: float = 0.0,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: dt.datetime | None = None,
) -> ReplaySummary:
    """Land the files of ``source_dir`` into ``landing/<name>`` following :func:`plan_replay`.

    With ``pace_seconds`` > 0 it sleeps that long between batches (never before the first or
    after the last). With ``shift_to_now`` every name and event time moves by the same whole
    number of minutes so that the newest file is the current minute (``now``, UTC, for tests).
    ``progress`` is called with 1 after each landed object. A duplicate is read and shifted again,
    so it has exactly the bytes of its original. Without pacing it lands before the platform can
    claim its original and merely rewrites it: duplicates test something only with a pace.
    """
    plan = ReplayPlan(pace_seconds, minutes_per_step, shift_to_now, late_fraction, duplicate_fraction, seed)
    source_dir = Path(source_dir)
    if not source_dir.is_dir():
        raise ValueError(f"replay source {source_dir} is not a folder")
    names = sorted(p.name for p in source_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    if not names:
        raise ValueError(f"no event files in {source_dir}")
    steps = plan.steps(names)
    minutes = shift_minutes(names, now or dt.datetime.now(dt.timezone.utc)) if shift_to_now else 0

    landed = late = duplicates = written = 0
    batch = steps[0].batch
    for step in steps:
        if step.batch != batch:
            batch = step.batch
            if pace_seconds > 0:
                sleep(pace_seconds)
        name, data = shift_file(step.name, (source_dir / step.name).read_bytes(), minutes)
        lake.write_bytes(LANDING_PREFIX + name, data)
        landed += 1
        late += step.late
        duplicates += step.duplicate
        written += len(data)
        if progress is not None:
            progress(1)
    return ReplaySummary(
        landed=landed, late=late, duplicates=duplicates, bytes=written, shifted_minutes=minutes
    )


# --- names and times ------------------------------------------------------------------------


def _match_name(name: str) -> re.Match[str]:
    match = _FILE_NAME.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not an event file name: expected {_NAME_GRAMMAR}")
    return match


def _parse_stamp(name: str, stamp: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(stamp, _NAME_STAMP).replace(tzinfo=dt.timezone.utc)
    except ValueError as error:
        raise ValueError(f"{name!r} does not name a valid time ({error})") from error


def _file_times(names: list[str]) -> dict[str, dt.datetime]:
    if len(set(names)) != len(names):
        raise ValueError("the same file name is listed twice")
    times, bad = {}, []
    for name in names:
        try:
            times[name] = _parse_stamp(name, _match_name(name)["stamp"])
        except ValueError:
            bad.append(name)
    if bad:
        shown = ", ".join(repr(name) for name in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ValueError(f"cannot replay files whose names are not {_NAME_GRAMMAR}: {shown}{more}")
    return times


def _utc(value: dt.datetime) -> dt.datetime:
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)


def _floor_minute(value: dt.datetime) -> dt.datetime:
    return value.replace(second=0, microsecond=0)


def _minutes(start: dt.datetime, end: dt.datetime) -> int:
    return int((end - start).total_seconds() // 60)


def _shift_event_times(text: bytes, delta: dt.timedelta) -> bytes:
    """Replace each distinct minute once, with ``bytes.replace`` (a file holds one or a few minutes).

    Minutes are handled from the far end of the shift backwards, so no line moves twice.
    """
    minutes = sorted(set(_EVENT_MINUTE.findall(text)), reverse=delta > dt.timedelta(0))
    for old in minutes:
        try:
            when = dt.datetime.strptime(old.decode("ascii"), _EVENT_MINUTE_FORMAT) + delta
        except ValueError:  # not a real time (say month 13): left as is for the platform to report
            continue
        new = when.strftime(_EVENT_MINUTE_FORMAT).encode("ascii")
        text = text.replace(b"\n" + old + b":", b"\n" + new + b":")
    return text
