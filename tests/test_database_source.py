"""Database sources: config, streaming, clear errors without secrets, and Online Retail II
from a real PostgreSQL 15 server giving the same marts as from the Parquet file.
Incremental loads by a high-water mark: tests/test_database_incremental.py; retries of
transient failures: tests/test_retry.py."""

from __future__ import annotations

import io
import socket
import sqlite3
import time
from pathlib import Path

import duckdb
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from orchestration.cli import run_pipeline
from orchestration.ingest.database.read import open_batches, resolve
from orchestration.ingest.load import IngestError, ingest
from orchestration.io.config import ConfigError, DatabaseConfig, ProjectConfig, SourceConfig
from orchestration.settings import Settings
from tests.conftest import REPO
from tests.pipeline_utils import published_marts, query, run
from tests.postgres_server import PASSWORD, PostgresServer, postgres_server_fixture  # noqa: F401
from tests.test_real_data import online_retail_parquet_run

URL_ENV = "CUSTSEG_PG_URL"  # what examples/online_retail_postgres.yaml reads
RETAIL_TYPES = {
    "invoice": "text",
    "stock_code": "text",
    "description": "text",
    "quantity": "integer",
    "invoice_date": "timestamp",
    "price": "numeric(12,3)",
    "customer_id": "integer",
    "country": "text",
}
RETAIL_COLUMNS = {
    "customer_id": "customer_id",
    "order_id": "invoice",
    "ordered_at": "invoice_date",
    "quantity": "quantity",
    "unit_price": "price",
}
ROWS, NO_CUSTOMER = 525_461, 107_927


@pytest.fixture(scope="module")
def retail_db(postgres_server: PostgresServer, shared_data: Path) -> str:
    """Database ``retail`` with Online Retail II in ``public.online_retail``; its URL (with
    the password) is returned."""
    data = pq.read_table(shared_data / "online_retail" / "online_retail_ii_2009_2010.parquet")
    data = data.rename_columns(list(RETAIL_TYPES))
    data = data.set_column(4, "invoice_date", data["invoice_date"].cast(pa.timestamp("us")))
    data = data.set_column(6, "customer_id", data["customer_id"].cast(pa.int64()))
    postgres_server.create_database("retail")
    postgres_server.load_table("retail", "public.online_retail", data, RETAIL_TYPES)
    return postgres_server.url("retail", with_password=True)


def _db_config(columns=RETAIL_COLUMNS, **kw) -> ProjectConfig:
    database = {k: kw.pop(k) for k in list(kw) if k in DatabaseConfig.model_fields}
    source = SourceConfig(database=DatabaseConfig(**database), columns=columns, **kw)
    return ProjectConfig(transactions=source)


def _ingest(cfg: ProjectConfig, environ: dict, con=None):
    con = con or duckdb.connect()
    return con, ingest(con, cfg, "run-1", log=lambda *_: None, environ=environ)


def _assert_no_secret(*texts: str, secrets=(PASSWORD,)) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text


# --- config ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"database": {"url": "postgresql://u:hunter22@h/db"}, "table": "t"}, "must not contain"),
        ({"database": {"url": "postgresql://u@h/db?password=hunter22"}, "table": "t"}, "must not"),
        ({"database": {"url": "postgresql://u@h/db", "url_env": "X"}, "table": "t"}, "exactly one"),
        ({"database": {"url_env": "X"}}, "exactly one of `table` and `query`"),
        ({"database": {"url_env": "X"}, "table": "t", "query": "select 1"}, "exactly one"),
        ({"database": {"url_env": "X"}, "table": "t", "path": "a.csv"}, "not both"),
        ({"database": {"url_env": "X"}, "table": "t", "delimiter": ";"}, "files only"),
        ({"table": "t"}, "need a `database:`"),
        ({"database": {"url_env": "not a name"}, "table": "t"}, "pattern"),
        ({"database": {"url": "not a url"}, "table": "t"}, "not a database URL"),
    ],
)
def test_database_config_errors_are_clear_and_never_echo_a_password(tmp_path, source, message):
    import yaml

    from orchestration.io.config import load_config

    source["columns"] = {"customer_id": "c", "ordered_at": "d", "amount": "a"}
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump({"transactions": source}), encoding="utf-8")
    with pytest.raises(ConfigError, match="transactions") as err:
        load_config(path)
    assert message in str(err.value)
    assert err.value.__cause__ is None
    _assert_no_secret(str(err.value), secrets=("hunter22",))


