"""Incremental loads: the inbox sensor, exactly-once appends, and re-scoring only what changed."""

from __future__ import annotations

import datetime as dt
import io
import os
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.cli import run_pipeline
from orchestration.ingest.inbox import list_inbox, new_files
from orchestration.ingest.load import IngestError, ingest, ingest_incremental
from orchestration.io.config import (
    ConfigError,
    InboxConfig,
    ProjectConfig,
    SourceConfig,
    demo_config,
    load_config,
)
from orchestration.settings import Settings
from tests.pipeline_utils import copy_workdir, query

HEADER = "order_id,customer_id,order_date,product_id,category,quantity,unit_price,channel,country\n"
COLUMNS = {
    "customer_id": "customer_id",
    "order_id": "order_id",
    "ordered_at": "order_date",
    "product_id": "product_id",
    "quantity": "quantity",
    "unit_price": "unit_price",
}


def _settle(path: Path, seconds_ago: float = 60) -> None:
    """Make a file look completely written (older than the inbox's settle time)."""
    then = time.time() - seconds_ago
    os.utime(path, (then, then))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    _settle(path)
    return path


def _config(tmp_path: Path, **kw) -> ProjectConfig:
    return ProjectConfig(
        data_root=str(tmp_path),
        base_dir=str(tmp_path),
        transactions=SourceConfig(
            path="base.csv", format="csv", columns=COLUMNS, inbox=InboxConfig(path="inbox"), **kw
        ),
    )


def _quiet(*_args) -> None:
    pass


# --- the inbox and the sensor's cursor (no pipeline) -------------------------------------


def test_inbox_lists_only_complete_files_and_the_cursor_sees_content(tmp_path):
    inbox = tmp_path / "inbox"
    a = _write(inbox / "a.csv", HEADER + "O1,C1,2025-01-01,P,x,1,1,web,UK\n")
    _write(inbox / "b.csv.tmp", HEADER)  # still being copied
    _write(inbox / ".hidden.csv", HEADER)
    (inbox / "fresh.csv").write_text(HEADER, encoding="utf-8")  # modified just now
    cfg = InboxConfig(path="inbox", pattern="*.csv")
    assert [f.name for f in list_inbox(inbox, cfg)] == ["a.csv"]

    first = new_files(list_inbox(inbox, cfg), None)
    assert [name for name, _ in first.files] == ["a.csv"]
    # Touched but unchanged: not new. Seen again with the same cursor: not new.
    _settle(a, seconds_ago=30)
    assert new_files(list_inbox(inbox, cfg), first.cursor).files == []
    # The cursor lost: the same batch gets the same run key (Dagster drops the repeat).
    assert new_files(list_inbox(inbox, cfg), None).run_key == first.run_key
    # New content under the same name is new content.
    _write(a, HEADER + "O2,C1,2025-01-02,P,x,1,1,web,UK\n")
    changed = new_files(list_inbox(inbox, cfg), first.cursor)
    assert [name for name, _ in changed.files] == ["a.csv"] and changed.run_key != first.run_key


