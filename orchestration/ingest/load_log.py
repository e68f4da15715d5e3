"""The raw tables' bookkeeping: staging tables, ``raw.load_log``, and the all-or-nothing
swap (full load) or append (incremental load) of what one load parsed."""

from __future__ import annotations

import duckdb

from orchestration.ingest.types import IngestError, IngestResult
from orchestration.io.config import CANONICAL


def table_ddl(source: str) -> str:
    cols = [f"{name} {typ}" for name, typ in CANONICAL[source].items()]
    if source == "transactions":
        cols.append("is_cancellation BOOLEAN")
    cols += ["_source_file VARCHAR", "_source_row BIGINT"]
    return ", ".join(cols)


QUARANTINE_DDL = (
    "run_id VARCHAR, source_file VARCHAR, source_row BIGINT, reason VARCHAR, "
    "raw_record VARCHAR, quarantined_at TIMESTAMP"
)
LOAD_LOG_DDL = (
    "run_id VARCHAR, source VARCHAR, file VARCHAR, rows_read BIGINT, rows_loaded BIGINT, "
    "rows_rejected BIGINT, loaded_at TIMESTAMP"
)
# Added with incremental loads (older warehouses get them on their next load): the load's
# mode, its number (a full load starts a new generation of raw.*) and the file's SHA-256.
LOAD_LOG_ADDED = {"mode": "VARCHAR", "load_seq": "BIGINT", "content_sha256": "VARCHAR"}
# Added with database high-water marks: the column and the range of it each load read.
LOAD_LOG_ADDED |= {"mark_column": "VARCHAR", "mark_from": "VARCHAR", "mark_to": "VARCHAR"}


def staging_tables(con: duckdb.DuckDBPyConnection, sources: list[str]) -> None:
    """Temp tables ``_ok_<source>`` / ``_bad_<source>`` that the files of a load fill."""
    for source in sources:
        con.execute(f"create or replace temp table _ok_{source} ({table_ddl(source)})")
        con.execute(f"create or replace temp table _bad_{source} ({QUARANTINE_DDL})")


def has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? "
            "and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def ensure_load_log(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw")
    con.execute(f"create table if not exists raw.load_log ({LOAD_LOG_DDL})")
    for name, typ in LOAD_LOG_ADDED.items():
        con.execute(f"alter table raw.load_log add column if not exists {name} {typ}")


def loaded_content(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """SHA-256 -> file of the transaction files whose rows are in raw.* now: those of the
    last full load and of the incremental loads after it (rows logged before load_seq
    existed have no hash, and their full load counts as number 0)."""
    rows = con.execute(
        """
        select content_sha256, file from raw.load_log
        where source = 'transactions' and content_sha256 is not null
          and load_seq >= coalesce((select max(load_seq) from raw.load_log where mode = 'full'), 0)
        order by load_seq
        """
    ).fetchall()
    return dict(rows)


def _log_rows(con: duckdb.DuckDBPyConnection, result: IngestResult) -> None:
    """``raw.load_log`` rows for ``result``, numbered after every earlier load."""
    (seq,) = con.execute("select coalesce(max(load_seq), 0) + 1 from raw.load_log").fetchone()
    for f in result.files:
        con.execute(
            "insert into raw.load_log (run_id, source, file, rows_read, rows_loaded, "
            "rows_rejected, loaded_at, mode, load_seq, content_sha256, mark_column, "
            "mark_from, mark_to) values (?, ?, ?, ?, ?, ?, current_localtimestamp(), ?, ?, ?, "
            "?, ?, ?)",
            [result.run_id, f.source, f.file, f.rows_read, f.rows_loaded, f.rows_rejected,
             result.mode, seq, f.content_sha256, f.mark_column, f.mark_from, f.mark_to],
        )  # fmt: skip


def file_order(con: duckdb.DuckDBPyConnection, table: str, file: str, row: str) -> str:
    """The ORDER BY that puts ``table`` in file and row order, or nothing when its rows
    are in that order already (files read one after another usually are): a scan in
    table order costs far less than sorting millions of rows. Table order is what DuckDB
    keeps with ``preserve_insertion_order`` (its default)."""
    (unordered,) = con.execute(
        f"select count(*) from (select {file} as f, {row} as r, lag({file}) over () as pf, "
        f"lag({row}) over () as pr from {table}) where f < pf or (f = pf and r <= pr)"
    ).fetchone()
    return f" order by {file}, {row}" if unordered else ""


def publish(con: duckdb.DuckDBPyConnection, result: IngestResult) -> None:
    """Swap the new load in, all or nothing."""
    con.execute("begin transaction")
    try:
        ensure_load_log(con)
        for source in CANONICAL:
            con.execute(
                f"create or replace table raw.{source} as select * from _ok_{source}"
                f"{file_order(con, f'_ok_{source}', '_source_file', '_source_row')}"
            )
            con.execute(
                f"create or replace table raw.quarantine_{source} as select * from _bad_{source}"
                f"{file_order(con, f'_bad_{source}', 'source_file', 'source_row')}"
            )
        _log_rows(con, result)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def append(con: duckdb.DuckDBPyConnection, result: IngestResult, check=None) -> None:
    """Append an incremental load and its log rows, all or nothing. ``check(con)`` runs
    first inside the transaction (the database path re-reads its high-water mark)."""
    con.execute("begin transaction")
    try:
        if check is not None:
            check(con)
        # Checked again where it is written. Runs hold the workdir lock, so nothing
        # should have loaded these files since; if something did, load nothing.
        again = loaded_content(con)
        twice = [f.file for f in result.files if f.content_sha256 in again]
        if twice:
            raise IngestError(f"loaded by another run meanwhile, nothing appended: {twice}")
        con.execute(
            "insert into raw.transactions by name select * from _ok_transactions "
            "order by _source_file, _source_row"
        )
        con.execute(
            "insert into raw.quarantine_transactions by name select * from _bad_transactions "
            "order by source_file, source_row"
        )
        _log_rows(con, result)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