def test_credentials_come_from_the_environment_and_the_name_is_redacted():
    cfg = _db_config(url="postgresql://shop@db.internal/sales", password_env="PW", table="tx")
    secret = "p@ss:w/rd %?#&x"
    target = resolve(cfg.transactions, "transactions", {"PW": secret})
    assert target.url.password == secret
    assert target.name == "postgresql://shop@db.internal:5432/sales#tx"
    assert target.mask(f"x {secret} y") == "x *** y"
    with pytest.raises(ConfigError, match="environment variable PW is not set"):
        resolve(cfg.transactions, "transactions", {})

    cfg = _db_config(url_env="DB_URL", query="select 1")
    env = {"DB_URL": "postgresql://shop:hunter22@db:6543/sales?sslmode=require"}
    target = resolve(cfg.transactions, "transactions", env)
    assert target.name == "postgresql://shop@db:6543/sales#query"
    with pytest.raises(ConfigError, match="DB_URL is not set"):
        resolve(cfg.transactions, "transactions", {})
    with pytest.raises(ConfigError, match="not a database URL") as err:
        resolve(cfg.transactions, "transactions", {"DB_URL": "hunter22 is no url"})
    _assert_no_secret(str(err.value), secrets=("hunter22",))


# --- any SQLAlchemy database (SQLite here) ------------------------------------------------


def _sqlite(tmp_path: Path, rows: list[tuple]) -> str:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as con:
        con.execute("create table tx (cust, ord, ts, qty, price)")
        con.executemany("insert into tx values (?, ?, ?, ?, ?)", rows)
    return f"sqlite:///{path}"


SQLITE_COLUMNS = {
    "customer_id": "cust",
    "order_id": "ord",
    "ordered_at": "ts",
    "quantity": "qty",
    "unit_price": "price",
}


def test_sqlalchemy_source_goes_through_the_file_rules_and_load_log(tmp_path):
    rows = [
        ("A", 1, "2024-01-02 10:00:00", 2, 5.5),
        (None, 2, "2024-01-03", 1, 1),  # missing customer
        ("B", 3, "not a date", 1, 1),
        ("C", 4, "2024-01-04", "two", 1),  # SQLite mixes types in a column
        ("D", 5, "2024-01-05", None, 2),  # missing quantity; a NULL in the batch's types
    ] * 3
    url = _sqlite(tmp_path, rows)
    cfg = _db_config(SQLITE_COLUMNS, url=url, batch_rows=4, table="tx")
    con, result = _ingest(cfg, {})
    name = f"{url}#tx"
    assert [(f.file, f.rows_read, f.rows_loaded, f.rows_rejected) for f in result.files] == [
        (name, 15, 3, 12)
    ]
    reasons = con.execute(
        "select source_file, source_row, reason from raw.quarantine_transactions "
        "where source_row <= 5 order by 2"
    ).fetchall()
    assert reasons == [
        (name, 2, "missing customer_id (cust)"),
        (name, 3, "unparseable date ordered_at (ts)"),
        (name, 4, "non-numeric quantity (qty)"),
        (name, 5, "missing quantity (qty)"),
    ]
    assert con.execute("select distinct customer_id, amount from raw.transactions").fetchall() == [
        ("A", 11.0)
    ]
    assert con.execute("select file, rows_read from raw.load_log").fetchall() == [(name, 15)]


def test_sqlalchemy_read_streams_in_bounded_batches(tmp_path):
    url = _sqlite(tmp_path, [(f"c{i}", i, "2024-01-01", 1, 1.0) for i in range(10_000)])
    cfg = _db_config(SQLITE_COLUMNS, url=url, batch_rows=1_000, query="select * from tx")
    with open_batches(resolve(cfg.transactions, "transactions", {})) as (columns, batches):
        sizes = [b.num_rows for b in batches]
    assert columns == ["cust", "ord", "ts", "qty", "price"]
    assert sizes == [1_000] * 10


