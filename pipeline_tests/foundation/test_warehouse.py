import pandas as pd
import psycopg
import pytest
from psycopg import sql

from pipeline.resources.warehouse import Column, TableSpec, Warehouse, dagster_storage_url, ident, redact

SPEC = TableSpec("demo", "minute_counts", (
    Column("minute", "timestamptz", nullable=False), Column("brand", "text", nullable=False),
    Column("n", "bigint", nullable=False), Column("avg_price", "double precision"),
), key=("minute", "brand"))


def _frame(minutes, brands, ns):
    return pd.DataFrame({"minute": pd.to_datetime(minutes, utc=True), "brand": brands, "n": ns,
                         "avg_price": [1.5] * len(ns)})


def _rows(w: Warehouse):
    frame = w.read_frame(sql.SQL("SELECT brand, n FROM {} ORDER BY minute, brand").format(SPEC.table))
    return list(frame.itertuples(index=False, name=None))


def test_copy_and_replace_a_slice(warehouse):
    warehouse.ensure([SPEC])
    warehouse.ensure([SPEC])  # idempotent
    m0, m1 = "2019-10-01 00:00", "2019-10-01 00:01"
    with warehouse.connect() as conn, conn.transaction():
        assert warehouse.copy_frame(conn, SPEC, _frame([m0, m1], ['a,"b"', "c"], [1, 2])) == 2
    warehouse.replace_slice(SPEC, "minute", [pd.Timestamp(m1, tz="UTC").to_pydatetime()], _frame([m1, m1], ["c", "d"], [5, 6]))
    assert _rows(warehouse) == [('a,"b"', 1), ("c", 5), ("d", 6)]
    warehouse.replace_slice(SPEC, "minute", [pd.Timestamp(m1, tz="UTC").to_pydatetime()], _frame([m1, m1], ["c", "d"], [5, 6]))
    assert _rows(warehouse) == [('a,"b"', 1), ("c", 5), ("d", 6)]  # replaying the replace changes nothing


def test_a_failure_inside_the_transaction_keeps_the_old_rows(warehouse):
    warehouse.ensure([SPEC])
    m0 = "2019-10-01 00:00"
    warehouse.replace_slice(SPEC, "minute", [pd.Timestamp(m0, tz="UTC").to_pydatetime()], _frame([m0], ["a"], [1]))
    duplicate_keys = _frame([m0, m0], ["a", "a"], [7, 8])  # violates the unique key during COPY
    with pytest.raises(psycopg.errors.UniqueViolation):
        warehouse.replace_slice(SPEC, "minute", [pd.Timestamp(m0, tz="UTC").to_pydatetime()], duplicate_keys)
    assert _rows(warehouse) == [("a", 1)]


def test_values_are_parameters_not_sql(warehouse):
    warehouse.ensure([SPEC])
    evil = "x'); DROP TABLE demo.minute_counts; --"
    warehouse.replace_slice(SPEC, "brand", [evil], _frame(["2019-10-01"], [evil], [1]))
    assert _rows(warehouse) == [(evil, 1)]


def test_identifiers_come_from_the_whitelist():
    for bad in ["x; drop", "Upper", "a-b", "1abc", ""]:
        with pytest.raises(ValueError):
            ident(bad)
    with pytest.raises(ValueError):
        TableSpec("demo", "t", (Column("a", "text; drop table x"),))
    with pytest.raises(ValueError, match="not a column"):
        SPEC.column("nope")


def test_advisory_lock_serialises(warehouse):
    with warehouse.advisory_lock("hour-1"):
        with psycopg.connect(warehouse.url, autocommit=True) as other:
            import hashlib
            lock_id = int.from_bytes(hashlib.sha256(b"hour-1").digest()[:8], "big", signed=True)
            assert other.execute("SELECT pg_try_advisory_lock(%s)", (lock_id,)).fetchone()[0] is False
    with psycopg.connect(warehouse.url, autocommit=True) as other:
        assert other.execute("SELECT pg_try_advisory_lock(%s)", (lock_id,)).fetchone()[0] is True


