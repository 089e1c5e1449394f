"""``archive``: one gzipped CSV per block, written, read back and verified per file before the
block's raw files are deleted.

Columns: ``source_file``, then ``schema.COLUMNS``; when a file of the block has columns beyond
those (an additive schema change), a trailing ``extra`` column holds each row's other values as a
JSON object in the file's column order (empty for files without). Lines with a wrong number of
fields have no columns: they are not archived, their text stays in quarantine.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from pipeline.events import layout, schema, transform
from pipeline.events.archive_format import read_archive, text_columns
from pipeline.events.engine import Engine
from pipeline.events.layout import FileEntry, Manifest, block_hours, hour_lock_name
from pipeline.resources.lake import Lake, LocalLake, sha256_hex
from pipeline.resources.warehouse import Warehouse


@dataclass
class ArchiveReport:
    key: str = ""
    files: int = 0
    rows: int = 0
    bytes: int = 0
    raw_deleted: int = 0
    settled: bool = True
    written_by: str = ""  # "pandas" (this process) or "spark"
    note: str = ""  # why an archive meant for Spark was written here instead


def archive_key(start: pd.Timestamp, end: pd.Timestamp) -> str:
    span = "%Y-%m-%d" if end - start >= pd.Timedelta(days=1) else "%Y-%m-%d-%H"
    return f"archive/{start.strftime(span)}.csv.gz"


EXTRA = "extra"


def _raw_text_frame(data: bytes, name: str) -> pd.DataFrame:
    """A file's rows as the platform's parser reads them (``transform.read_file``), as text
    (missing = empty), in the standard column order, plus ``extra`` when the file has other columns."""
    parsed = transform.read_file(data, name)
    frame = text_columns(parsed.rows).to_pandas()
    if parsed.extra is not None:
        frame[EXTRA] = _extra_json(parsed.extra)
    return frame


def _extra_json(extra) -> list[str]:
    """One JSON object per row: the file's other columns and their text (missing = empty)."""
    names = extra.column_names
    columns = [[value or "" for value in extra.column(n).to_pylist()] for n in names]
    return [json.dumps(dict(zip(names, values)), ensure_ascii=False) for values in zip(*columns)]


