"""Retries: a transient failure of the ingest (database) or the export (shared folder) is
tried again by Dagster's retry policy; a wrong password or bad data fails at once."""

from __future__ import annotations

import errno
import socket
import sqlite3
import time

import dagster as dg
import duckdb
import pytest
import sqlalchemy as sa

from orchestration.assets.export import powerbi_export
from orchestration.assets.ingest import ingest_sources
from orchestration.assets.report import customer_report
from orchestration.assets.retry import TRANSIENT_RETRY
from orchestration.ingest.database.errors import DatabaseError, is_transient, is_transient_text
from orchestration.ingest.database.read import open_batches, resolve
from orchestration.ingest.load import ingest
from orchestration.io.config import DatabaseConfig, ProjectConfig, SourceConfig
from orchestration.io.transient import is_transient_database_error, is_transient_write_error
from orchestration.resources import WarehouseResource
from tests.postgres_server import PASSWORD, FlakyProxy, postgres_server_fixture  # noqa: F401

COLUMNS = {"customer_id": "c", "ordered_at": "d", "amount": "a"}


@pytest.mark.parametrize(
    ("text", "transient"),
    [
        ('connection to server at "127.0.0.1", port 5433 failed: Connection refused\n\tIs the '
         "server running on that host and accepting TCP/IP connections?", True),
        ("timeout expired", True),
        ("server closed the connection unexpectedly", True),
        ("could not receive data from server: Connection reset by peer", True),
        ("FATAL:  the database system is starting up", True),
        ("FATAL:  sorry, too many clients already", True),
        ("canceling statement due to conflict with recovery (SQLSTATE: 40001)", True),
        ("(2003, \"Can't connect to MySQL server on 'db' (timed out)\")", True),
        ('FATAL:  password authentication failed for user "custseg"', False),
        ('FATAL:  database "retail" does not exist', False),
        ('relation "public.orders" does not exist', False),
        ('could not translate host name "dbx" to address: Name or service not known', False),
        ("(1045, \"Access denied for user 'u'@'h' (using password: YES)\")", False),
        ('syntax error at or near "form"', False),
    ],
)  # fmt: skip
def test_driver_errors_are_classified(text, transient):
    assert is_transient_text(text) is transient


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (OSError(errno.EIO, "Input/output error"), True),
        (OSError(errno.ESTALE, "Stale file handle"), True),
        (TimeoutError(errno.ETIMEDOUT, "Connection timed out"), True),
        (PermissionError(errno.EACCES, "Permission denied"), False),
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (duckdb.IOException("Could not write file 'x.parquet': Input/output error"), True),
        (duckdb.IOException("Cannot open file 'x.parquet': Permission denied"), False),
        (RuntimeError("no tables in schema 'marts' to export"), False),
    ],
)
def test_export_write_errors_are_classified(exc, transient):
    assert is_transient_write_error(exc) is transient


def test_database_errors_say_whether_they_are_transient(postgres_server):
    def error(url: str, table: str = "t") -> DatabaseError:
        source = SourceConfig(database=DatabaseConfig(url=url, password_env="PW"), table=table,
                              columns=COLUMNS)  # fmt: skip
        with pytest.raises(DatabaseError) as err:
            ingest(duckdb.connect(), ProjectConfig(transactions=source), "r", log=lambda *_: None,
                   environ={"PW": PASSWORD})  # fmt: skip
        return err.value

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    refused = error(f"postgresql://custseg@127.0.0.1:{port}/postgres")
    assert "Connection refused" in str(refused) and is_transient_database_error(refused)
    missing = error(postgres_server.url(), table="no_such_table")
    assert "does not exist" in str(missing) and not is_transient_database_error(missing)
    user = postgres_server.url().replace("custseg@", "nobody_here@")
    denied = error(user)
    assert "authentication failed" in str(denied) and not is_transient_database_error(denied)


def _source(url: str, table: str = "t", **database) -> SourceConfig:
    return SourceConfig(database=DatabaseConfig(url=url, **database), table=table,
                        columns=COLUMNS)  # fmt: skip


def _ingest_error(source: SourceConfig) -> DatabaseError:
    with pytest.raises(DatabaseError) as err:
        ingest(duckdb.connect(), ProjectConfig(transactions=source), "r", log=lambda *_: None,
               environ={"PW": PASSWORD})  # fmt: skip
    return err.value


def test_a_table_locked_by_another_session_is_transient_by_its_sqlstate(postgres_server):
    """lock_timeout while another session holds the table (a migration, VACUUM FULL):
    SQLSTATE 55P03, whose text ("canceling statement due to lock timeout") names no
    connection trouble. Once the lock is gone the same read passes."""
    postgres_server.create_database("locked")
    with postgres_server.connect("locked", autocommit=True) as con, con.cursor() as cur:
        cur.execute("create table t as select 'A' as c, now()::timestamp as d, 2.5 as a")
        cur.execute("alter database locked set lock_timeout = '200ms'")
    source = _source(postgres_server.url("locked"), password_env="PW")
    with postgres_server.connect("locked") as holder, holder.cursor() as cur:
        cur.execute("lock table t in access exclusive mode")
        locked = _ingest_error(source)
        holder.rollback()
    assert "lock timeout" in str(locked) and "(SQLSTATE 55P03)" in str(locked)
    assert is_transient_database_error(locked)
    result = ingest(duckdb.connect(), ProjectConfig(transactions=source), "r",
                    log=lambda *_: None, environ={"PW": PASSWORD})  # fmt: skip
    assert result.totals("transactions") == (1, 1, 0)