def test_a_second_independent_server_by_url(tmp_path):
    """The same code on another server reached by URL (a second embedded server, own data dir)."""
    from pipeline.resources.warehouse import embedded_server_url

    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="cfpg2-", dir="/tmp"))
    url = embedded_server_url(root / "pg", cleanup_mode="delete")
    other = Warehouse(url)
    other.ensure([SPEC])
    other.replace_slice(SPEC, "brand", ["z"], _frame(["2019-10-01"], ["z"], [3]))
    assert _rows(other) == [("z", 3)]
    assert other.scalar(sql.SQL("SELECT current_setting('data_directory')")) == str(root / "pg")


def test_urls_for_dagster_storage_and_logs():
    assert dagster_storage_url("postgresql://u:p@h:5432/db") == "postgresql+psycopg2://u:p@h:5432/db"
    assert redact("postgresql://user:s3cret@host/db") == "postgresql://user:***@host/db"
    assert redact("postgresql://postgres:@/x?host=/tmp") == "postgresql://postgres:@/x?host=/tmp"


BINARY = TableSpec("demo", "binary_copy", (
    Column("minute", "timestamptz", nullable=False), Column("brand", "text", nullable=False),
    Column("n", "bigint", nullable=False), Column("avg_price", "double precision", nullable=False),
))


def test_binary_copy_round_trips_every_value(warehouse, monkeypatch):
    """Values PostgreSQL reads back exactly as given: text in any script, quotes and separators
    (binary needs no escaping), the extremes of bigint and double, timestamps before 2000 and
    with microseconds; rows split across several payload parts."""
    import numpy as np
    import pyarrow as pa

    from pipeline.resources import pgbinary

    monkeypatch.setattr(pgbinary, "ROWS_PER_PART", 2)
    warehouse.ensure([BINARY])
    minutes = pd.to_datetime(["1970-01-01 00:00:00", "1999-12-31 23:59:59.999999", "2000-01-01 00:00:00",
                              "2019-10-01 00:01:00", "2262-04-11 00:00:00"], utc=True, format="ISO8601")
    brands = ["", 'a,"b"\n\\N', "Ünïcödé ✓ 日本", "x" * 5000, "tab\there"]
    n = np.array([0, -1, 2**63 - 1, -(2**63), 42], np.int64)
    price = np.array([0.0, -0.0, 1.7976931348623157e308, 5e-324, 0.1 + 0.2])
    with warehouse.connect() as conn, conn.transaction():
        written = warehouse.copy_columns(conn, BINARY, {"minute": pa.array(minutes), "brand": pa.array(brands),
                                                        "n": n, "avg_price": price}, len(n))
    assert written == 5
    with warehouse.connect() as conn:
        rows = conn.execute(sql.SQL("SELECT minute, brand, n, avg_price FROM {} ORDER BY n").format(
            BINARY.table)).fetchall()
    expected = sorted(zip([m.to_pydatetime() for m in minutes], brands, n.tolist(), price.tolist()),
                      key=lambda row: row[2])
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == expected
    assert str(rows[0][3]) != "nan"


def test_binary_copy_refuses_what_it_cannot_write(warehouse):
    import pyarrow as pa

    warehouse.ensure([BINARY])
    with warehouse.connect() as conn:
        with pytest.raises(ValueError, match="every column"):
            warehouse.copy_columns(conn, BINARY, {"minute": pa.array([pd.Timestamp("2019-10-01", tz="UTC")])}, 1)
        with pytest.raises(ValueError, match="missing values"):
            warehouse.copy_columns(conn, BINARY, {
                "minute": pa.array([pd.Timestamp("2019-10-01", tz="UTC")]), "brand": pa.array([None], pa.string()),
                "n": pa.array([1]), "avg_price": pa.array([1.0])}, 1)
