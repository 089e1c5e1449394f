"""Read every click file under the source prefix into one typed frame, through local copies.

This is the seed's "sync the bucket, then load": files are copied into the step's working folder
and parsed from there. A file that cannot be used is moved to quarantine with its reason; rows
that cannot be used are kept in quarantine with theirs. A column that no file has is not bad
input but a configuration mistake: that stops the run (naming the ini key) and moves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.clickstream import readers, storage, transform
from pipeline.clickstream.config import ClickstreamConfig, ConfigError
from pipeline.resources.lake import Lake


@dataclass
class SourceBatch:
    rows: pd.DataFrame
    files: list[str] = field(default_factory=list)
    rows_read: int = 0
    rows_rejected: int = 0
    quarantined: list[str] = field(default_factory=list)  # quarantine keys, files and rows


def load_source(lake: Lake, config: ClickstreamConfig, folder: Path, log) -> SourceBatch:
    objects = list(lake.list(config.source_prefix))
    frames: list[pd.DataFrame] = []
    batch = SourceBatch(rows=pd.DataFrame())
    unusable: dict[str, tuple[str, str]] = {}  # key -> (etag, reason)
    missing: dict[str, transform.MissingColumns] = {}
    for obj in objects:
        local = folder / "source" / obj.key[len(config.source_prefix) :]
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(lake.read_bytes(obj.key))
        try:
            raw = readers.read_table(local.read_bytes(), obj.name)
            normalized = transform.normalize(
                raw,
                date_column=config.date_column,
                target_column=config.target_column,
                group_columns=config.group_columns,
            )
        except transform.MissingColumns as error:
            missing[obj.key] = error
            unusable[obj.key] = (obj.etag, str(error))
            continue
        except (readers.UnreadableFile, transform.FileError) as error:
            unusable[obj.key] = (obj.etag, str(error))
            continue
        batch.files.append(obj.key)
        batch.rows_read += len(raw)
        frames.append(normalized.rows)
        if not normalized.rejected.empty:
            batch.rows_rejected += len(normalized.rejected)
            target = storage.quarantine_rows(
                lake, obj.key, obj.etag, config.source_prefix, normalized.rejected
            )
            batch.quarantined.append(target)
            log.warning(f"{obj.key}: {len(normalized.rejected)} row(s) cannot be used, kept in {target}")

    if missing and not frames:
        absent_everywhere = set.intersection(*(set(error.missing) for error in missing.values()))
        if absent_everywhere:
            raise ConfigError(_missing_message(config, sorted(absent_everywhere), missing))
    for key, (etag, reason) in unusable.items():
        target = storage.quarantine_file(lake, key, etag, config.source_prefix, reason)
        batch.quarantined.append(target)
        log.error(f"{key} cannot be used ({reason}); moved to {target}")

    batch.rows = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(
            {
                config.date_column: pd.Series(dtype="datetime64[ns]"),
                config.target_column: pd.Series(dtype="int64"),
                **{column: pd.Series(dtype=object) for column in config.group_columns},
            }
        )
    )
    return batch


def _missing_message(
    config: ClickstreamConfig, columns: list[str], missing: dict[str, transform.MissingColumns]
) -> str:
    named = "; ".join(f"column {column!r} named in {config.column_origin(column)}" for column in columns)
    found = sorted({column for error in missing.values() for column in error.found})
    return (
        f"{config.origin}: {named} is in none of the {len(missing)} source file(s) under "
        f"{config.source_prefix} (after the renames they have: {', '.join(found)}); nothing was quarantined"
    )