def test_a_column_whose_type_changes_between_batches_is_widened(tmp_path):
    # The first batch has no price at all (NULL type), the second integers, the third floats.
    rows = [("A", 1, "2024-01-02", 1, None)] * 3 + [("B", 2, "2024-01-03", 1, 2)] * 3
    url = _sqlite(tmp_path, rows + [("C", 3, "2024-01-04", 1, 2.5)] * 3)
    cfg = _db_config(SQLITE_COLUMNS, url=url, batch_rows=3, table="tx")
    con, result = _ingest(cfg, {})
    assert result.totals("transactions") == (9, 6, 3)
    assert con.execute("select typeof(price) from _db_src limit 1").fetchone() == ("DOUBLE",)
    assert con.execute("select sum(amount) from raw.transactions").fetchone() == (13.5,)


def test_missing_sqlalchemy_driver_is_named(tmp_path):
    cfg = _db_config(url="mysql+nosuchdriver://u@h/db", password_env="PW", table="tx")
    with pytest.raises(IngestError, match="no SQLAlchemy dialect or driver") as err:
        _ingest(cfg, {"PW": "hunter22"})
    _assert_no_secret(str(err.value), secrets=("hunter22",))


# --- PostgreSQL ----------------------------------------------------------------------------


def test_postgres_read_streams_and_holds_one_batch_at_a_time(retail_db):
    cfg = _db_config(url_env=URL_ENV, batch_rows=5_000, table="public.online_retail")
    target = resolve(cfg.transactions, "transactions", {URL_ENV: retail_db})
    process = psutil.Process()
    base = peak = process.memory_info().rss
    sizes = []
    with open_batches(target) as (columns, batches):
        for batch in batches:
            sizes.append(batch.num_rows)
            peak = max(peak, process.memory_info().rss)
    assert columns == list(RETAIL_TYPES)
    assert sum(sizes) == ROWS and max(sizes) <= 5_000 and len(sizes) >= ROWS // 5_000
    # The whole table as Arrow takes ~60 MB; streaming grows the process by a few MB.
    assert peak - base < 30 * 2**20, f"RSS grew by {(peak - base) / 2**20:.0f} MB"


def test_postgres_errors_name_the_source_and_column(retail_db):
    env = {URL_ENV: retail_db}
    cfg = _db_config(url_env=URL_ENV, table="public.no_such_table")
    with pytest.raises(IngestError, match=r"#public\.no_such_table: the query failed: .*does not"):
        _ingest(cfg, env)
    cfg = _db_config(
        {**RETAIL_COLUMNS, "customer_id": "cust"},
        url_env=URL_ENV,
        query="select * from online_retail;\n",
    )
    with pytest.raises(
        IngestError, match=r"retail#query: required column not found: 'cust'"
    ) as err:
        _ingest(cfg, env)
    _assert_no_secret(str(err.value))


def test_special_characters_in_the_password_survive_the_url(postgres_server):
    password = "p@ss:w/rd %?#&x'"
    with postgres_server.connect(autocommit=True) as con, con.cursor() as cur:
        cur.execute("create role shop login password 'p@ss:w/rd %?#&x'''")
    url = f"postgresql://shop@{postgres_server.host}:{postgres_server.port}/postgres"
    cfg = _db_config({"customer_id": "c", "ordered_at": "d", "amount": "a"}, url=url,
                     password_env="PW", query="select 'x' as c, now()::timestamp as d, 1.0 as a")  # fmt: skip
    _, result = _ingest(cfg, {"PW": password})
    assert result.totals("transactions") == (1, 1, 0)


def test_unreachable_server_fails_fast_with_a_clear_error():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    cfg = _db_config(url_env=URL_ENV, table="t")
    env = {URL_ENV: f"postgresql://custseg:{PASSWORD}@127.0.0.1:{port}/retail"}
    with pytest.raises(IngestError) as err:
        _ingest(cfg, env)
    msg = str(err.value)
    assert msg.startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{port}/retail as user")
    assert "Connection refused" in msg
    _assert_no_secret(msg)

    # A server that accepts the connection and never answers: connect_timeout, not a hang.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        cfg = _db_config(url_env=URL_ENV, table="t", connect_timeout=2)
        env = {URL_ENV: f"postgresql://custseg:{PASSWORD}@127.0.0.1:{port}/retail"}
        start = time.monotonic()
        with pytest.raises(IngestError, match=r"timeout expired \(connect_timeout 2 s\)") as err:
            _ingest(cfg, env)
        assert time.monotonic() - start < 15
    _assert_no_secret(str(err.value))