def test_a_connection_ended_mid_read_is_transient(postgres_server):
    """The server ends the session while the rows stream in (pg_terminate_backend, as a
    failover or an administrator does): the read fails as a transient DatabaseError."""
    postgres_server.create_database("ended")
    query = "select g as c, now()::timestamp as d, 1.0 as a from generate_series(1, 2000000) g"
    source = SourceConfig(database=DatabaseConfig(url=postgres_server.url("ended"),
                                                  password_env="PW", batch_rows=10_000),
                          query=f"{query} /* read_to_be_ended */", columns=COLUMNS)  # fmt: skip
    target = resolve(source, "transactions", {"PW": PASSWORD})
    with pytest.raises(DatabaseError) as err, open_batches(target) as (_columns, batches):
        next(batches)
        with postgres_server.connect(autocommit=True) as admin, admin.cursor() as cur:
            cur.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                        "where query like '%read_to_be_ended%' and pid <> pg_backend_pid()")  # fmt: skip
            assert cur.fetchall() == [(True,)]
        for _ in batches:
            pass
    assert "the query failed" in str(err.value) and is_transient_database_error(err.value)
    assert PASSWORD not in str(err.value)


def test_a_locked_sqlite_file_is_transient_by_its_error_code(tmp_path):
    """SQLite's "database is locked" is SQLITE_BUSY in the driver's code; its text alone
    names no connection trouble."""
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as con:
        con.execute("create table t as select 'A' as c, '2025-01-01 10:00:00' as d, 2.5 as a")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("begin exclusive")
    try:
        locked = _ingest_error(_source(f"sqlite:///{path}?timeout=0"))
    finally:
        writer.execute("rollback")
        writer.close()
    assert "database is locked" in str(locked) and is_transient_database_error(locked)
    assert not is_transient_text(str(locked))


def test_an_invalidated_sqlalchemy_connection_is_transient_whatever_its_class(tmp_path):
    """SQLAlchemy says when the connection is gone (``connection_invalidated``), even when the
    driver raised a class that otherwise means a fault in the query (ProgrammingError)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.connection.dbapi_connection.close()  # the connection dies under SQLAlchemy
        with pytest.raises(sa.exc.DBAPIError) as err:
            conn.exec_driver_sql("select 1")
    assert err.value.connection_invalidated
    assert isinstance(err.value.orig, sqlite3.ProgrammingError)
    assert is_transient(err.value) and not is_transient(err.value.orig)


def test_ingest_and_export_carry_the_retry_policy():
    assert ingest_sources.op.retry_policy == TRANSIENT_RETRY
    assert powerbi_export.op.retry_policy == TRANSIENT_RETRY
    assert TRANSIENT_RETRY.max_retries == 2 and TRANSIENT_RETRY.delay == 10
    assert TRANSIENT_RETRY.backoff == dg.Backoff.LINEAR
    assert customer_report.op.retry_policy is None  # writes only to the workdir


def _retries(result) -> int:
    return sum(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def test_a_dropped_connection_is_retried_and_bad_data_is_not(tmp_path, postgres_server):
    """The first connection is reset (a server restarting): the ingest step is tried again
    10 s later and loads the table. A missing column then fails at once, without retries."""
    postgres_server.create_database("flaky")
    with postgres_server.connect("flaky") as con, con.cursor() as cur:
        cur.execute("create table t as select 'A' as c, now()::timestamp as d, 2.5 as a")
        con.commit()
    proxy = FlakyProxy(postgres_server, failures=1)
    config = tmp_path / "shop.yaml"
    url = f"postgresql://custseg:{PASSWORD}@127.0.0.1:{proxy.port}/flaky?sslmode=disable"

    def materialize(columns: str):
        config.write_text(
            f"transactions:\n  database: {{url_env: CUSTSEG_TEST_URL}}\n  table: t\n"
            f"  columns: {columns}\n",
            encoding="utf-8",
        )
        warehouse = WarehouseResource(workdir=str(tmp_path / "wd"), config_path=str(config))
        with dg.instance_for_test() as instance:
            start = time.monotonic()
            result = dg.materialize([ingest_sources], resources={"warehouse": warehouse},
                                    instance=instance, raise_on_error=False)  # fmt: skip
            return result, time.monotonic() - start

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CUSTSEG_TEST_URL", url)
        try:
            result, took = materialize("{customer_id: c, ordered_at: d, amount: a}")
            # (ADBC opens two connections per connect: the type catalogue and the session)
            assert result.success and _retries(result) == 1 and proxy.accepted >= 2
            assert took >= TRANSIENT_RETRY.delay
            bad, took = materialize("{customer_id: cust, ordered_at: d, amount: a}")
        finally:
            proxy.close()
    assert not bad.success and _retries(bad) == 0 and took < TRANSIENT_RETRY.delay
    (failure,) = [e for e in bad.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    assert error.cause.cls_name == "IngestError"
    assert "required column not found: 'cust'" in error.cause.message
    assert PASSWORD not in "\n".join(str(e) for e in [*result.all_events, *bad.all_events])
