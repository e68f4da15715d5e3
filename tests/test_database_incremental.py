"""A database table loaded incrementally by a high-water mark: config, exactly-once appends
(SQLite through SQLAlchemy, PostgreSQL through ADBC), and ``database_sensor`` -> run ->
retry against a real PostgreSQL 15 server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import dagster as dg
import duckdb
import pytest

import orchestration.ingest.database.read as database
from orchestration.ingest.database.incremental import ingest_new_rows
from orchestration.ingest.load import IngestError, ingest
from orchestration.io.config import ConfigError, load_config
from orchestration.settings import Settings
from tests.pipeline_utils import query
from tests.postgres_server import PASSWORD, PostgresServer, postgres_server_fixture  # noqa: F401

COLUMNS = {"customer_id": "cust", "order_id": "invoice", "ordered_at": "ts", "quantity": "qty",
           "unit_price": "price"}  # fmt: skip
PASSWORD_ENV = "CUSTSEG_TEST_PG_PASSWORD"


def _quiet(*_args) -> None:
    pass


def _config(tmp_path: Path, database: dict, column: str = "id", **extra) -> Path:
    import yaml

    source = {"database": database, "table": "orders", "incremental": {"column": column},
              "columns": COLUMNS, **extra}  # fmt: skip
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump({"transactions": source}), encoding="utf-8")
    return path


def _log(con) -> list[tuple]:
    return con.execute(
        "select mode, rows_read, rows_loaded, rows_rejected, mark_column, mark_from, mark_to "
        "from raw.load_log order by load_seq"
    ).fetchall()


# --- config --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"database": {"url_env": "X"}, "query": "select 1"},
            "needs a database source with `table:`",
        ),
        ({"path": "t.csv"}, "needs a database source with `table:`"),
        ({"database": {"url_env": "X"}, "table": "t", "incremental": {}}, "column"),
        ({"database": {"url_env": "X"}, "table": "t", "incremental": {"col": "id"}}, "col"),
    ],
)
def test_incremental_config_errors(tmp_path, source, message):
    import yaml

    source = {"incremental": {"column": "id"}, **source, "columns": COLUMNS}
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump({"transactions": source}), encoding="utf-8")
    with pytest.raises(ConfigError, match="transactions") as err:
        load_config(path)
    assert message in str(err.value)


def test_only_transactions_load_incrementally(tmp_path):
    path = _config(tmp_path, {"url": "sqlite:////x.db"})
    text = path.read_text(encoding="utf-8")
    customers = "customers:\n  database: {url: 'sqlite:////x.db'}\n  table: c\n"
    path.write_text(text + customers + "  incremental: {column: id}\n  columns: {customer_id: c}\n")
    with pytest.raises(ConfigError, match="customers.incremental: only transactions"):
        load_config(path)


# --- SQLAlchemy (SQLite): bound marks, the full load's bound, exactly once ------------------


def _sqlite(path: Path, rows: list[tuple]) -> None:
    with sqlite3.connect(path) as con:
        con.execute(
            "create table if not exists orders "
            "(id integer primary key, invoice, cust, ts, qty, price)"
        )
        con.executemany(
            "insert into orders (invoice, cust, ts, qty, price) values (?, ?, ?, ?, ?)", rows
        )


def test_rows_written_during_a_full_load_are_left_to_the_next_increment(tmp_path, monkeypatch):
    db = tmp_path / "shop.db"
    _sqlite(db, [("I1", "A", "2024-01-01", 1, 2.0), ("I2", "B", "2024-01-02", 1, 3.0)])
    cfg = load_config(_config(tmp_path, {"url": f"sqlite:///{db}"}))
    fetch_value = database.fetch_value

    def racing_max(target):  # a row commits between the max and the read
        value = fetch_value(target)
        _sqlite(db, [("I3", "C", "2024-01-03", 1, 4.0)])
        return value

    con = duckdb.connect()
    monkeypatch.setattr(database, "fetch_value", racing_max)
    ingest(con, cfg, "full", log=_quiet)
    monkeypatch.undo()
    assert _log(con) == [("full", 2, 2, 0, "id", None, "int:2")]

    _sqlite(db, [("I4", None, "2024-01-04", 1, 5.0)])  # no customer: quarantined
    result = ingest_new_rows(con, cfg, "inc", log=_quiet, environ={})
    assert [f.file.rsplit("#", 1)[1] for f in result.files] == ["orders where id > 2 and id <= 4"]
    assert _log(con)[1] == ("incremental", 2, 1, 1, "id", "int:2", "int:4")
    assert con.execute("select order_id from raw.transactions order by 1").fetchall() == [
        ("I1",),
        ("I2",),
        ("I3",),
    ]
    # Asked again (a retry) or for an old range (after="int:0"): nothing loaded twice.
    again = ingest_new_rows(con, cfg, "retry", "int:2", "int:4", log=_quiet, environ={})
    stale = ingest_new_rows(con, cfg, "stale", "int:0", "int:1", log=_quiet, environ={})
    assert again.files == stale.files == [] and len(_log(con)) == 2
    assert "already loaded through id = 4" in again.skipped[0]["reason"]
    assert con.execute("select count(*) from raw.transactions").fetchone() == (3,)


def test_an_incremental_load_needs_a_full_load_with_a_mark(tmp_path):
    db = tmp_path / "shop.db"
    _sqlite(db, [("I1", "A", "2024-01-01", 1, 2.0)])
    cfg = load_config(_config(tmp_path, {"url": f"sqlite:///{db}"}))
    con = duckdb.connect()
    with pytest.raises(IngestError, match="no full load yet"):
        ingest_new_rows(con, cfg, "r0", log=_quiet)
    plain = cfg.model_copy(deep=True)
    plain.transactions.incremental = None
    ingest(con, plain, "full-without-mark", log=_quiet)
    with pytest.raises(IngestError, match="recorded no high-water mark for 'id'"):
        ingest_new_rows(con, cfg, "r1", log=_quiet)
    ingest(con, cfg, "full", log=_quiet)
    with pytest.raises(IngestError, match="not a high-water mark: 'id=3'"):
        ingest_new_rows(con, cfg, "r2", through="id=3", log=_quiet)


# --- PostgreSQL: typed marks --------------------------------------------------------------


def _pg_orders(server: PostgresServer, dbname: str, mark_type: str = "bigint") -> None:
    server.create_database(dbname)
    with server.connect(dbname) as con, con.cursor() as cur:
        cur.execute(
            f"create table orders (id {mark_type}, invoice text, cust text, "
            "ts timestamptz, qty integer, price numeric(12,2))"
        )
        con.commit()


def _pg_insert(server: PostgresServer, dbname: str, values: str) -> None:
    with server.connect(dbname) as con, con.cursor() as cur:
        cur.execute(f"insert into orders values {values}")
        con.commit()


@pytest.mark.parametrize(
    ("mark_type", "first", "later", "mark"),
    [
        # numeric compares as a number (999 < 1000), not as its text
        ("numeric(20,0)", "(999, 'I1', 'A', now(), 1, 1), (1000, 'I2', 'A', now(), 1, 1)",
         "(1001, 'I3', 'B', now(), 1, 1)", "decimal:1000"),
        # timestamptz: the mark in UTC; a later row written in another time zone
        ("timestamptz", "('2024-05-01 10:00:00+02', 'I1', 'A', now(), 1, 1)",
         "('2024-05-01 08:00:00.5+00', 'I2', 'B', now(), 1, 1)",
         "timestamptz:2024-05-01 08:00:00+00:00"),
    ],
)  # fmt: skip
def test_postgres_marks_keep_the_columns_type(
    tmp_path, postgres_server, mark_type, first, later, mark
):
    dbname = "marks_" + mark_type.split("(")[0]
    _pg_orders(postgres_server, dbname, mark_type)
    _pg_insert(postgres_server, dbname, first)
    url = postgres_server.url(dbname)
    cfg = load_config(_config(tmp_path, {"url": url, "password_env": PASSWORD_ENV}))
    env = {PASSWORD_ENV: PASSWORD}
    con = duckdb.connect()
    ingest(con, cfg, "full", log=_quiet, environ=env)
    assert _log(con)[-1][-1] == mark
    assert ingest_new_rows(con, cfg, "none", log=_quiet, environ=env).files == []
    _pg_insert(postgres_server, dbname, later)
    result = ingest_new_rows(con, cfg, "inc", log=_quiet, environ=env)
    assert result.totals("transactions") == (1, 1, 0)
    assert con.execute("select count(distinct order_id) from raw.transactions").fetchone() == (
        first.count("'I") + 1,
    )


# --- PostgreSQL: the sensor, the run it asks for, a retry ----------------------------------


def test_database_sensor_run_loads_new_rows_exactly_once(tmp_path, postgres_server, monkeypatch):
    from orchestration.definitions import build_definitions

    _pg_orders(postgres_server, "shop")
    _pg_insert(postgres_server, "shop", ", ".join(
        f"({i}, 'I{i}', {'NULL' if i == 3 else repr(f'C{i % 2}')}, '2024-05-0{i} 10:00+00', 1, 9.5)"
        for i in range(1, 5)
    ))  # fmt: skip
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    config = _config(tmp_path, {"url": postgres_server.url("shop"), "password_env": PASSWORD_ENV})
    workdir = tmp_path / "wd"
    defs = build_definitions(Settings(workdir=str(workdir), config_path=str(config)).resolved())
    sensor = defs.resolve_sensor_def("database_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED

    def run(job: str, **kw) -> dg.ExecuteInProcessResult:
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, op_selection=["ingest_sources"], **kw
        )
        assert result.success
        return result

    with dg.instance_for_test() as instance:

        def tick(cursor: str | None = None):
            context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
            return sensor.evaluate_tick(context)

        assert "no load has recorded a high-water mark" in tick().skip_message
        run("scoring_pipeline")  # the full load records its mark
        idle = tick()
        assert idle.run_requests == [] and "nothing new" in idle.skip_message
        assert "after id = 4" in idle.skip_message and PASSWORD not in idle.skip_message

        # Three new rows, one with a negative price (quarantined).
        _pg_insert(postgres_server, "shop", "(5, 'I5', 'C1', '2024-05-05 10:00+00', 2, 9.5), "
                   "(6, 'I6', 'C9', '2024-05-06 10:00+00', 1, -1), "
                   "(7, 'I7', 'C0', '2024-05-07 10:00+00', 1, 4)")  # fmt: skip
        first = tick(idle.cursor)
        (request,) = first.run_requests
        assert request.run_config["ops"]["ingest_sources"]["config"] == {
            "mode": "incremental", "files": [], "mark_after": "int:4", "mark_through": "int:7"
        }  # fmt: skip
        assert tick(first.cursor).run_requests == []  # asked once
        # The cursor lost or stale: the same range, the same run key (Dagster drops it).
        assert [r.run_key for r in tick(idle.cursor).run_requests] == [request.run_key]
        assert [r.run_key for r in tick().run_requests] == [request.run_key]

        done = run("incremental_scoring", run_config=request.run_config)
        meta = done.asset_materializations_for_node("ingest_sources")[0].metadata
        assert meta["rows_loaded"].value == 2 and meta["rows_quarantined"].value == 1
        assert meta["high_water_mark"].value == {"column": "id", "through": "int:7"}
        # A retry of the same run loads nothing; the sensor has nothing new either.
        retry = run("incremental_scoring", run_config=request.run_config)
        meta = retry.asset_materializations_for_node("ingest_sources")[0].metadata
        assert meta["rows_loaded"].value == 0 and "already loaded through id = 7" in str(
            meta["skipped_files"].value
        )
        assert "nothing new" in tick(first.cursor).skip_message
        # A full refresh: the sensor continues from its mark.
        run("scoring_pipeline")
        after_refresh = tick(first.cursor)
        assert after_refresh.run_requests == [] and "after id = 7" in after_refresh.skip_message
        events = "\n".join(str(e) for e in instance.all_logs(done.run_id))

    log = query(
        workdir,
        "select mode, file, rows_read, rows_loaded, rows_rejected, mark_from, mark_to "
        "from raw.load_log order by load_seq",
    )
    name = f"postgresql://custseg@127.0.0.1:{postgres_server.port}/shop#orders"
    assert log == [
        ("full", name, 4, 3, 1, None, "int:4"),
        ("incremental", f"{name} where id > 4 and id <= 7", 3, 2, 1, "int:4", "int:7"),
        ("full", name, 7, 5, 2, None, "int:7"),
    ]
    # Every row in exactly one place: 7 rows = 5 loaded + 2 quarantined, none twice.
    assert query(workdir, "select count(*), count(distinct order_id) from raw.transactions") == [
        (5, 5)
    ]
    bad = query(workdir, "select reason from raw.quarantine_transactions order by source_row")
    assert bad == [("missing customer_id (cust)",), ("non-positive unit_price (price)",)]
    assert PASSWORD not in events
    stored = b"".join(p.read_bytes() for p in workdir.rglob("*") if p.is_file())
    assert PASSWORD.encode() not in stored
