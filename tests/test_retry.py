"""Retries: a transient failure of the ingest (database) or the export (shared folder) is
tried again by Dagster's retry policy; a wrong password or bad data fails at once."""

from __future__ import annotations

import errno
import socket
import time

import dagster as dg
import duckdb
import pytest

from orchestration.assets.export import powerbi_export
from orchestration.assets.ingest import ingest_sources
from orchestration.assets.report import customer_report
from orchestration.assets.retry import TRANSIENT_RETRY
from orchestration.ingest.database.errors import DatabaseError, is_transient_text
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


def test_ingest_and_export_carry_the_retry_policy():
    assert ingest_sources.op.retry_policy == TRANSIENT_RETRY
    assert powerbi_export.op.retry_policy == TRANSIENT_RETRY
    assert TRANSIENT_RETRY.max_retries == 2 and TRANSIENT_RETRY.delay == 10
    assert TRANSIENT_RETRY.backoff == dg.Backoff.EXPONENTIAL
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