def _workdir_text(workdir: Path) -> bytes:
    """Every byte the run left in its workdir: warehouse, exports, logs, Dagster storage."""
    return b"".join(p.read_bytes() for p in sorted(workdir.rglob("*")) if p.is_file())


def test_wrong_password_fails_the_run_clearly_and_leaks_it_nowhere(
    tmp_path,
    postgres_server,
    retail_db,
    monkeypatch,
):
    wrong = "Wr0ng-Pa55word-4-test"
    monkeypatch.setenv("CUSTSEG_TEST_PG_PASSWORD", wrong)
    config = tmp_path / "shop.yaml"
    config.write_text(
        "transactions:\n"
        f"  database: {{url: '{postgres_server.url('retail')}', "
        "password_env: CUSTSEG_TEST_PG_PASSWORD}\n"
        "  table: public.online_retail\n"
        "  columns: {customer_id: customer_id, ordered_at: invoice_date, amount: price}\n",
        encoding="utf-8",
    )
    out = io.StringIO()
    workdir = tmp_path / "wd"
    result = run_pipeline(Settings(workdir=str(workdir), config_path=str(config)), stream=out)
    assert not result.success
    # Not transient: failed at once, not retried (orchestration/assets/retry.py).
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    error = failure.step_failure_data.error
    # Our error, with the driver's exception not chained onto it.
    assert error.cause.cls_name == "DatabaseError" and error.cause.cause is None
    expected = (
        f"cannot connect to PostgreSQL at 127.0.0.1:{postgres_server.port}/retail as user "
        "'custseg': password authentication failed for user \"custseg\"; check the password "
        "in the environment variable CUSTSEG_TEST_PG_PASSWORD"
    )
    assert expected in error.to_string()
    events = "\n".join(str(e) for e in result.all_events)
    _assert_no_secret(error.to_string(), events, out.getvalue(), secrets=(wrong, PASSWORD))
    stored = _workdir_text(workdir)
    assert wrong.encode() not in stored and PASSWORD.encode() not in stored


# --- the whole pipeline --------------------------------------------------------------------


# Columns naming the run's own artefacts, not the data.
@pytest.mark.slow
def test_pipeline_from_postgres_gives_the_same_marts_as_from_parquet(
    tmp_path,
    tmp_path_factory,
    postgres_server,
    retail_db,
    monkeypatch,
):
    monkeypatch.setenv(URL_ENV, retail_db)
    workdir = tmp_path / "wd"
    result, output = run(workdir, REPO / "examples" / "online_retail_postgres.yaml")
    name = f"postgresql://custseg@127.0.0.1:{postgres_server.port}/retail#public.online_retail"
    log = query(workdir, "select file, rows_read, rows_loaded, rows_rejected from raw.load_log")
    assert log == [(name, ROWS, ROWS - NO_CUSTOMER, NO_CUSTOMER)]
    assert query(workdir, "select count(*) from raw.quarantine_transactions") == [(NO_CUSTOMER,)]
    (raw,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "raw_transactions"
    ]
    assert raw.metadata["files"].data[0]["file"] == name
    events = "\n".join(str(e) for e in result.all_events)
    _assert_no_secret(events, output)

    reference = published_marts(online_retail_parquet_run(tmp_path_factory))
    marts = published_marts(workdir)
    assert marts.keys() == reference.keys()
    assert {"dim_customer", "mart_segment_summary", "fct_orders"} <= marts.keys()
    assert len(marts["dim_customer"]) == 4_383
    for table in marts:
        pd.testing.assert_frame_equal(marts[table], reference[table], check_exact=True, obj=table)
    assert PASSWORD.encode() not in _workdir_text(workdir)
