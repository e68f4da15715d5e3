"""Load the configured sources into DuckDB ``raw.*`` (docs/data_contract.md).

Every input row ends up in exactly one place: ``raw.<source>`` when it parses,
``raw.quarantine_<source>`` with a reason when it does not. ``raw.load_log``
records rows read / loaded / rejected per file, and rows read always equals
loaded + rejected. A file that cannot be read at all, or lacks a required
column, raises :class:`IngestError` naming the file and the column; the
previous raw tables are left untouched because the swap happens in one
transaction at the end.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration.io.config import CANONICAL, REQUIRED, ProjectConfig, SourceConfig
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


@dataclass
class IngestResult:
    run_id: str
    files: list[FileLoad] = field(default_factory=list)

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
            f"auto_detect = false, encoding = {literal(cfg.encoding)})"
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
    try:
        con.execute(f"create or replace temp view src as {body}")
        con.execute("select count(*) from src").fetchone()
    except duckdb.Error as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise IngestError(f"{path}: cannot be read as {fmt}: {first_line}") from exc


def _parse_expr(
    source_col: str, source_type: str, target_type: str, date_format: str | None
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
        if date_format:
            return f"try_strptime({text}, {literal(date_format)})"
        return f"try_cast({text} as timestamp)"
    raise AssertionError(target_type)


def _is_missing(source_col: str) -> str:
    c = ident(source_col)
    return f"({c} is null or trim(cast({c} as varchar)) = '')"


def _build_select(source: str, cfg: SourceConfig, src_types: dict[str, str], path: Path) -> str:
    """SELECT over ``src`` giving canonical columns + ``_reason`` (empty string when valid)."""
    canon = CANONICAL[source]
    exprs: dict[str, str] = {}
    reasons: list[str] = []
    for name, target in canon.items():
        col = cfg.columns.get(name)
        if col is None:
            exprs[name] = f"cast(null as {target})"
            continue
        parsed = _parse_expr(col, src_types[col], target, cfg.date_format)
        exprs[name] = parsed
        missing = _is_missing(col)
        if name in REQUIRED[source] or name in ("order_id", "quantity", "unit_price", "amount"):
            reasons.append(f"case when {missing} then 'missing {name} ({col})' end")
        kind = {"TIMESTAMP": "unparseable date", "DOUBLE": "non-numeric", "INTEGER": "non-integer"}
        if target in kind:
            reasons.append(
                f"case when not {missing} and ({parsed}) is null "
                f"then '{kind[target]} {name} ({col})' end"
            )
        if target == "DOUBLE":
            reasons.append(f"case when not isfinite({parsed}) then 'non-finite {name} ({col})' end")

    if source == "transactions":
        cols = cfg.columns
        if "quantity" not in cols:
            exprs["quantity"] = "cast(1.0 as double)"
        if "amount" not in cols:
            exprs["amount"] = f"({exprs['quantity']}) * ({exprs['unit_price']})"
        elif "unit_price" not in cols:
            exprs["unit_price"] = (
                f"case when ({exprs['quantity']}) <> 0 "
                f"then ({exprs['amount']}) / ({exprs['quantity']}) end"
            )
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

    select = ", ".join(f"{expr} as {name}" for name, expr in exprs.items())
    reason = f"concat_ws('; ', {', '.join(reasons)})" if reasons else "''"
    return (
        f"select {select}, {literal(str(path))} as _source_file, _source_row, "
        f"{reason} as _reason from src"
    )


def _check_columns(source: str, cfg: SourceConfig, src_types: dict[str, str], path: Path) -> None:
    present = [c for c in src_types if c != "_source_row"]
    for canonical, col in cfg.columns.items():
        if col not in src_types:
            needed = "required" if canonical in REQUIRED[source] else "mapped"
            raise IngestError(
                f"{path}: {needed} column {col!r} (mapped to {canonical}) not found; "
                f"columns present: {present}"
            )


def ingest(
    con: duckdb.DuckDBPyConnection,
    config: ProjectConfig,
    run_id: str,
    data_root: str | None = None,
    log=print,
) -> IngestResult:
    """Full load of every configured source into ``raw.*``, replacing the previous load."""
    root = config.resolve_root(data_root)
    result = IngestResult(run_id=run_id)
    con.execute("create schema if not exists raw")
    for source in CANONICAL:
        con.execute(f"create or replace temp table _ok_{source} ({_table_ddl(source)})")
        con.execute(f"create or replace temp table _bad_{source} ({QUARANTINE_DDL})")
    for source, cfg in config.sources().items():
        if cfg is None:
            continue
        for path in resolve_files(cfg, root, source):
            log(f"  reading {source}: {path}")
            _register_source(con, cfg, path)
            src_types = dict(
                con.execute("select column_name, column_type from (describe src)").fetchall()
            )
            _check_columns(source, cfg, src_types, path)
            con.execute(
                f"create or replace temp table _parsed as {_build_select(source, cfg, src_types, path)}"
            )
            names = ", ".join(
                list(CANONICAL[source]) + (["is_cancellation"] if source == "transactions" else [])
            )
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
            result.files.append(FileLoad(source, str(path), read, read - bad, bad))
            log(f"    {read:,} rows read, {read - bad:,} loaded, {bad:,} quarantined")
    _publish(con, result)
    return result


def _publish(con: duckdb.DuckDBPyConnection, result: IngestResult) -> None:
    """Swap the new load in, all or nothing."""
    con.execute("begin transaction")
    try:
        con.execute(f"create table if not exists raw.load_log ({LOAD_LOG_DDL})")
        for source in CANONICAL:
            con.execute(
                f"create or replace table raw.{source} as select * from _ok_{source} order by _source_file, _source_row"
            )
            con.execute(
                f"create or replace table raw.quarantine_{source} as select * from _bad_{source} order by source_file, source_row"
            )
        for f in result.files:
            con.execute(
                "insert into raw.load_log values (?, ?, ?, ?, ?, ?, current_localtimestamp())",
                [result.run_id, f.source, f.file, f.rows_read, f.rows_loaded, f.rows_rejected],
            )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
