"""Load the configured sources into DuckDB ``raw.*`` (docs/data_contract.md).

Every input row ends up in exactly one place: ``raw.<source>`` when it parses,
``raw.quarantine_<source>`` with a reason when it does not. ``raw.load_log``
records rows read / loaded / rejected per file, and rows read always equals
loaded + rejected. A file that cannot be read at all, or lacks a required
column, raises :class:`IngestError` naming the file and the column; the
previous raw tables are left untouched because the swap happens in one
transaction at the end. A database source (orchestration/io/database.py) is
streamed into the same ``src`` relation a file gets and goes through the same
rules; it is named by its URL without the password.

Row-level rules (each failing rule adds ``<rule> <canonical> (<your column>)`` to the
row's reason; several are joined with ``'; '``):

* ``missing <col>``: customer id, date, order id or a number is empty / whitespace only;
* ``unparseable date``: not ISO, or none of ``date_format`` / ``date_formats`` fits;
* ``date in the future``: the date falls after the load date + 1 day (``today`` argument);
* ``non-numeric`` / ``non-integer`` / ``non-finite`` (``NaN``, ``inf``, ``-Infinity``);
* ``non-positive unit_price``: price < 0, or 0 with a positive quantity (unless
  ``allow_non_positive_price``); returns (negative quantity) and cancellations are data;
* ``duplicate key (...)``: with ``unique_key``, a later otherwise-valid line whose key was
  already seen with different values (the first line wins; exact repeats are kept).

File-level problems raise :class:`IngestError`: an empty (0-byte) file, a missing mapped
column (all of them are listed), bytes that are not valid in the declared encoding (line
and byte offset), a line longer than ``max_line_size``, an unreadable or corrupt file.
A header-only file is a valid empty delivery: 0 rows, logged in ``raw.load_log``.
``_source_row`` / ``source_row`` is the 1-based *data row* (a quoted field spanning several
physical lines is one row; the header is not counted).

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

import codecs
import datetime as dt
import glob
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration.io.config import CANONICAL, REQUIRED, ProjectConfig, SourceConfig
from orchestration.io.inbox import inbox_path, list_inbox, sha256_file
from orchestration.io.sql import ident, literal

NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "DECIMAL")  # fmt: skip
FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")


class IngestError(ValueError):
    """An input that cannot be loaded at all; the message names the file and what is wrong."""


@dataclass
class FileLoad:
    source: str
    file: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    content_sha256: str | None = None  # None for a database source
    # A database table with `incremental:`: its column and the rows' range of it,
    # mark_from < column <= mark_to (orchestration/io/high_water.py); None otherwise.
    mark_column: str | None = None
    mark_from: str | None = None
    mark_to: str | None = None


@dataclass
class IngestResult:
    run_id: str
    files: list[FileLoad] = field(default_factory=list)
    mode: str = "full"  # or "incremental"
    # Inbox files not loaded because their content already was: {file, reason}.
    skipped: list[dict] = field(default_factory=list)

    def totals(self, source: str) -> tuple[int, int, int]:
        rows = [f for f in self.files if f.source == source]
        return (
            sum(f.rows_read for f in rows),
            sum(f.rows_loaded for f in rows),
            sum(f.rows_rejected for f in rows),
        )


def _table_ddl(source: str) -> str:
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


def resolve_files(cfg: SourceConfig, root: Path, source: str) -> list[Path]:
    patterns = [cfg.path] if isinstance(cfg.path, str) else list(cfg.path)
    files: list[Path] = []
    for pattern in patterns:
        full = Path(pattern) if Path(pattern).is_absolute() else root / pattern
        matches = sorted(Path(p) for p in glob.glob(str(full)))
        if not matches:
            raise IngestError(f"{source}: no file matches {full}")
        files.extend(matches)
    return files


def _infer_format(cfg: SourceConfig, path: Path) -> str:
    if cfg.format:
        return cfg.format
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".txt", ".dat"):
        return "whitespace"
    raise IngestError(f"{path}: cannot infer the format from the extension; set `format:`")


def _register_source(con: duckdb.DuckDBPyConnection, cfg: SourceConfig, path: Path) -> None:
    """Create temp view ``src``: the file's columns (text formats: all VARCHAR) + ``_source_row``."""
    fmt = _infer_format(cfg, path)
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty (0 bytes)")
    try:
        _create_src_view(con, cfg, path, fmt)
        con.execute("select count(*) from src").fetchone()
    except duckdb.Error as exc:
        raise _read_error(path, fmt, cfg, exc) from exc


