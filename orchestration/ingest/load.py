"""Load the configured sources into DuckDB ``raw.*`` (docs/data_contract.md).

Every input row ends up in exactly one place: ``raw.<source>`` when it parses,
``raw.quarantine_<source>`` with a reason when it does not. ``raw.load_log``
records rows read / loaded / rejected per file, and rows read always equals
loaded + rejected. A file that cannot be read at all, or lacks a required
column, raises :class:`IngestError` naming the file and the column; the
previous raw tables are left untouched because the swap happens in one
transaction at the end. A database source (orchestration/ingest/database/read.py) is
streamed into the same ``src`` relation a file gets and goes through the same
rules; it is named by its URL without the password.

Where the rules live:

* file_sources.py reads a file into ``src``; for CSV, csv_records.py first sets aside
  records whose structure is broken (``wrong field count``, ``unterminated quote``,
  ``text after closing quote``, ``carriage return outside quotes``, each with its line),
  so no value is ever read from the wrong column; whitespace files get the field count rule;
* value_rules.py parses each mapped column (canonical ids, text trimmed of Unicode white
  space, numbers, dates with UTC offsets) and names each failing rule: ``missing``,
  ``unparseable date``, ``time-zone offset out of range``, ``date in the future`` (after
  the load date + 1 day, the ``today`` argument), ``date before <earliest_date>``,
  ``non-numeric`` / ``non-integer`` / ``non-finite``, ``inexact float`` (a float id beyond
  2^53), ``out of range`` (a quantity or amount beyond DECIMAL(18,4)), ``non-positive
  unit_price`` (unless ``allow_non_positive_price``);
* quarantine.py writes the staging tables, with ``duplicate key (...)`` for a later
  otherwise-valid line whose ``unique_key`` was seen with other values (the first wins;
  exact repeats are kept); load_log.py swaps or appends them and logs the counts.

Each failing rule adds ``<rule> <canonical> (<your column>)`` (structural ones: the rule and
the line) to the row's reason; several are joined with ``'; '``.

File-level problems raise :class:`IngestError`: an empty (0-byte) file, a missing mapped
column (all of them are listed), bytes that are not valid in the declared encoding (line
and byte offset), a record longer than ``max_line_size``, a header that cannot be read, an
unreadable or corrupt file. A header-only file is a valid empty delivery: 0 rows, logged
in ``raw.load_log``. ``_source_row`` / ``source_row`` is the 1-based *data row* (a quoted
field spanning several physical lines is one row; the header and empty lines are not
counted).

Two modes. :func:`ingest` (full) replaces ``raw.*`` with the configured sources and then
every file in the transactions inbox (``transactions.inbox``). :func:`ingest_incremental`
appends inbox files to ``raw.transactions`` / ``raw.quarantine_transactions``, with the
same rules (a duplicate key is checked against the rows already loaded too). Each file's
SHA-256 is in ``raw.load_log``; content already loaded since the last full load is skipped,
so a retried or repeated request loads nothing twice, and the append and its log rows are
one transaction. An inbox file whose name was loaded with other content is an error:
deliveries are immutable (a full load reads the current content).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import duckdb

from orchestration.ingest.delivery import check_staged_as_of, transaction_range
from orchestration.ingest.file_sources import (
    infer_format,
    read_error,
    register_source,
    resolve_files,
)
from orchestration.ingest.inbox import inbox_path, list_inbox, sha256_file
from orchestration.ingest.load_log import (
    append,
    ensure_load_log,
    has_table,
    loaded_content,
    publish,
    staging_tables,
)
from orchestration.ingest.quarantine import load_src
from orchestration.ingest.types import FileLoad, IngestError, IngestResult
from orchestration.io.config import CANONICAL, ProjectConfig, SourceConfig

__all__ = [
    "FileLoad",
    "IngestError",
    "IngestResult",
    "delivery_range",
    "ingest",
    "ingest_incremental",
    "staged",
]


def ingest(
    con: duckdb.DuckDBPyConnection,
    config: ProjectConfig,
    run_id: str,
    data_root: str | None = None,
    log=print,
    today: dt.date | None = None,
    environ: Mapping[str, str] | None = None,
    as_of: dt.date | None = None,
) -> IngestResult:
    """Full load of every configured source into ``raw.*``, replacing the previous load.

    ``today`` is the load date for the "date in the future" rule (default: the local date);
    ``environ`` holds database credentials (default: the process environment). A delivery
    that cannot be scored as of ``as_of`` (the run's as-of date; None: the day after its
    last transaction) raises :class:`~orchestration.ingest.delivery.DeliveryError` before
    ``raw.*`` changes.
    """
    result = _stage(con, config, run_id, data_root, log, today, environ, list(CANONICAL))
    check_staged_as_of(con, as_of, "_ok_transactions")
    publish(con, result)
    return result


def delivery_range(
    config: ProjectConfig,
    data_root: str | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> tuple[dt.date, dt.date] | None:
    """(first, last) date of the transactions a full load would accept now, or None.

    The transactions files (and inbox) go through the ingest's own rules into a throwaway
    in-memory database (:func:`staged`), so the range is exactly the one :func:`ingest`
    will check; this costs one more read of them. ``custseg run --as-of`` calls it to
    refuse a date outside the data before the run starts (orchestration/cli.py).
    """
    with staged(config, data_root, memory_limit, ["transactions"], threads=threads) as (con, _):
        return transaction_range(con, "_ok_transactions")


@contextlib.contextmanager
def staged(
    config: ProjectConfig,
    data_root: str | None = None,
    memory_limit: str | None = None,
    sources: Sequence[str] | None = None,
    today: dt.date | None = None,
    threads: int | None = None,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, IngestResult]]:
    """``sources`` (default: all configured) read through the ingest's rules into a
    throwaway in-memory DuckDB: yields it, with the staging tables ``_ok_<source>`` (the
    rows a load would publish) and ``_bad_<source>`` (those it would quarantine, with the
    reason), and the :class:`IngestResult`. Nothing outside it changes; raises
    :class:`IngestError` as a load would. ``custseg check`` reports on it."""
    settings: dict = {"memory_limit": memory_limit} if memory_limit else {}
    if threads:
        settings["threads"] = threads
    with (
        tempfile.TemporaryDirectory(prefix="custseg-stage-") as tmp,
        duckdb.connect(config={**settings, "temp_directory": tmp}) as con,
    ):
        wanted = list(CANONICAL) if sources is None else list(sources)
        result = _stage(con, config, "check", data_root, lambda *_: None, today, None, wanted)
        yield con, result


def _stage(con, config, run_id, data_root, log, today, environ, sources) -> IngestResult:
    """Read ``sources`` (and the transactions inbox) into the staging tables ``_ok_*`` /
    ``_bad_*`` of ``con``; ``raw.*`` is not touched."""
    root = config.resolve_root(data_root)
    today = today or dt.date.today()
    result = IngestResult(run_id=run_id)
    con.execute("create schema if not exists raw")
    staging_tables(con, list(CANONICAL))
    for source, cfg in config.sources().items():
        if cfg is None or source not in sources:
            continue
        if cfg.database is not None:
            # Imported here: the database drivers load only for a database source.
            from orchestration.ingest.database.read import stage_source

            staged = stage_source(con, source, cfg, log, environ)
            load = load_src(con, source, cfg, staged.name, run_id, today)
            load.mark_column, load.mark_to = staged.mark_column, staged.mark_to
            result.files.append(load)
            log_counts(log, result.files[-1])
            continue
        for path in resolve_files(cfg, root, source):
            load_file(con, source, cfg, path, sha256_file(path), run_id, today, result, log)
    inbox = config.inbox_dir(data_root)
    if inbox is not None and "transactions" in sources:
        cfg = config.transactions
        loaded = {f.content_sha256: f.file for f in result.files if f.content_sha256}
        for f in list_inbox(inbox, cfg.inbox):
            sha = sha256_file(f.path)
            if sha in loaded:
                skip_file(result, log, str(f.path), f"same content as {loaded[sha]}")
                continue
            loaded[sha] = str(f.path)
            load_file(con, "transactions", cfg, f.path, sha, run_id, today, result, log)
    return result


def ingest_incremental(
    con: duckdb.DuckDBPyConnection,
    config: ProjectConfig,
    run_id: str,
    files: Sequence[str] = (),
    data_root: str | None = None,
    log=print,
    today: dt.date | None = None,
    as_of: dt.date | None = None,
) -> IngestResult:
    """Append inbox files (names relative to the inbox; none: every complete inbox file)
    to ``raw.transactions``, each content once (module docstring); nothing else changes.
    ``as_of`` is checked against the transactions after the append, as in :func:`ingest`."""
    folder = config.inbox_dir(data_root)
    cfg = config.transactions
    if folder is None or cfg.inbox is None:
        raise IngestError("incremental load: the config has no `transactions.inbox` folder")
    if not has_table(con, "raw", "transactions"):
        raise IngestError(
            "incremental load: no full load yet (raw.transactions does not exist); "
            "run a full load first (job full_pipeline)"
        )
    today = today or dt.date.today()
    if files:
        paths = [inbox_path(folder, name) for name in files]
    else:
        paths = [f.path for f in list_inbox(folder, cfg.inbox)]
    ensure_load_log(con)
    loaded = loaded_content(con)
    by_name = {file: sha for sha, file in loaded.items()}
    result = IngestResult(run_id=run_id, mode="incremental")
    todo: list[tuple[Path, str]] = []
    for path in paths:
        if not path.is_file():
            raise IngestError(f"{path}: no such file in the inbox")
        sha = sha256_file(path)
        if sha in loaded:
            other = "" if loaded[sha] == str(path) else f" as {loaded[sha]} (same content)"
            skip_file(result, log, str(path), f"already loaded{other}")
            continue
        if str(path) in by_name:
            raise IngestError(
                f"{path}: a file of this name was loaded before with other content; inbox "
                "files must not change once delivered: give new data a new file name, or run "
                "a full load (job full_pipeline or scoring_pipeline), which reads it as it is now"
            )
        loaded[sha], by_name[str(path)] = str(path), sha
        todo.append((path, sha))
    staging_tables(con, ["transactions"])
    # The duplicate-key rule sees the rows already loaded before this batch's.
    con.execute(
        "create or replace temp view _earlier_transactions as "
        "select * from raw.transactions union all by name select * from _ok_transactions"
    )
    for path, sha in todo:
        load_file(
            con, "transactions", cfg, path, sha, run_id, today, result, log,
            earlier="_earlier_transactions",
        )  # fmt: skip
    if result.files:
        check_staged_as_of(con, as_of, "raw.transactions", "_ok_transactions")
        append(con, result)
    else:
        log("  no new inbox files to load")
    return result


def load_file(
    con: duckdb.DuckDBPyConnection,
    source: str,
    cfg: SourceConfig,
    path: Path,
    sha: str,
    run_id: str,
    today: dt.date,
    result: IngestResult,
    log,
    earlier: str | None = None,
) -> None:
    log(f"  reading {source}: {path}")
    # Working copies (a CSV without its broken records) sit beside the warehouse.
    with tempfile.TemporaryDirectory(prefix=".ingest-", dir=_scratch_dir(con)) as tmp:
        try:
            register_source(con, cfg, path, Path(tmp))
            load = load_src(con, source, cfg, str(path), run_id, today, earlier, rejects=True)
        except duckdb.Error as exc:
            # E.g. a Parquet page that is corrupt although the footer reads.
            raise read_error(path, infer_format(cfg, path), cfg, exc) from exc
        finally:
            con.execute("drop view if exists src")
    load.content_sha256 = sha
    result.files.append(load)
    log_counts(log, load)


def _scratch_dir(con: duckdb.DuckDBPyConnection) -> str | None:
    """The warehouse's folder (None for an in-memory database: the system's temp folder)."""
    row = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return str(Path(row[0]).resolve().parent) if row and row[0] else None


def skip_file(result: IngestResult, log, file: str, reason: str) -> None:
    log(f"  skipping {file}: {reason}")
    result.skipped.append({"file": file, "reason": reason})


def log_counts(log, f: FileLoad) -> None:
    log(f"    {f.rows_read:,} rows read, {f.rows_loaded:,} loaded, {f.rows_rejected:,} quarantined")
