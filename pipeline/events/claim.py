"""``raw_files``: claim an hour's landed files (validate, stage, move to raw/, record).

Every write, move and manifest change happens in order on the calling thread; only reading and
staging in memory run ahead on worker threads. A killed claim is repaired by the next one.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from pipeline.events import layout, schema, transform
from pipeline.events.layout import FileEntry, Manifest
from pipeline.events.staging import in_order, staged_bytes
from pipeline.resources.lake import Lake, LakeObject, sha256_hex

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


@dataclass
class _Landed:
    """A candidate file read and, unless the manifest already knows its name, staged in memory:
    the pure part of claiming, computed ahead on worker threads (nothing is written here)."""

    data: bytes
    sha: str
    fname: schema.FileName
    staged: tuple[bytes, transform.Staged] | transform.BadFile | None = None  # None: not computed


def _stage_in_memory(data: bytes, fname: schema.FileName) -> tuple[bytes, transform.Staged] | transform.BadFile:
    try:
        staged = transform.stage(data, fname.name, fname.minute)
    except transform.BadFile as error:
        return error
    # The encoded rows are what is kept: the table goes, as files wait in the read-ahead queue.
    return staged_bytes(staged.cleaned), staged._replace(cleaned=None)


def _stage(lake: Lake, hour: pd.Timestamp, landed: _Landed, landed_at: str) -> FileEntry:
    """Keep one file's good rows staged and its bad rows aside; raises ``BadFile``."""
    fname, data = landed.fname, landed.data
    if landed.staged is None:
        landed.staged = _stage_in_memory(data, fname)
    if isinstance(landed.staged, transform.BadFile):
        raise landed.staged
    payload, staged = landed.staged
    entry = FileEntry(name=fname.name, minute=fname.minute.isoformat(), server=fname.server, size=len(data),
                      sha256=landed.sha, status="accepted", claimed_at=_now(), rows=staged.rows,
                      rejected_rows=staged.rejected.num_rows, malformed_rows=staged.malformed_rows,
                      extra_columns=list(staged.extra_columns), staged_key=layout.staged_key(hour, fname.name),
                      landed_at=landed_at)
    lake.write_bytes(entry.staged_key, payload)
    if entry.rejected_rows:
        rejected = staged.rejected.to_pandas()
        reasons = rejected["reason"].value_counts().to_dict()
        details = {"reasons": reasons}
        if staged.malformed_rows:
            details["expected_fields"] = len(schema.COLUMNS) + len(staged.extra_columns)
        layout.quarantine(lake, fname.name + ".rejected.csv", rejected.to_csv(index=False).encode(),
                          f"{len(rejected)} row(s) rejected", **details)
        entry.reason = "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items()))
    return entry


def claim_hour(lake: Lake, hour: pd.Timestamp, page_size: int = 1000,
               on_listed: Callable[[float], None] | None = None) -> ClaimReport:
    """Move the hour's landed files to ``raw/`` and record them; call under the hour's lock.

    ``on_listed`` is told when the listing of ``landing/`` began (epoch seconds), once it is done:
    every file landed before then is this claim's.
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

    known_before = dict(manifest.files)

    def read(candidate: tuple[LakeObject, bool]) -> _Landed:
        data = lake.read_bytes(candidate[0].key)
        landed = _Landed(data, sha256_hex(data), schema.parse_file_name(candidate[0].name))
        if landed.fname.name not in known_before:  # the usual case: it will be staged
            landed.staged = _stage_in_memory(data, landed.fname)
        return landed

    # Reading and staging (parse, validate, clean, encode) run ahead on worker threads; every
    # write, move and manifest change happens here, in order, as if there were no threads.
    for (obj, already_raw), landed in zip(candidates, in_order(candidates, read)):
        data, sha, fname = landed.data, landed.sha, landed.fname
        known = manifest.files.get(fname.name)
        if known is not None and known.sha256 == sha:
            if not already_raw:
                lake.delete(obj.key)  # identical re-landing: its content is already held
            report.duplicates.append(fname.name)
            continue
        if known is not None and known.status == "accepted":
            reason = (f"a different file named {fname.name} was already accepted for this minute; "
                      "land corrected data under a new name (e.g. another server suffix)")
            layout.quarantine(lake, fname.name, data, reason, accepted_sha256=known.sha256, sha256=sha)
            lake.delete(obj.key)
            report.quarantined[fname.name] = reason
            continue
        try:
            entry = _stage(lake, hour, landed, _landed_at(obj))
        except transform.BadFile as error:
            key = layout.quarantine(lake, fname.name, data, str(error), sha256=sha)
            lake.delete(obj.key)
            manifest.files[fname.name] = FileEntry(
                name=fname.name, minute=fname.minute.isoformat(), server=fname.server, size=len(data),
                sha256=sha, status="quarantined", reason=str(error), claimed_at=_now(), quarantine_key=key,
                landed_at=_landed_at(obj))
            report.quarantined[fname.name] = str(error)
            continue
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
        manifest.save(lake, hour)
    return report
