"""Where the event system keeps things in the lake, and the state it can always re-read.

    landing/<file>                     files as they arrive (the sensor watches this prefix)
    raw/<hour>/<file>                  claimed files, deleted only once archived and verified
    staged/<hour>/<file>.<sha>.arrow   the file's accepted rows, typed and cleaned (read by t1);
                                       ``.parquet`` when the Spark engine staged them
    manifests/<hour>.json              what was claimed for the hour: sizes, checksums, rows, verdicts
    aggregates/<hour>.parquet          the hour's minute aggregates (t2 is rebuilt from these)
    pending/<hour>                     claimed files not yet through t1 and t2 (a killed run leaves it)
    archive/<block>.csv.gz             every accepted file's rows, one gzipped CSV per day or hour
    quarantine/<file> (+ .reason.json) files that cannot be used, rows that were rejected
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, fields

import pandas as pd

from pipeline.resources.lake import Lake

PARTITION_FORMAT = "%Y-%m-%d-%H:%M"


def hour_start(partition_key: str) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.strptime(partition_key, PARTITION_FORMAT), tz="UTC")


def partition_key(ts: pd.Timestamp) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").floor("h").strftime(PARTITION_FORMAT)


def slug(ts: pd.Timestamp) -> str:
    """Lake-safe name of an hour (``2019-10-01-05``)."""
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%d-%H")


def hour_lock_name(hour: pd.Timestamp) -> str:
    """The PostgreSQL advisory lock that serialises every read-compute-replace of one hour."""
    return f"events-hour-{slug(hour)}"


def block_hours(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """The hours of ``[start, end)``: a run's partition range, an archive block."""
    return list(pd.date_range(start, end, freq="h", inclusive="left"))


def landing_prefix(hour: pd.Timestamp) -> str:
    """Where an hour's files land: names start with their minute."""
    return "landing/" + pd.Timestamp(hour).tz_convert("UTC").strftime("%Y-%m-%d-%H-")


def raw_key(hour: pd.Timestamp, name: str) -> str:
    return f"raw/{slug(hour)}/{name}"


def staged_key(hour: pd.Timestamp, name: str, sha256: str, parquet: bool = False) -> str:
    """Arrow IPC: written once and read whole by t1 (a minute at a time), where it is several
    times faster than Parquet on 10,000-row files; Parquet stays the format of what is kept, and
    of what the Spark engine stages (``parquet``: Spark reads it natively). The checksum in the key
    makes a key hold one content only, so staging can run ahead of claiming."""
    return f"staged/{slug(hour)}/{name}.{sha256[:16]}.{'parquet' if parquet else 'arrow'}"


def manifest_key(hour: pd.Timestamp) -> str:
    return f"manifests/{slug(hour)}.json"


def aggregates_key(hour: pd.Timestamp) -> str:
    return f"aggregates/{slug(hour)}.parquet"


def pending_key(hour: pd.Timestamp) -> str:
    return f"pending/{slug(hour)}"


def hour_of_slug(text: str) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.strptime(text, "%Y-%m-%d-%H"), tz="UTC")


def rejected_key(hour: pd.Timestamp, name: str, sha256: str) -> str:
    """A staged file's rejected rows (CSV), until claiming moves them into quarantine/."""
    return f"staged/{slug(hour)}/{name}.{sha256[:16]}.rejected.csv"


def _quarantine_key(name: str) -> str:
    return f"quarantine/{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S%f')}-{name}"


def _reason(lake: Lake, key: str, name: str, reason: str, details: dict) -> None:
    lake.write_text(key + ".reason.json", json.dumps({"file": name, "reason": reason, **details}, indent=2))


def quarantine(lake: Lake, name: str, data: bytes, reason: str, **details) -> str:
    """Keep an unusable file with a machine- and human-readable reason next to it."""
    key = _quarantine_key(name)
    lake.write_bytes(key, data)
    _reason(lake, key, name, reason, details)
    return key


def quarantine_object(lake: Lake, source: str, name: str, reason: str, **details) -> str:
    """``quarantine`` for an object already in the lake: moved there, its bytes never read here."""
    key = _quarantine_key(name)
    lake.move(source, key)
    _reason(lake, key, name, reason, details)
    return key


@dataclass
class FileEntry:
    name: str
    minute: str  # ISO UTC minute the file's name says
    server: str
    size: int
    sha256: str
    status: str  # "accepted" | "quarantined"
    rows: int = 0  # data rows in the file
    rejected_rows: int = 0  # rows not used: bad values, or a wrong number of fields (malformed_rows)
    reason: str = ""
    claimed_at: str = ""
    quarantine_key: str = ""
    staged_key: str = ""  # where its accepted rows are; "" in manifests older than the field
    malformed_rows: int = 0  # lines with a wrong number of fields: no columns, so not in the archive
    extra_columns: list[str] = field(default_factory=list)  # header columns beyond schema.COLUMNS
    landed_at: str = ""  # when it landed: the landed object's modification time (ISO UTC)
    in_t1_at: str = ""  # when the t1 transaction that first held its rows committed ("": not in t1)

    def staged(self, hour: pd.Timestamp) -> str:
        return self.staged_key or f"staged/{slug(hour)}/{self.name}.parquet"  # the earlier format

    @property
    def archived_rows(self) -> int:
        """The rows the file's archive holds: every data line with the header's field count."""
        return self.rows - self.malformed_rows


def _known(entry: dict) -> dict:
    """The fields this version knows: a manifest written by a newer version still loads."""
    names = {f.name for f in fields(FileEntry)}
    return {key: value for key, value in entry.items() if key in names}


@dataclass
class Manifest:
    """Everything claimed for one hour; rewritten whole (atomically) by the claiming run."""

    hour: str
    files: dict[str, FileEntry] = field(default_factory=dict)

    @classmethod
    def load(cls, lake: Lake, hour: pd.Timestamp) -> "Manifest":
        key = manifest_key(hour)
        if not lake.exists(key):
            return cls(hour=hour.isoformat())
        data = json.loads(lake.read_text(key))
        return cls(hour=data["hour"], files={n: FileEntry(**_known(e)) for n, e in data["files"].items()})

    def save(self, lake: Lake, hour: pd.Timestamp) -> None:
        payload = {"hour": self.hour, "files": {n: asdict(e) for n, e in sorted(self.files.items())}}
        lake.write_text(manifest_key(hour), json.dumps(payload, indent=1))

    def accepted(self) -> list[FileEntry]:
        return [e for e in self.files.values() if e.status == "accepted"]

    def accepted_by_minute(self) -> dict[str, list[str]]:
        """Minute (ISO) -> sorted ``name:sha256`` of its accepted files: the minute's input identity."""
        by_minute: dict[str, list[str]] = {}
        for entry in self.accepted():
            by_minute.setdefault(entry.minute, []).append(f"{entry.name}:{entry.sha256}")
        return {minute: sorted(files) for minute, files in by_minute.items()}