def _read_error(path: Path, fmt: str, cfg: SourceConfig, exc: duckdb.Error) -> IngestError:
    """An IngestError naming the file and, where it can be found, the line."""
    text = str(exc)
    if "invalid unicode" in text.lower():
        where = _find_invalid_bytes(path, cfg.encoding)
        return IngestError(
            f"{path}: not valid {cfg.encoding}{where}; "
            f"set `encoding:` to the file's encoding (e.g. latin-1)"
        )
    if "Maximum line size" in text:
        where = _find_long_line(path, cfg.max_line_size)
        return IngestError(
            f"{path}: a line is longer than max_line_size ({cfg.max_line_size:,} bytes){where}; "
            f"raise `max_line_size:` if the line is real"
        )
    first_line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return IngestError(f"{path}: cannot be read as {fmt}: {first_line[:300]}")


def _find_invalid_bytes(path: Path, encoding: str) -> str:
    """' at line L (byte offset B)' for the first undecodable byte, '' when not found."""
    try:
        decoder_name = codecs.lookup(encoding).name
    except LookupError:
        return ""
    if decoder_name not in ("utf-8", "utf-8-sig"):
        return ""  # multi-byte line breaks (utf-16): leave the position to DuckDB's message
    offset = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as err:
                bad = raw[err.start : err.start + 4]
                return (
                    f" at line {lineno} (counting the header; byte offset "
                    f"{offset + err.start}: {bad!r})"
                )
            offset += len(raw)
    return ""


def _find_long_line(path: Path, limit: int) -> str:
    """' at line L (N bytes)' for the first physical line over ``limit`` bytes, '' if none."""
    with path.open("rb") as fh:
        lineno, size = 1, 0
        while chunk := fh.read(1 << 20):
            parts = chunk.split(b"\n")
            for i, part in enumerate(parts):
                size += len(part)
                if i < len(parts) - 1:
                    if size > limit:
                        return f" at line {lineno} (counting the header; {size:,} bytes)"
                    lineno, size = lineno + 1, 0
        if size > limit:
            return f" at line {lineno} (counting the header; {size:,} bytes)"
    return ""


def _create_src_view(con: duckdb.DuckDBPyConnection, cfg: SourceConfig, path: Path, fmt: str):
    p = literal(str(path))
    if fmt == "parquet":
        body = (
            f"select * exclude (file_row_number), file_row_number + 1 as _source_row "
            f"from read_parquet({p}, file_row_number = true)"
        )
    elif fmt == "csv":
        opts = [
            "all_varchar = true",
            f"header = {str(cfg.header).lower()}",
            f"encoding = {literal(cfg.encoding)}",
            "strict_mode = false",
            "null_padding = true",
            # RFC 4180 quoting; sniffing it from a few rows guesses wrong on quoted headers.
            f"quote = {literal(cfg.quote)}",
            f"escape = {literal(cfg.quote)}",
            # The parallel reader rejects quoted newlines together with null_padding, and a
            # serial read keeps row_number() in file order.
            "parallel = false",
            f"max_line_size = {int(cfg.max_line_size)}",
        ]
        if cfg.delimiter:
            opts.append(f"delim = {literal(cfg.delimiter)}")
        body = (
            f"select *, row_number() over () as _source_row from read_csv({p}, {', '.join(opts)})"
        )
    else:
        lines = (
            f"select line, row_number() over () as _n from read_csv({p}, columns = {{'line': "
            f"'VARCHAR'}}, header = false, delim = '\\x01', quote = '', escape = '', "
            f"auto_detect = false, encoding = {literal(cfg.encoding)}, parallel = false, "
            f"max_line_size = {int(cfg.max_line_size)})"
        )
        con.execute(f"create or replace temp view _lines as {lines}")
        offset = 1 if cfg.header else 0
        if fmt == "whitespace":
            split = r"regexp_split_to_array(trim(line, ' ' || chr(9) || chr(13)), '\s+')"
            if cfg.header:
                header_line = con.execute("select line from _lines where _n = 1").fetchone()
                if header_line is None:
                    raise IngestError(f"{path}: the file is empty (no header line)")
                names = header_line[0].split()
                if not names:
                    raise IngestError(f"{path}: the header line is blank")
            else:
                first = con.execute("select line from _lines where _n = 1").fetchone()
                names = [f"column{i}" for i in range(len(first[0].split()) if first else 0)]
            cols = ", ".join(f"_parts[{i + 1}] as {ident(n)}" for i, n in enumerate(names))
            body = (
                f"select {cols}, _n - {offset} as _source_row "
                f"from (select {split} as _parts, _n from _lines where _n > {offset} "
                f"and trim(line, ' ' || chr(9) || chr(13)) <> '')"
            )
        else:  # fixed_width
            cols = ", ".join(
                f"nullif(trim(substr(line, {s}, {e - s})), '') as {ident(n)}"
                for n, (s, e) in (cfg.widths or {}).items()
            )
            body = f"select {cols}, _n - {offset} as _source_row from _lines where _n > {offset}"
    con.execute(f"create or replace temp view src as {body}")


