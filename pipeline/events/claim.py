"""``raw_files``: claim an hour's landed files (validate, stage, move to raw/, record).

Staging (the work) runs on the engine's workers; every decision, move and manifest change
happens in order on the calling thread. A killed claim is repaired by the next one.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from pipeline.events import layout, schema
from pipeline.events.engine import Engine
from pipeline.events.layout import FileEntry, Manifest
from pipeline.events.staging import StagedFile, StageTask, forget, stage_file
from pipeline.resources.lake import Lake, LakeObject

# Run tag: {hour partition key: epoch seconds when the run's claim began listing it}. A file landed
# before that is the run's; one landed after is not (the landing sensor asks a follow-up for it).
LISTED_TAG = "clickflow/listed"


@dataclass
class ClaimReport:
    claimed: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)  # name -> reason
    extra_columns: dict[str, list[str]] = field(default_factory=dict)  # accepted file -> its extra columns
    rows: int = 0
    rejected_rows: int = 0
    malformed_rows: int = 0  # of the rejected rows, lines with a wrong number of fields
    bytes: int = 0

    def merge(self, other: "ClaimReport") -> None:
        self.claimed += other.claimed
        self.duplicates += other.duplicates
        self.quarantined.update(other.quarantined)
        self.extra_columns.update(other.extra_columns)
        self.rows += other.rows
        self.rejected_rows += other.rejected_rows
        self.malformed_rows += other.malformed_rows
        self.bytes += other.bytes


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _landed_at(obj: LakeObject) -> str:
    """When the object landed, as storage says (folder mtime, S3 LastModified)."""
    if obj.modified is None:
        return ""
    return dt.datetime.fromtimestamp(obj.modified, dt.timezone.utc).isoformat(timespec="milliseconds")


def claim_hour(lake: Lake, hour: pd.Timestamp, engine: Engine, page_size: int = 1000,
               on_listed: Callable[[float], None] | None = None) -> ClaimReport:
    """Move the hour's landed files to ``raw/`` and record them; call under the hour's lock.

    The engine stages the files (reads, checks, writes their rows beside: the work, on worker
    threads, processes or executors); this thread then decides, file by file in listing order,
    what each becomes, and alone moves, quarantines and records, so a killed claim leaves
    nothing a later one cannot repair. ``on_listed`` is told when the listing of ``landing/``
    began (epoch seconds), once it is done: every file landed before then is this claim's.
    """
    report = ClaimReport()
    manifest = Manifest.load(lake, hour)
    prefix = layout.landing_prefix(hour)
    listing_began = time.time()

    # Adopt files a killed run moved to raw/ without recording them (move happens before save).
    candidates = [(obj, True) for obj in lake.list(f"raw/{layout.slug(hour)}/", page_size)
                  if obj.name not in manifest.files]
    candidates += [(obj, False) for obj in lake.list(prefix, page_size)]
    if on_listed is not None:
        on_listed(listing_began)
    if candidates:
        # Before the first move: once a file has left landing/, only this marker asks for the
        # hour again if the run dies (t2_hour clears it once the hour is complete).
        lake.write_text(layout.pending_key(hour), _now())

    tasks = [StageTask(obj.key, hour, checksum_only=obj.name in manifest.files) for obj, _ in candidates]
    durable = []  # written by staging, referred to by the manifest: synced before it is saved

    def drop(staged: StagedFile) -> None:
        """What staging wrote for a file that is not accepted (unless it is the accepted file's
        own, same bytes under the same key)."""
        accepted = manifest.files.get(staged.name)
        for key in (staged.staged_key, staged.rejected_key):
            if key and (accepted is None or key not in (accepted.staged_key, accepted.quarantine_key)):
                lake.delete(key)
                forget(key)

    for (obj, already_raw), staged in zip(candidates, engine.stage(lake, tasks)):
        if staged.gone:
            continue  # another claim took it between the listing and the reading
        fname = schema.parse_file_name(staged.name)
        known = manifest.files.get(fname.name)
        if known is not None and known.sha256 == staged.sha256:
            if not already_raw:
                lake.delete(obj.key)  # identical re-landing: its content is already held
            drop(staged)
            report.duplicates.append(fname.name)
            continue
        if known is not None and known.status == "accepted":
            reason = (f"a different file named {fname.name} was already accepted for this minute; "
                      "land corrected data under a new name (e.g. another server suffix)")
            layout.quarantine_object(lake, obj.key, fname.name, reason, accepted_sha256=known.sha256,
                                     sha256=staged.sha256)
            drop(staged)
            report.quarantined[fname.name] = reason
            continue
        if known is not None:  # quarantined before; a new content under its name: staged afresh
            staged, _ = stage_file(lake, StageTask(obj.key, hour))
        if staged.error:
            key = layout.quarantine_object(lake, obj.key, fname.name, staged.error, sha256=staged.sha256)
            manifest.files[fname.name] = FileEntry(
                name=fname.name, minute=fname.minute.isoformat(), server=fname.server, size=staged.size,
                sha256=staged.sha256, status="quarantined", reason=staged.error, claimed_at=_now(),
                quarantine_key=key, landed_at=_landed_at(obj))
            report.quarantined[fname.name] = staged.error
            continue
        entry = FileEntry(name=fname.name, minute=fname.minute.isoformat(), server=fname.server, size=staged.size,
                          sha256=staged.sha256, status="accepted", claimed_at=_now(), rows=staged.rows,
                          rejected_rows=staged.rejected_rows, malformed_rows=staged.malformed_rows,
                          extra_columns=list(staged.extra_columns), staged_key=staged.staged_key,
                          landed_at=_landed_at(obj))
        durable.append(staged.staged_key)
        if staged.rejected_rows:
            details = {"reasons": staged.reasons}
            if staged.malformed_rows:
                details["expected_fields"] = len(schema.COLUMNS) + len(staged.extra_columns)
            quarantined = layout.quarantine_object(lake, staged.rejected_key, fname.name + ".rejected.csv",
                                                   f"{staged.rejected_rows} row(s) rejected", **details)
            durable.append(quarantined)
            entry.reason = "; ".join(f"{n} x {r}" for r, n in sorted(staged.reasons.items()))
        if not already_raw:
            lake.move(obj.key, layout.raw_key(hour, fname.name))
        manifest.files[fname.name] = entry
        report.claimed.append(fname.name)
        report.rows += entry.rows
        report.rejected_rows += entry.rejected_rows
        report.malformed_rows += entry.malformed_rows
        if entry.extra_columns:
            report.extra_columns[fname.name] = entry.extra_columns
        report.bytes += entry.size
    if report.claimed or report.quarantined:
        # The manifest refers to the staged rows: they are on disk before it is.
        lake.sync(durable)
        manifest.save(lake, hour)
    return report
