"""The lake: one small object-store interface with a local-folder and an S3 implementation.

Sensors and assets only ever talk to :class:`Lake`, so the same code runs on a laptop folder
and on S3 (or any S3-compatible endpoint through ``AWS_ENDPOINT_URL``). Every key is validated
before it touches storage, so no key coming from a file name can leave the lake root.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from dagster import ConfigurableResource
from pydantic import PrivateAttr

# A part may hold any printable character but a few that storage or shells misread; it may not
# start with a dot (no "..", no hidden temporary files).
_KEY_SEGMENT = re.compile(r'^[^./\\\x00-\x1f\x7f:*?"<>|][^/\\\x00-\x1f\x7f:*?"<>|]*$')
MAX_KEY_LENGTH = 1024


class LakeKeyError(ValueError):
    """A key that could escape the lake root or that storage could misread."""


class ObjectGone(FileNotFoundError):
    """The object was listed (or named) but is not there any more: another process moved or
    deleted it. Normal under concurrency (a run claims landed files while a sensor lists them)."""


def validate_key(key: str, *, prefix: bool = False) -> str:
    """Return ``key`` if it is a safe relative key, else raise :class:`LakeKeyError`.

    Safe means: relative, ``/``-separated parts, none empty, none starting with a dot (so no
    ``..``), no control characters, backslashes or ``:*?"<>|``. A prefix may end with ``/`` or be empty.
    """
    if not isinstance(key, str):
        raise LakeKeyError(f"lake key must be text, got {type(key).__name__}")
    if prefix and key == "":
        return key
    body = key[:-1] if prefix and key.endswith("/") else key
    if len(key) > MAX_KEY_LENGTH:
        raise LakeKeyError(f"lake key is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}")
    if not body or body.startswith("/") or "\\" in body or "\x00" in body:
        raise LakeKeyError(f"lake key {key!r} must be a relative path such as 'landing/file.csv'")
    for segment in body.split("/"):
        if not _KEY_SEGMENT.match(segment):
            raise LakeKeyError(
                f"lake key {key!r} has an unsafe part {segment!r}: a part may not be empty, start with "
                "a dot, or hold control characters, backslashes or :*?\"<>|"
            )
    return key


@dataclass(frozen=True)
class LakeObject:
    key: str
    size: int
    etag: str  # content fingerprint from storage: S3 ETag, or size+mtime on a folder
    modified: float | None = field(default=None, compare=False)  # last written, epoch s (mtime, LastModified)

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


class Lake(ABC):
    """What the platform needs from an object store, and nothing more."""

    url: str
    # How much older than the truth ``LakeObject.modified`` can be (S3 LastModified has whole seconds).
    modified_resolution: float = 0.0

    @abstractmethod
    def list_page(self, prefix: str, start_after: str = "", limit: int = 1000,
                  end_before: str | None = None) -> list[LakeObject]:
        """Objects under ``prefix`` with ``start_after`` < key (< ``end_before``), sorted by key, at
        most ``limit``. An object moved or deleted while the page is read is left out, never an error."""

    def list(self, prefix: str, page_size: int = 1000, start_after: str = "",
             end_before: str | None = None) -> Iterator[LakeObject]:
        while True:
            page = self.list_page(prefix, start_after, page_size, end_before)
            yield from page
            if len(page) < page_size:
                return
            start_after = page[-1].key

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The object's bytes; raises :class:`ObjectGone` when it is not there."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes, durable: bool = True) -> None:
        """Write atomically: a reader sees the old object or the whole new one, never a part.

        ``durable=False`` may leave the bytes in a cache until ``sync``: for many writes that
        are only referred to (e.g. by a manifest) once all of them are synced."""

    def write_file(self, key: str, path: str | os.PathLike) -> None:
        """``write_bytes`` of a local file's content, without holding it in memory where the
        store allows (an S3 multipart upload)."""
        self.write_bytes(key, Path(path).read_bytes())

    def sync(self, keys: Iterable[str]) -> None:
        """Make objects written with ``durable=False`` durable (object stores already are)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete; deleting a missing key is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def move(self, src: str, dst: str) -> None:
        self.write_bytes(dst, self.read_bytes(src))
        self.delete(src)

    def reopen(self) -> tuple[str, str | None]:
        """(url, endpoint): what ``open_lake`` needs to open this lake in another process."""
        return self.url, None

    def uri(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{validate_key(key)}"

    def fingerprint(self, obj: LakeObject) -> str:
        """An id of the object's content: the same bytes give the same id, whenever and however
        often they are written (``etag`` on a folder changes with the modification time)."""
        return "sha256:" + sha256_hex(self.read_bytes(obj.key))

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def write_text(self, key: str, text: str) -> None:
        self.write_bytes(key, text.encode("utf-8"))


class LocalLake(Lake):
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = str(self.root)

    def path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if path != self.root and self.root not in path.parents:  # symlinks pointing outside
            raise LakeKeyError(f"lake key {key!r} resolves outside the lake root")
        return path

    def list_page(self, prefix: str, start_after: str = "", limit: int = 1000,
                  end_before: str | None = None) -> list[LakeObject]:
        validate_key(prefix, prefix=True)
        # Walk only the folder the prefix names, then filter by the rest of the prefix.
        base_dir = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        top = self.root / base_dir if base_dir else self.root
        if not top.is_dir():
            return []
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for filename in filenames:
                if filename.startswith("."):
                    continue  # in-flight temporary files of write_bytes
                key = filename if rel_dir == "." else f"{rel_dir}/{filename}"
                if key.startswith(prefix) and key > start_after and (end_before is None or key < end_before):
                    keys.append(key)
        keys.sort()
        # Stat only the page, and skip what a concurrent claim moved away since the walk.
        found: list[LakeObject] = []
        for key in keys:
            try:
                stat = os.stat(self.root / key)
            except FileNotFoundError:
                continue
            found.append(LakeObject(key, stat.st_size, f"{stat.st_size}-{stat.st_mtime_ns}", stat.st_mtime))
            if len(found) == limit:
                break
        return found

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectGone(f"lake object {key!r} is not there (moved or deleted)") from None

    def write_bytes(self, key: str, data: bytes, durable: bool = True) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def sync(self, keys: Iterable[str]) -> None:
        def flush(key: str) -> None:
            fd = os.open(self.path(key), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        keys = list(keys)
        if keys:  # fsync waits on the disk, not the CPU: several at once
            with ThreadPoolExecutor(min(8, len(keys))) as pool:
                list(pool.map(flush, keys))

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def move(self, src: str, dst: str) -> None:
        source, target = self.path(src), self.path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


class S3Lake(Lake):
    modified_resolution = 1.0  # LastModified is listed in whole seconds

    def __init__(self, url: str, endpoint_url: str | None = None, client=None):
        if not url.startswith("s3://"):
            raise ValueError(f"an S3 lake URL starts with s3://, got {url!r}")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        self.bucket = bucket
        self.prefix = validate_key(prefix.strip("/") + "/", prefix=True) if prefix.strip("/") else ""
        self.url = url.rstrip("/")
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None)
        self.client = client

    def reopen(self) -> tuple[str, str | None]:
        return self.url, self.client.meta.endpoint_url

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def list_page(self, prefix: str, start_after: str = "", limit: int = 1000,
                  end_before: str | None = None) -> list[LakeObject]:
        validate_key(prefix, prefix=True)
        kwargs = {"Bucket": self.bucket, "Prefix": self.prefix + prefix, "MaxKeys": min(limit, 1000)}
        if start_after:
            kwargs["StartAfter"] = self.prefix + start_after
        found: list[LakeObject] = []
        while len(found) < limit:
            response = self.client.list_objects_v2(**kwargs)
            for item in response.get("Contents", []):
                key = item["Key"][len(self.prefix):]
                if end_before is not None and key >= end_before:
                    return found[:limit]  # keys come in order: nothing after this one is wanted
                found.append(LakeObject(key, item["Size"], item["ETag"].strip('"'),
                                        item["LastModified"].timestamp()))
            if not response.get("IsTruncated"):
                break
            kwargs["ContinuationToken"] = response["NextContinuationToken"]
        return found[:limit]

    def read_bytes(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read()
        except ClientError as error:
            if _missing(error):
                raise ObjectGone(f"lake object {key!r} is not there (moved or deleted)") from None
            raise

    def fingerprint(self, obj: LakeObject) -> str:
        """The ETag: S3 derives it from the bytes (and, for multipart uploads, the part size), so
        the same bytes uploaded again the same way keep it, without reading the object."""
        return "etag:" + obj.etag

    def write_bytes(self, key: str, data: bytes, durable: bool = True) -> None:
        # A single PUT is atomic and durable on S3: readers see the old or the new object.
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data)

    def write_file(self, key: str, path: str | os.PathLike) -> None:
        # boto3's transfer manager: parts of 8 MiB for a large file; the object appears whole.
        self.client.upload_file(str(path), self.bucket, self._full(key))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full(key))
            return True
        except ClientError as error:
            if _missing(error):
                return False
            raise

    def move(self, src: str, dst: str) -> None:
        self.client.copy_object(
            Bucket=self.bucket, Key=self._full(dst), CopySource={"Bucket": self.bucket, "Key": self._full(src)}
        )
        self.delete(src)


def _missing(error) -> bool:
    """Whether a botocore ``ClientError`` says the object does not exist."""
    return error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def open_lake(url: str, endpoint_url: str | None = None) -> Lake:
    if url.startswith("s3://"):
        return S3Lake(url, endpoint_url=endpoint_url)
    if url.startswith("file://"):
        url = url[len("file://"):]
    return LocalLake(url)


def fingerprint(objects: Iterable[LakeObject]) -> str:
    """Short digest of a file set (keys and ETags): equal sets, equal digests."""
    lines = sorted(f"{obj.key}\t{obj.etag}" for obj in objects)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:20]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LakeResource(ConfigurableResource):
    """The lake as a Dagster resource: a folder path or ``s3://bucket/prefix``."""

    url: str
    endpoint_url: str | None = None

    _lake: Lake | None = PrivateAttr(default=None)

    def get(self) -> Lake:
        if self._lake is None:
            self._lake = open_lake(self.url, self.endpoint_url)
        return self._lake