def _parse_expr(
    source_col: str, source_type: str, target_type: str, date_formats: list[str] | None
) -> str:
    """SQL that parses one source column into the canonical type, NULL when it does not parse."""
    c = ident(source_col)
    base = source_type.split("(")[0].upper()
    if target_type == "VARCHAR":
        if base in FLOAT_TYPES:
            # Customer ids stored as floats (13085.0) must become '13085'.
            return (
                f"case when {c} = trunc({c}) then cast(cast({c} as bigint) as varchar) "
                f"else cast({c} as varchar) end"
            )
        return f"nullif(trim(cast({c} as varchar)), '')"
    if target_type == "DOUBLE":
        if base in NUMERIC_TYPES:
            return f"cast({c} as double)"
        return f"try_cast(nullif(trim(cast({c} as varchar)), '') as double)"
    if target_type == "INTEGER":
        num = _parse_expr(source_col, source_type, "DOUBLE", None)
        return f"case when {num} = trunc({num}) then cast({num} as integer) end"
    if target_type == "TIMESTAMP":
        if base.startswith("TIMESTAMP WITH TIME ZONE") or base == "TIMESTAMPTZ":
            return f"timezone('UTC', {c})"
        if base.startswith("TIMESTAMP") or base == "DATE":
            return f"cast({c} as timestamp)"
        text = f"nullif(trim(cast({c} as varchar)), '')"
        if date_formats:
            tries = [f"try_strptime({text}, {literal(f)})" for f in date_formats]
            return tries[0] if len(tries) == 1 else f"coalesce({', '.join(tries)})"
        return f"try_cast({text} as timestamp)"
    raise AssertionError(target_type)


def _is_missing(source_col: str, source_type: str) -> str:
    """Null, or text of only whitespace (spaces, tabs, line breaks)."""
    c = ident(source_col)
    if source_type.split("(")[0].upper() not in ("VARCHAR", "BLOB"):
        return f"({c} is null)"
    # Faster than trim() with a character list, and it knows tabs and line breaks.
    return rf"({c} is null or regexp_full_match(cast({c} as varchar), '\s*'))"


def _date_formats(cfg: SourceConfig) -> list[str]:
    return ([cfg.date_format] if cfg.date_format else []) + list(cfg.date_formats or [])