def test_inbox_config_shorthand_and_where_an_inbox_is_refused(tmp_path):
    path = tmp_path / "shop.yaml"
    base = "transactions:\n  path: t.csv\n  columns: {customer_id: c, ordered_at: d, amount: a}\n"
    path.write_text(base + "  inbox: new\n", encoding="utf-8")
    assert load_config(path).inbox_dir() == (tmp_path / "new").resolve()
    path.write_text(base + "customers:\n  path: c.csv\n  inbox: new\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="only the transactions source has an inbox"):
        load_config(path)


# --- incremental appends (no pipeline) -----------------------------------------------------


def test_incremental_append_is_exactly_once_and_checks_keys_against_loaded_rows(tmp_path):
    _write(tmp_path / "base.csv", HEADER + "O1,C1,2025-01-01,P1,x,1,10,web,UK\n")
    cfg = _config(tmp_path, unique_key=["order_id", "product_id"])
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(IngestError, match="no full load yet"):
        ingest_incremental(con, cfg, "r0", log=_quiet)
    ingest(con, cfg, "r1", log=_quiet)
    _write(
        tmp_path / "inbox" / "d1.csv",
        HEADER
        + "O1,C1,2025-01-01,P1,x,1,10,web,UK\n"  # exact repeat of a loaded line: kept
        + "O1,C1,2025-01-01,P1,x,5,10,web,UK\n"  # same key as a loaded line, other values
        + "O2,C2,2025-01-03,P1,x,1,10,web,UK\n",
    )
    result = ingest_incremental(con, cfg, "r2", log=_quiet)
    assert result.totals("transactions") == (3, 2, 1)
    reason = con.execute("select reason from raw.quarantine_transactions").fetchall()
    assert reason == [("duplicate key (order_id, product_id)",)]
    # The same file again (a retried run), or a copy under another name: nothing loaded.
    (tmp_path / "inbox" / "copy.csv").write_bytes((tmp_path / "inbox" / "d1.csv").read_bytes())
    _settle(tmp_path / "inbox" / "copy.csv")
    again = ingest_incremental(con, cfg, "r3", ["d1.csv", "copy.csv"], log=_quiet)
    assert again.files == [] and len(again.skipped) == 2
    assert con.execute("select count(*) from raw.transactions").fetchone() == (3,)
    log = con.execute(
        "select file, mode, rows_read, rows_loaded, rows_rejected from raw.load_log order by load_seq"
    ).fetchall()
    assert [(Path(f).name, m, r, ok, bad) for f, m, r, ok, bad in log] == [
        ("base.csv", "full", 1, 1, 0),
        ("d1.csv", "incremental", 3, 2, 1),
    ]


def test_a_load_log_from_before_incremental_loads_gets_the_new_columns(tmp_path):
    _write(tmp_path / "base.csv", HEADER + "O1,C1,2025-01-01,P1,x,1,10,web,UK\n")
    cfg = _config(tmp_path)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ingest(con, cfg, "r1", log=_quiet)
    for column in ("mode", "load_seq", "content_sha256"):  # as an older version wrote it
        con.execute(f"alter table raw.load_log drop column {column}")
    _write(tmp_path / "inbox" / "d1.csv", HEADER + "O2,C2,2025-01-02,P1,x,1,10,web,UK\n")
    assert len(ingest_incremental(con, cfg, "r2", log=_quiet).files) == 1
    assert ingest_incremental(con, cfg, "r3", log=_quiet).files == []
    assert con.execute("select count(*) from raw.transactions").fetchone() == (2,)


def test_full_load_reads_the_inbox_once_and_a_changed_delivery_is_refused(tmp_path):
    _write(tmp_path / "base.csv", HEADER + "O1,C1,2025-01-01,P1,x,1,10,web,UK\n")
    d1 = _write(tmp_path / "inbox" / "d1.csv", HEADER + "O2,C2,2025-01-02,P1,x,1,10,web,UK\n")
    _write(tmp_path / "inbox" / "d2-copy.csv", d1.read_text(encoding="utf-8"))
    cfg = _config(tmp_path)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    result = ingest(con, cfg, "r1", log=_quiet)
    assert [Path(f.file).name for f in result.files if f.source == "transactions"] == [
        "base.csv",
        "d1.csv",  # d2-copy.csv, the same content, is not loaded twice
    ]
    assert con.execute("select count(*) from raw.transactions").fetchone() == (2,)
    assert ingest_incremental(con, cfg, "r2", log=_quiet).files == []  # both already in raw

    _write(d1, HEADER + "O3,C3,2025-01-03,P1,x,1,10,web,UK\n")  # changed after delivery
    with pytest.raises(IngestError, match="loaded before with other content"):
        ingest_incremental(con, cfg, "r3", ["d1.csv"], log=_quiet)
    assert con.execute("select count(*) from raw.transactions").fetchone() == (2,)
    # A full load reads it as it is now.
    ingest(con, cfg, "r4", log=_quiet)
    rows = con.execute("select order_id from raw.transactions order by 1").fetchall()
    assert rows == [("O1",), ("O2",), ("O3",)]


# --- sensor -> run -> re-scored customers (the pipeline) ----------------------------------

SCORE_COLUMNS = ("clv", "p_alive", "churn_probability")


def _scores(workdir: Path) -> dict[str, tuple]:
    rows = query(
        workdir,
        f"select s.customer_id, {', '.join(f's.{c}' for c in SCORE_COLUMNS)}, c.cluster_id "
        "from ml.customer_scores s join ml.customer_clusters c using (customer_id)",
    )
    return {r[0]: r[1:] for r in rows}


def _run(settings: Settings, job: str, run_config: dict) -> None:
    out = io.StringIO()
    result = run_pipeline(settings, stream=out, job_name=job, run_config=run_config)
    errors = [e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure]
    assert result.success, "\n".join(errors) + out.getvalue()


def test_sensor_run_loads_each_file_once_and_rescores_only_customers_with_new_data(
    published_demo, tmp_path
):
    """Two files dropped into the demo inbox; the sensor is evaluated twice, the run it asks
    for is executed, then retried.

    The as-of date is pinned to the published one and the new orders are dated before it.
    Otherwise the new orders (after the last day) would move the as-of date, which changes
    every customer's recency and hence everybody's scores. With the date pinned, a customer
    without new orders has the same features, so the saved models must give the same
    scores and segment; a customer with new orders must get new ones.
    """
    workdir = copy_workdir(published_demo, tmp_path / "wd")
    ((as_of,),) = query(workdir, "select max(as_of_date) from features.customer_features")
    settings = Settings(workdir=str(workdir), as_of_date=as_of.isoformat())
    before = _scores(workdir)
    ((raw_before,),) = query(workdir, "select count(*) from raw.transactions")
    ((quarantined_before,),) = query(workdir, "select count(*) from raw.quarantine_transactions")

    customers = sorted(before)
    day = (as_of - dt.timedelta(days=3)).isoformat()
    # File a: three known customers and one not seen before; file b: three more and a bad row.
    first, second = [*customers[:3], "CNEW0001"], customers[10:13]
    inbox = workdir / "demo_data" / "inbox"
    lines_a = [
        f"N{i:04d},{c},{day} 10:00:00,P0001,Toys,2,25.00,web,France" for i, c in enumerate(first)
    ]
    lines_b = [
        f"N1{i:03d},{c},{day} 11:00:00,P0002,Books & Media,1,12.50,app,Spain"
        for i, c in enumerate(second)
    ]
    lines_b.insert(1, f"N1999,{second[0]},31/02/2025,P0003,Toys,1,5.00,web,Spain")  # bad date
    _write(inbox / "2026-01-01_a.csv", HEADER + "\n".join(lines_a) + "\n")
    _write(inbox / "2026-01-01_b.csv", HEADER + "\n".join(lines_b) + "\n")

    # The sensor, evaluated twice: one request for both files, then nothing new.
    from orchestration.definitions import build_definitions

    defs = build_definitions(settings.resolved())
    sensor = defs.resolve_sensor_def("inbox_sensor")
    with dg.instance_for_test() as instance:
        tick = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
        assert len(tick.run_requests) == 1
        request = tick.run_requests[0]
        again = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=tick.cursor, definitions=defs)
        )
        assert again.run_requests == [] and "no new files" in again.skip_message
        lost = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
        assert lost.run_requests[0].run_key == request.run_key  # Dagster drops a repeated key
    config = request.run_config["ops"]["ingest_sources"]["config"]
    assert config == {"mode": "incremental", "files": ["2026-01-01_a.csv", "2026-01-01_b.csv"]}

    features_log = workdir / "dbt" / "features" / "dbt.log"
    features_log.unlink()
    _run(settings, request.job_name or "incremental_scoring", request.run_config)
    # The job builds part of the features, in this process on the parsed project (a dbt
    # subprocess would log its parse): orchestration/dbt_build.py's subset_selection.
    built = features_log.read_text(encoding="utf-8")
    assert "Running with dbt" in built and "partial parsing" not in built.lower()

    # Each file once in the load log, reconciled; raw grew by exactly the accepted rows.
    log = query(
        workdir,
        "select file, mode, rows_read, rows_loaded, rows_rejected from raw.load_log "
        "where file like '%/inbox/%' order by file",
    )
    assert [(Path(f).name, *rest) for f, *rest in log] == [
        ("2026-01-01_a.csv", "incremental", 4, 4, 0),
        ("2026-01-01_b.csv", "incremental", 4, 3, 1),
    ]
    ((raw_after,),) = query(workdir, "select count(*) from raw.transactions")
    assert raw_after == raw_before + 7
    bad = query(
        workdir,
        "select source_file, source_row, reason from raw.quarantine_transactions "
        "where source_file like '%_b.csv'",
    )
    assert [(Path(f).name, r, why) for f, r, why in bad] == [
        ("2026-01-01_b.csv", 2, "unparseable date ordered_at (order_date)")
    ]
    ((unreconciled,),) = query(
        workdir, "select count(*) from raw.load_log where rows_read <> rows_loaded + rows_rejected"
    )
    assert unreconciled == 0
    ((quarantined_after,),) = query(workdir, "select count(*) from raw.quarantine_transactions")
    assert quarantined_after == quarantined_before + 1

    # Scores: changed exactly for the customers with new orders.
    after = _scores(workdir)
    assert set(after) == set(before) | {"CNEW0001"}  # the new customer is scored too
    new_data = (set(first) | set(second)) - {"CNEW0001"}
    changed = {c for c in before if before[c] != after[c]}
    assert changed == new_data
    assert all(after[c][0] != before[c][0] for c in new_data)  # clv moved for each

    # dbt built the transaction models incrementally: the rows of the full load kept its
    # load_seq, only the new lines (and what they touch) carry the new load's.
    ((full_seq, new_seq),) = query(
        workdir,
        "select max(load_seq) filter (where mode = 'full'), max(load_seq) from raw.load_log",
    )
    for model in ("int_transactions_deduped", "int_orders", "int_customer_order_totals"):
        stamps = dict(
            query(workdir, f"select load_seq, count(*) from intermediate.{model} group by 1")
        )
        assert set(stamps) == {full_seq, new_seq} and stamps[full_seq] > stamps[new_seq], model
    assert stamps[new_seq] == len(new_data) + 1  # the customers with new lines, and CNEW0001

    # A retry of the same request (here its ingest step) loads nothing twice.
    job = defs.resolve_job_def("incremental_scoring")
    with dg.instance_for_test() as instance:
        retry = job.execute_in_process(
            run_config=request.run_config, instance=instance, op_selection=["ingest_sources"]
        )
    assert retry.success
    meta = retry.asset_materializations_for_node("ingest_sources")[0].metadata
    assert len(meta["skipped_files"].value) == 2 and meta["rows_loaded"].value == 0
    assert query(workdir, "select count(*) from raw.transactions") == [(raw_after,)]
    assert len(query(workdir, "select * from raw.load_log where file like '%/inbox/%'")) == 2

    # A full refresh reads the configured file and both inbox files, once each.
    with duckdb.connect(str(workdir / "warehouse.duckdb")) as con:
        ingest(con, demo_config(workdir / "demo_data"), "full-refresh", log=_quiet)
        assert con.execute("select count(*) from raw.transactions").fetchone() == (raw_after,)
        files = con.execute(
            "select file from raw.load_log where run_id = 'full-refresh' and source = 'transactions'"
        ).fetchall()
    assert sorted(Path(f).name for (f,) in files) == [
        "2026-01-01_a.csv",
        "2026-01-01_b.csv",
        "transactions.csv",
    ]


# --- dbt: a full refresh after a full load, incremental models after an append ------------


def test_the_features_step_refreshes_in_full_only_after_a_full_load():
    from orchestration.assets.dbt import INGEST_NODE, full_refresh
    from orchestration.assets.ingest import ingest_run_config
    from orchestration.definitions import defs

    assert full_refresh({}, runs_ingest=True)  # full_pipeline, scoring_pipeline, `custseg run`
    assert full_refresh(ingest_run_config("full"), runs_ingest=True)
    assert not full_refresh(ingest_run_config("incremental", ["a.csv"]), runs_ingest=True)
    # dbt alone (e.g. from the UI): the models check raw.load_log themselves
    assert not full_refresh({}, runs_ingest=False)
    for name in ("full_pipeline", "scoring_pipeline", "incremental_scoring"):
        assert defs.resolve_job_def(name).has_node_named(INGEST_NODE), name
