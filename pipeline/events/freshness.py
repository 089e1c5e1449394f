"""How fresh t1 and the rankings are: their newest minute's lag behind the wall clock and behind
the newest landed file.

Definitions (the dashboard and the freshness checks use these):

- a minute is labelled by its start, so minute ``m`` holds events up to ``m + 1 min``;
- **lag behind the wall clock** = now - (newest minute + 1 min), at least 0: how old the newest
  data in the table is. Meaningful for live data only (open-ended partitions); a replay of history
  reports it but is not judged on it;
- **lag behind landing** = newest landed minute - newest minute, at least 0 (event time): how far
  the table is behind what has arrived. A landed file counts whether it still waits in
  ``landing/`` or was claimed already (its hour's manifest); backlog lands older than the newest
  minute, so it never counts.

The newest minute is t1's newest minute for t1 and the newest minute the rankings cover.
No Dagster here; :mod:`pipeline.events.freshness_checks` turns verdicts into asset checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import psycopg
from psycopg import sql

from pipeline.events import schema
from pipeline.events.tables import pairs, rank_table
from pipeline.resources.lake import Lake, ObjectGone
from pipeline.resources.warehouse import Warehouse
from pipeline.settings import Settings

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
MINUTE = pd.Timedelta(minutes=1)


@dataclass(frozen=True)
class Lag:
    """One table's freshness at ``now``; ``newest`` is None while the table is empty."""

    newest: pd.Timestamp | None
    newest_landed: pd.Timestamp | None
    now: pd.Timestamp

    @property
    def behind_wall_clock(self) -> pd.Timedelta | None:
        return None if self.newest is None else max(pd.Timedelta(0), self.now - (self.newest + MINUTE))

    @property
    def behind_landing(self) -> pd.Timedelta | None:
        if self.newest is None or self.newest_landed is None:
            return None
        return max(pd.Timedelta(0), self.newest_landed - self.newest)


@dataclass(frozen=True)
class Verdict:
    status: str  # PASS, WARN or FAIL
    description: str


def judge(lag: Lag, warn: pd.Timedelta, fail: pd.Timedelta, wall_clock: bool, what: str = "t1") -> Verdict:
    """PASS within ``warn``, WARN up to ``fail``, FAIL beyond; the worse of the two lags decides.

    ``wall_clock``: judge the wall-clock lag too (live data); otherwise only the landing lag.
    An empty table is a WARN once files have landed (nothing processed yet), else a PASS.
    """
    if lag.newest is None:
        if lag.newest_landed is None:
            return Verdict(PASS, f"{what} is empty and nothing has landed yet")
        return Verdict(WARN, f"{what} is empty although files up to {lag.newest_landed:%Y-%m-%d %H:%M} landed")
    judged = [("the newest landed file", lag.behind_landing)]
    if wall_clock:
        judged.append(("the wall clock", lag.behind_wall_clock))
    worst_name, worst = max(((n, v) for n, v in judged if v is not None), key=lambda item: item[1],
                            default=("the newest landed file", pd.Timedelta(0)))
    status = FAIL if worst > fail else WARN if worst > warn else PASS
    limit = {PASS: f"within {_minutes(warn)}", WARN: f"over {_minutes(warn)}", FAIL: f"over {_minutes(fail)}"}
    text = (f"{what}: newest minute {lag.newest:%Y-%m-%d %H:%M}, {_duration(worst)} behind {worst_name} "
            f"({limit[status]})")
    if not wall_clock and lag.behind_wall_clock is not None:
        text += "; the wall clock is not judged (PIPELINE_PARTITIONS_END is set: a replay of history)"
    return Verdict(status, text)


def _minutes(value: pd.Timedelta) -> str:
    return f"{value.total_seconds() / 60:g} min"


def _duration(value: pd.Timedelta) -> str:
    seconds = value.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def newest_landed_minute(lake: Lake, since: pd.Timestamp | None, now: pd.Timestamp) -> pd.Timestamp | None:
    """The newest minute of any landed file (waiting in landing/ or claimed), from ``since``'s hour on.

    Only hours from ``since`` on are read (the live lane of the landing listing and the newest
    manifests), so the cost does not grow with history. Names that do not parse and minutes after
    ``now`` (a producer's clock running ahead) are left out.
    """
    start = "" if since is None else since.floor("h").strftime("%Y-%m-%d-%H")
    newest: pd.Timestamp | None = None

    def consider(minute: pd.Timestamp) -> None:
        nonlocal newest
        if minute <= now and (newest is None or minute > newest):
            newest = minute

    for obj in lake.list("landing/", start_after=f"landing/{start}" if start else ""):
        try:
            consider(schema.parse_file_name(obj.name).minute)
        except schema.BadFileName:
            continue
    for obj in lake.list("manifests/", start_after=f"manifests/{start}" if start else ""):
        try:
            files = json.loads(lake.read_text(obj.key)).get("files", {})
        except ObjectGone:
            continue
        for entry in files.values():
            if entry.get("status") == "accepted":
                consider(pd.Timestamp(entry["minute"]).tz_convert("UTC"))
    return newest


def newest_ranked_minute(warehouse: Warehouse, settings: Settings) -> pd.Timestamp | None:
    """The newest minute the rankings cover (their window ends a minute after it), None before
    the first ranking."""
    # Every table: one can be empty (no purchase in the window) while the others are ranked.
    query = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT max(window_end) FROM {}").format(rank_table(e, d).table)
        for e, d in pairs(settings.events, settings.dimensions))
    try:
        frame = warehouse.read_frame(sql.SQL("SELECT max(m) FROM ({}) AS q(m)").format(query))
    except psycopg.errors.UndefinedTable:
        return None
    value = frame.iloc[0, 0] if len(frame) else None
    return None if value is None or pd.isna(value) else pd.Timestamp(value).tz_convert("UTC") - MINUTE