def _build_select(
    source: str, cfg: SourceConfig, src_types: dict[str, str], origin: str, today: dt.date
) -> str:
    """SELECT over ``src`` giving canonical columns + ``_reason`` (empty string when valid).

    The inner query parses every mapped column once (``<canonical>``) and notes whether
    the raw value was blank (``_blank_<canonical>``); the rules read those.
    """
    inner = ["_source_row"]
    exprs: dict[str, str] = {}
    reasons: list[str] = []
    # Dates after this day are in the future: one day of slack for time zones.
    latest = literal((today + dt.timedelta(days=1)).isoformat())
    kind = {"TIMESTAMP": "unparseable date", "DOUBLE": "non-numeric", "INTEGER": "non-integer"}
    for name, target in CANONICAL[source].items():
        col = cfg.columns.get(name)
        if col is None:
            exprs[name] = f"cast(null as {target})"
            continue
        value, blank = ident(name), ident(f"_blank_{name}")
        inner.append(f"{_parse_expr(col, src_types[col], target, _date_formats(cfg))} as {value}")
        inner.append(f"{_is_missing(col, src_types[col])} as {blank}")
        exprs[name] = value
        if name in REQUIRED[source] or name in ("order_id", "quantity", "unit_price", "amount"):
            reasons.append(f"case when {blank} then {literal(f'missing {name} ({col})')} end")
        if target in kind:
            why = literal(f"{kind[target]} {name} ({col})")
            reasons.append(f"case when not {blank} and {value} is null then {why} end")
        if target == "DOUBLE":
            why = literal(f"non-finite {name} ({col})")
            reasons.append(f"case when not isfinite({value}) then {why} end")
        if target == "TIMESTAMP":
            why = literal(f"date in the future {name} ({col})")
            reasons.append(
                f"case when cast({value} as date) > cast({latest} as date) then {why} end"
            )

    if source == "transactions":
        cols = cfg.columns
        if "quantity" not in cols:
            exprs["quantity"] = "cast(1.0 as double)"
        qty = exprs["quantity"]
        if "amount" not in cols:
            exprs["amount"] = f"({qty}) * ({exprs['unit_price']})"
            # Finite factors whose product overflows.
            reasons.append(
                f"case when isfinite({qty}) and isfinite({exprs['unit_price']}) "
                f"and not isfinite({exprs['amount']}) "
                f"then 'non-finite amount (quantity × unit_price)' end"
            )
        elif "unit_price" not in cols:
            exprs["unit_price"] = f"case when ({qty}) <> 0 then ({exprs['amount']}) / ({qty}) end"
        if "unit_price" in cols and not cfg.allow_non_positive_price:
            # A zero price on a return line (negative quantity) is a free item coming back.
            price = exprs["unit_price"]
            why = literal(f"non-positive unit_price ({cols['unit_price']})")
            reasons.append(f"case when {price} < 0 or ({price} = 0 and {qty} > 0) then {why} end")
        if "order_id" not in cols:
            exprs["order_id"] = (
                f"({exprs['customer_id']}) || '-' || strftime(({exprs['ordered_at']}), '%Y%m%d')"
            )
        prefix = cfg.cancellation_prefix
        exprs["is_cancellation"] = (
            f"coalesce(starts_with({exprs['order_id']}, {literal(prefix)}), false)"
            if prefix
            else "false"
        )

    select = ", ".join(f"{expr} as {ident(name)}" for name, expr in exprs.items())
    reason = f"concat_ws('; ', {', '.join(reasons)})" if reasons else "''"
    return (
        f"select {select}, {literal(origin)} as _source_file, _source_row, "
        f"{reason} as _reason from (select {', '.join(inner)} from src)"
    )


DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _check_columns(source: str, cfg: SourceConfig, src_types: dict[str, str], name: str) -> None:
    """Every mapped column must be in the file (or table); the error lists all missing ones."""
    present = [c for c in src_types if c != "_source_row"]
    missing = [
        f"{col!r} (mapped to {canonical}{', required' if canonical in REQUIRED[source] else ''})"
        for canonical, col in cfg.columns.items()
        if col not in src_types
    ]
    if not missing:
        return
    which = "required column" if len(missing) == 1 and "required" in missing[0] else "column"
    msg = (
        f"{name}: {which}{'s' if len(missing) > 1 else ''} not found: {', '.join(missing)}; "
        f"columns present: {present}"
    )
    if len(present) == 1:
        # The whole header came back as one column: most likely another delimiter.
        seen = [name for d, name in DELIMITERS.items() if d in present[0] and d != cfg.delimiter]
        if seen:
            msg += (
                f"; the header has a single column containing {' and '.join(seen)}s: "
                f"check `delimiter:` (configured: {cfg.delimiter!r})"
            )
    raise IngestError(msg)


def _quarantine_duplicate_keys(
    con: duckdb.DuckDBPyConnection, source: str, key: list[str], earlier: str
):
    """Mark later rows of ``_parsed`` whose key was seen before with different values.

    Only otherwise-valid rows take part; the first one of a key (``earlier``: rows of
    earlier files, or already loaded; then by row) wins, and exact repeats of it stay
    (``drop_exact_duplicates`` decides).
    """
    cols = _row_columns(source)

    def row(alias: str) -> str:
        return f"row({', '.join(f'{alias}.{ident(c)}' for c in cols)})"

    def same_key(a: str, b: str) -> str:
        return " and ".join(f"{a}.{ident(k)} is not distinct from {b}.{ident(k)}" for k in key)

    keys = ", ".join(ident(k) for k in key)
    reason = literal(f"duplicate key ({', '.join(key)})")
    con.execute(
        f"""
        with cand as (select * from _parsed where _reason = ''),
        earlier as (select {keys}, any_value({row("o")}) as ref from {earlier} o group by all),
        first_here as (
            select {keys}, arg_min({row("c")}, c._source_row) as ref from cand c group by all
        ),
        dup as (
            select c._source_row
            from cand c
            join first_here f on {same_key("c", "f")}
            left join earlier e on {same_key("c", "e")}
            where {row("c")} is distinct from coalesce(e.ref, f.ref)
        )
        update _parsed set _reason = {reason}
        where _source_row in (select _source_row from dup)
        """
    )


