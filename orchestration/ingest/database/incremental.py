"""Append the new rows of a database table to ``raw.transactions`` (``incremental:``).

The warehouse is loaded through a high-water mark W: the largest value of the
column read by the last full load, or by an incremental load after it
(``raw.load_log.mark_to``). A load asked for rows up to ``through`` reads
``W < column <= through`` from the database and appends them with the rules,
quarantine and reconciliation of a full load (a duplicate key is checked against
the rows already loaded too), logging one ``raw.load_log`` row (mode incremental,
``mark_from`` W, ``mark_to`` ``through``). The lower bound is the warehouse's own
mark, not the requester's, so each row is loaded once: a retried run, or the same
range asked twice, finds W = ``through`` and loads nothing; a range asked after a
full refresh starts where that refresh stopped; a range whose run failed is picked
up by the next one. W is read again inside the transaction that appends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import duckdb

from orchestration.ingest.database.high_water import (
    encode_mark,
    loaded_mark,
    mark_value,
    max_target,
    range_target,
    shown,
)
from orchestration.ingest.database.read import fetch_value, resolve, stage_target
from orchestration.ingest.delivery import check_staged_as_of
from orchestration.ingest.load import log_counts, skip_file
from orchestration.ingest.load_log import append, ensure_load_log, has_table, staging_tables
from orchestration.ingest.quarantine import load_src
from orchestration.ingest.types import IngestError, IngestResult
from orchestration.io.config import ProjectConfig


def ingest_new_rows(
    con: duckdb.DuckDBPyConnection,
    config: ProjectConfig,
    run_id: str,
    after: str | None = None,
    through: str | None = None,
    log=print,
    today: dt.date | None = None,
    environ: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
) -> IngestResult:
    """Append the rows above the warehouse's mark up to ``through`` (a ``kind:value`` mark;
    None: the table's largest value now). ``after`` is the mark the requester saw, only
    compared with the warehouse's for the log. Module docstring: why this is exactly once.
    ``as_of`` is checked against the transactions after the append, before it is made
    (orchestration/ingest/delivery.py)."""
    cfg = config.transactions
    if cfg.database is None or cfg.incremental is None:
        raise IngestError(
            "incremental load: the transactions source is not a database table with "
            "`incremental: {column: ...}`"
        )
    if not has_table(con, "raw", "transactions"):
        raise IngestError(
            "incremental load: no full load yet (raw.transactions does not exist); "
            "run a full load first (job full_pipeline)"
        )
    column = cfg.incremental.column
    ensure_load_log(con)
    loaded = loaded_mark(con, column)
    result = IngestResult(run_id=run_id, mode="incremental")
    target = resolve(cfg, "transactions", environ)
    if through is None:
        through = encode_mark(fetch_value(max_target(target, column)), target, column)
    else:
        mark_value(through)  # a malformed mark from a hand-written run config fails here
    if through is None or through == loaded:
        what = f"{column} = {shown(loaded)}" if loaded else "its empty state"
        skip_file(result, log, target.name, f"already loaded through {what}")
        return result
    if after != loaded and after is not None:
        log(
            f"  the warehouse is loaded through {column} = {shown(loaded) if loaded else '-'}, "
            f"not {shown(after)}: loading from there"
        )
    ranged = range_target(target, column, loaded, through)
    stage_target(con, ranged, "transactions", log)
    staging_tables(con, ["transactions"])
    # The duplicate-key rule sees the rows already loaded.
    con.execute(
        "create or replace temp view _earlier_transactions as "
        "select * from raw.transactions union all by name select * from _ok_transactions"
    )
    today = today or dt.date.today()
    load = load_src(
        con, "transactions", cfg, ranged.name, run_id, today, earlier="_earlier_transactions"
    )
    log_counts(log, load)
    if load.rows_read == 0:
        # Nothing in the range (a stale request after a full refresh, or rows deleted):
        # nothing to log; the mark stays where the rows are.
        skip_file(result, log, ranged.name, "no rows in this range")
        return result
    load.mark_column, load.mark_from, load.mark_to = column, loaded, through
    result.files.append(load)

    def unchanged(con: duckdb.DuckDBPyConnection) -> None:
        # Runs hold the workdir lock, so nothing should have loaded meanwhile; if
        # something did, append nothing rather than risk a row twice.
        now = loaded_mark(con, column)
        if now != loaded:
            raise IngestError(
                f"{ranged.name}: loaded by another run meanwhile (the mark moved from "
                f"{loaded} to {now}), nothing appended"
            )

    check_staged_as_of(con, as_of, "raw.transactions", "_ok_transactions")
    append(con, result, check=unchanged)
    return result