def _file_digests(frame: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """source_file -> (rows, sha256 of its rows as CSV): what an archive must give back."""
    columns = [c for c in frame.columns if c != "source_file"]
    digests = {}
    for name, part in frame.groupby("source_file", sort=True):
        text = part[columns].to_csv(index=False, header=False)
        digests[name] = (len(part), sha256_hex(text.encode()))
    return digests


def _read_archive(lake: Lake, key: str) -> pd.DataFrame:
    return read_archive(lake.read_bytes(key))


def archive_block(lake: Lake, warehouse: Warehouse, start: pd.Timestamp, end: pd.Timestamp,
                  engine: Engine | None = None) -> ArchiveReport:
    """Write the block's archive from its raw files (plus what an earlier archive already holds),
    read it back, verify rows and checksums per file, and only then delete the raw files.

    The pandas engine does it in this process. With Spark (``spark_archive``) the cluster reads,
    orders, writes and reads back, and only per-file digests come here, where they are checked
    against the rows as this platform's own parser reads them; a Spark archive that does not
    verify (Spark's CSV reader disagrees on some oddly quoted value) is written here instead.
    """
    hours = block_hours(start, end)
    report = ArchiveReport(key=archive_key(start, end))
    with warehouse.advisory_lock(*(hour_lock_name(h) for h in hours)):
        accepted: dict[str, FileEntry] = {}
        raw_present: dict[str, str] = {}
        for hour in hours:
            for entry in Manifest.load(lake, hour).accepted():
                accepted[entry.name] = entry
            for obj in lake.list(f"raw/{layout.slug(hour)}/"):
                raw_present[obj.name] = obj.key
        raw = {name: raw_present[name] for name in sorted(accepted) if name in raw_present}
        if not raw:
            return report  # nothing new since the last archive of this block
        kept = [name for name in sorted(accepted) if name not in raw_present]
        rows_of = {name: entry.archived_rows for name, entry in accepted.items()}
        staging = report.key.replace("archive/", "archive-staging/", 1)
        expected = None
        if engine is not None and engine.name == "spark":
            try:
                _spark_can_write([accepted[name] for name in [*raw, *kept]])
                report.bytes, expected = _archive_on_spark(lake, report.key, staging, raw, kept, rows_of, engine)
                report.written_by = "spark"
            except _NotOnSpark as reason:
                report.note = str(reason)
        if expected is None:
            report.bytes, expected = _archive_here(lake, report.key, staging, raw, kept, rows_of)
            report.written_by = "pandas"
        lake.move(staging, report.key)
        for name, key in raw_present.items():
            if name in expected:  # only files the verified archive holds
                lake.delete(key)
                report.raw_deleted += 1
        report.files, report.rows = len(expected), sum(rows for rows, _ in expected.values())
    return report


Digests = dict[str, tuple[int, str]]


class _NotOnSpark(Exception):
    """Why a block meant for Spark is archived in this process instead."""


def _spark_can_write(entries: list[FileEntry]) -> None:
    """The Spark archive carries the standard columns only, and its reader refuses a line with a
    wrong field count: a block with such files is archived in this process."""
    irregular = [e.name for e in entries if e.extra_columns or e.malformed_rows]
    if irregular:
        raise _NotOnSpark(f"archived in this process: {len(irregular)} file(s) of the block have extra columns "
                          f"or lines with a wrong number of fields (e.g. {irregular[0]}), which the Spark "
                          "archive does not carry")


def _check_rows(key: str, expected: Digests, kept: list[str], rows_of: dict[str, int]) -> None:
    """Refuse, before anything is written, an archive that would lose a file or rows."""
    missing = [name for name in kept if name not in expected]
    if missing:
        raise RuntimeError(
            f"accepted file {missing[0]} is neither in raw/ nor in {key}: refusing to write an "
            "archive that would lose it; restore the file into raw/ and re-run"
        )
    for name, (rows, _) in expected.items():
        if rows != rows_of[name]:
            raise RuntimeError(f"{name}: {rows} rows prepared for the archive, the manifest says "
                               f"{rows_of[name]}; nothing was deleted")


def _check_read_back(lake: Lake, key: str, staging: str, expected: Digests,
                     read_back: Callable[[str], Digests]) -> None:
    """Check, file by file, what reads back from the archive stored at ``staging``. Raises
    ``RuntimeError`` (staging removed)."""
    try:
        readback = read_back(staging)
    except Exception as error:  # an archive that cannot be read back failed verification too
        lake.delete(staging)
        raise RuntimeError(f"archive {key} failed verification: it cannot be read back "
                           f"({type(error).__name__}); the raw files are kept") from error
    if readback != expected:
        bad = sorted(n for n in expected if readback.get(n) != expected[n])
        lake.delete(staging)
        raise RuntimeError(f"archive {key} failed verification for {len(bad)} file(s) "
                           f"(e.g. {bad[:3]}); the raw files are kept")


def _archive_here(lake: Lake, key: str, staging: str, raw: dict[str, str], kept: list[str],
                  rows_of: dict[str, int]) -> tuple[int, Digests]:
    """The archive built in this process and stored, verified, at ``staging``; returns its size
    and per-file digests."""
    previous = _read_archive(lake, key) if kept and lake.exists(key) else None
    parts = []
    for name in sorted([*raw, *kept]):
        if name in raw:
            part = _raw_text_frame(lake.read_bytes(raw[name]), name)
            part.insert(0, "source_file", name)
            parts.append(part)
        elif previous is not None:
            parts.append(previous[previous["source_file"] == name])
    frame = pd.concat(parts, ignore_index=True)
    if EXTRA in frame.columns:  # a file with extra columns in the block (now or in the earlier archive)
        frame = frame[["source_file", *schema.COLUMNS, EXTRA]].fillna({EXTRA: ""})
    expected = _file_digests(frame)
    _check_rows(key, expected, kept, rows_of)
    payload = gzip.compress(frame.to_csv(index=False).encode(), compresslevel=6)
    lake.write_bytes(staging, payload)
    _check_read_back(lake, key, staging, expected, lambda staged: _file_digests(_read_archive(lake, staged)))
    return len(payload), expected


def _archive_on_spark(lake: Lake, key: str, staging: str, raw: dict[str, str], kept: list[str],
                      rows_of: dict[str, int], engine: Engine) -> tuple[int, Digests]:
    """The archive written by the executors and verified against this platform's parser (raw
    files, each parsed on an executor) and the earlier verified archive (kept files); only
    digests, header lines and sizes come here. Raises ``_NotOnSpark`` to have it written here.

    A folder lake (on a cluster, a folder every executor mounts): Spark's CSV source and writer,
    the written part renamed to ``staging``. An S3 lake: executor tasks read and write the
    objects through the lake client.
    """
    from pipeline.events import spark_archive

    spark = engine.session()
    spec, read = lake.reopen(), engine.accumulator(spark)
    # The reference for raw files is the platform's own parser (Arrow), not Spark's reading.
    references = _raw_references(lake, raw, engine, spark)
    previous = key if kept and lake.exists(key) else None
    if isinstance(lake, LocalLake):
        by_header: dict[bytes, list[Path]] = {}
        for name, (_, header) in references.items():
            by_header.setdefault(header, []).append(lake.path(raw[name]))
        rows = spark_archive.folder_rows(spark, list(by_header.values()), previous and lake.path(previous), kept)
    else:
        sources = [*sorted(raw.items()), *([("", previous)] if previous else [])]
        rows = spark_archive.lake_rows(engine.task_frame(spark, sources, _SOURCES), spec, read, kept)
    rows = rows.cache()  # read once, for the kept files' digests, the sort's sample and the write
    try:
        try:
            expected = spark_archive.digests(rows, only=kept) if kept else {}
        except Exception as error:  # e.g. a value Spark's CSV reader refuses to parse
            raise _NotOnSpark(f"archived in this process: Spark could not read the block "
                              f"({type(error).__name__})") from error
        expected.update({name: digest for name, (digest, _) in references.items()})
        try:
            _check_rows(key, expected, kept, rows_of)
        except RuntimeError as error:
            raise _NotOnSpark(f"archived in this process: {error}") from error
        try:
            size = _write_on_spark(lake, rows, spec, staging)
        except Exception as error:
            raise _NotOnSpark(f"archived in this process: Spark could not read the block or write its "
                              f"archive ({type(error).__name__})") from error
    finally:
        rows.unpersist()

    def read_back(staged: str) -> Digests:
        if isinstance(lake, LocalLake):
            return spark_archive.digests(spark_archive.archived_rows(spark, lake.path(staged)))
        return spark_archive.digests(spark_archive.lake_rows(
            engine.task_frame(spark, [("", staged)], _SOURCES), spec, read))

    try:
        _check_read_back(lake, key, staging, expected, read_back)
    except RuntimeError as error:
        raise _NotOnSpark(f"archived in this process: the archive Spark wrote did not verify ({error})") from error
    return size, expected


_SOURCES = "name string, key string"  # ``spark_archive.lake_rows``' input


def _write_on_spark(lake: Lake, rows, spec: tuple[str, str | None], staging: str) -> int:
    """The ordered archive stored at ``staging`` by the executors; its size."""
    from pipeline.events import spark_archive

    if not isinstance(lake, LocalLake):
        return spark_archive.write_lake(rows, spec, staging)
    out = staging + ".spark"  # beside the staging key, in the lake: the executors see it
    try:
        part = spark_archive.write_folder(rows, lake.path(out))
        lake.move(f"{out}/{part.name}", staging)  # a rename: no byte through this process
    finally:
        _remove_tree(lake.path(out))
    lake.sync([staging])
    return lake.path(staging).stat().st_size


def _raw_references(lake: Lake, raw: dict[str, str], engine: Engine, spark) -> dict[str, tuple[tuple[int, str], bytes]]:
    """name -> (``transform.file_digest``, header line) of each raw file, parsed on an executor."""
    from pipeline.events import spark_tasks

    if not raw:
        return {}
    work = functools.partial(spark_tasks.raw_digest, lake.reopen(), engine.accumulator(spark))
    items = sorted(raw.items())
    found = spark.sparkContext.parallelize(items, engine.slices(spark, len(items))).map(work).collect()
    return {name: (digest, header) for name, digest, header in found}


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