def _row_columns(source: str) -> list[str]:
    return list(CANONICAL[source]) + (["is_cancellation"] if source == "transactions" else [])


def ingest(
    con: duckdb.DuckDBPyConnection,
    config: ProjectConfig,
    run_id: str,
    data_root: str | None = None,
    log=print,
    today: dt.date | None = None,
    environ: Mapping[str, str] | None = None,
) -> IngestResult:
    """Full load of every configured source into ``raw.*``, replacing the previous load.

    ``today`` is the load date for the "date in the future" rule (default: the local date);
    ``environ`` holds database credentials (default: the process environment).
    """
    root = config.resolve_root(data_root)
    today = today or dt.date.today()
    result = IngestResult(run_id=run_id)
    con.execute("create schema if not exists raw")
    _staging_tables(con, list(CANONICAL))
    for source, cfg in config.sources().items():
        if cfg is None:
            continue
        if cfg.database is not None:
            # Imported here: the database drivers load only for a database source.
            from orchestration.io.database import stage_source

            staged = stage_source(con, source, cfg, log, environ)
            load = _load_src(con, source, cfg, staged.name, run_id, today)
            load.mark_column, load.mark_to = staged.mark_column, staged.mark_to
            result.files.append(load)
            _log_counts(log, result.files[-1])
            continue
        for path in resolve_files(cfg, root, source):
            _load_file(con, source, cfg, path, sha256_file(path), run_id, today, result, log)
    inbox = config.inbox_dir(data_root)
    if inbox is not None:
        cfg = config.transactions
        loaded = {f.content_sha256: f.file for f in result.files if f.content_sha256}
        for f in list_inbox(inbox, cfg.inbox):
            sha = sha256_file(f.path)
            if sha in loaded:
                _skip(result, log, str(f.path), f"same content as {loaded[sha]}")
                continue
            loaded[sha] = str(f.path)
            _load_file(con, "transactions", cfg, f.path, sha, run_id, today, result, log)
    _publish(con, result)
    return result


def ingest_incremental(
    con: duckdb.DuckDBPyConnection,
    config: ProjectConfig,
    run_id: str,
    files: Sequence[str] = (),
    data_root: str | None = None,
    log=print,
    today: dt.date | None = None,
) -> IngestResult:
    """Append inbox files (names relative to the inbox; none: every complete inbox file)
    to ``raw.transactions``, each content once (module docstring); nothing else changes."""
    folder = config.inbox_dir(data_root)
    cfg = config.transactions
    if folder is None or cfg.inbox is None:
        raise IngestError("incremental load: the config has no `transactions.inbox` folder")
    if not _has_table(con, "raw", "transactions"):
        raise IngestError(
            "incremental load: no full load yet (raw.transactions does not exist); "
            "run a full load first (job full_pipeline)"
        )
    today = today or dt.date.today()
    if files:
        paths = [inbox_path(folder, name) for name in files]
    else:
        paths = [f.path for f in list_inbox(folder, cfg.inbox)]
    _ensure_load_log(con)
    loaded = _loaded_content(con)
    by_name = {file: sha for sha, file in loaded.items()}
    result = IngestResult(run_id=run_id, mode="incremental")
    todo: list[tuple[Path, str]] = []
    for path in paths:
        if not path.is_file():
            raise IngestError(f"{path}: no such file in the inbox")
        sha = sha256_file(path)
        if sha in loaded:
            other = "" if loaded[sha] == str(path) else f" as {loaded[sha]} (same content)"
            _skip(result, log, str(path), f"already loaded{other}")
            continue
        if str(path) in by_name:
            raise IngestError(
                f"{path}: a file of this name was loaded before with other content; inbox "
                "files must not change once delivered: give new data a new file name, or run "
                "a full load (job full_pipeline or scoring_pipeline), which reads it as it is now"
            )
        loaded[sha], by_name[str(path)] = str(path), sha
        todo.append((path, sha))
    _staging_tables(con, ["transactions"])
    # The duplicate-key rule sees the rows already loaded before this batch's.
    con.execute(
        "create or replace temp view _earlier_transactions as "
        "select * from raw.transactions union all by name select * from _ok_transactions"
    )
    for path, sha in todo:
        _load_file(
            con, "transactions", cfg, path, sha, run_id, today, result, log,
            earlier="_earlier_transactions",
        )  # fmt: skip
    if result.files:
        _append(con, result)
    else:
        log("  no new inbox files to load")
    return result


def _staging_tables(con: duckdb.DuckDBPyConnection, sources: list[str]) -> None:
    for source in sources:
        con.execute(f"create or replace temp table _ok_{source} ({_table_ddl(source)})")
        con.execute(f"create or replace temp table _bad_{source} ({QUARANTINE_DDL})")


def _load_file(
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
    try:
        _register_source(con, cfg, path)
        load = _load_src(con, source, cfg, str(path), run_id, today, earlier)
    except duckdb.Error as exc:
        # E.g. a Parquet page that is corrupt although the footer reads.
        raise _read_error(path, _infer_format(cfg, path), cfg, exc) from exc
    load.content_sha256 = sha
    result.files.append(load)
    _log_counts(log, load)


def _skip(result: IngestResult, log, file: str, reason: str) -> None:
    log(f"  skipping {file}: {reason}")
    result.skipped.append({"file": file, "reason": reason})


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? "
            "and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def _ensure_load_log(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw")
    con.execute(f"create table if not exists raw.load_log ({LOAD_LOG_DDL})")
    for name, typ in LOAD_LOG_ADDED.items():
        con.execute(f"alter table raw.load_log add column if not exists {name} {typ}")


def _loaded_content(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
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


def _log_counts(log, f: FileLoad) -> None:
    log(f"    {f.rows_read:,} rows read, {f.rows_loaded:,} loaded, {f.rows_rejected:,} quarantined")


def _load_src(
    con: duckdb.DuckDBPyConnection,
    source: str,
    cfg: SourceConfig,
    name: str,
    run_id: str,
    today: dt.date,
    earlier: str | None = None,
) -> FileLoad:
    """Parse the registered ``src`` relation into ``_ok_<source>`` / ``_bad_<source>``.

    ``earlier``: the rows a duplicate key is checked against (default: this load's).
    """
    src_types = dict(con.execute("select column_name, column_type from (describe src)").fetchall())
    _check_columns(source, cfg, src_types, name)
    select = _build_select(source, cfg, src_types, name, today)
    con.execute(f"create or replace temp table _parsed as {select}")
    if cfg.unique_key:
        _quarantine_duplicate_keys(con, source, cfg.unique_key, earlier or f"_ok_{source}")
    names = ", ".join(ident(c) for c in _row_columns(source))
    con.execute(
        f"insert into _ok_{source} select {names}, _source_file, _source_row "
        f"from _parsed where _reason = ''"
    )
    read, bad = con.execute(
        "select count(*), count(*) filter (where _reason <> '') from _parsed"
    ).fetchone()
    if bad:
        # The original values, as text, only for the rejected rows.
        con.execute(
            f"insert into _bad_{source} select {literal(run_id)}, p._source_file, "
            f"p._source_row, p._reason, to_json(s), current_localtimestamp() "
            f"from _parsed p join src s on s._source_row = p._source_row "
            f"where p._reason <> ''"
        )
    return FileLoad(source, name, read, read - bad, bad)


def _publish(con: duckdb.DuckDBPyConnection, result: IngestResult) -> None:
    """Swap the new load in, all or nothing."""
    con.execute("begin transaction")
    try:
        _ensure_load_log(con)
        for source in CANONICAL:
            con.execute(
                f"create or replace table raw.{source} as select * from _ok_{source} order by _source_file, _source_row"
            )
            con.execute(
                f"create or replace table raw.quarantine_{source} as select * from _bad_{source} order by source_file, source_row"
            )
        _log_rows(con, result)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def _append(con: duckdb.DuckDBPyConnection, result: IngestResult, check=None) -> None:
    """Append an incremental load and its log rows, all or nothing. ``check(con)`` runs
    first inside the transaction (the database path re-reads its high-water mark)."""
    con.execute("begin transaction")
    try:
        if check is not None:
            check(con)
        # Checked again where it is written. Runs hold the workdir lock, so nothing
        # should have loaded these files since; if something did, load nothing.
        again = _loaded_content(con)
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
