"""Parse the registered ``src`` into the load's staging tables: valid rows into
``_ok_<source>``, the others into ``_bad_<source>`` with their reasons (value_rules.py),
together with the records set aside for their structure (``_rejects``, file_sources.py).
Rows read = rows loaded + rows quarantined, for every file."""

from __future__ import annotations

import datetime as dt

import duckdb

from orchestration.ingest.types import FileLoad, IngestError
from orchestration.ingest.value_rules import build_select
from orchestration.io.config import CANONICAL, REQUIRED, SourceConfig
from orchestration.io.sql import ident, literal

DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def load_src(
    con: duckdb.DuckDBPyConnection,
    source: str,
    cfg: SourceConfig,
    name: str,
    run_id: str,
    today: dt.date,
    earlier: str | None = None,
    rejects: bool = False,
) -> FileLoad:
    """Parse the registered ``src`` relation into ``_ok_<source>`` / ``_bad_<source>``.

    ``earlier``: the rows a duplicate key is checked against (default: this load's);
    ``rejects``: the temp table ``_rejects`` holds records of this file set aside.
    """
    src_types = dict(con.execute("select column_name, column_type from (describe src)").fetchall())
    check_columns(source, cfg, src_types, name)
    select = build_select(source, cfg, src_types, name, today)
    con.execute(f"create or replace temp table _parsed as {select}")
    if cfg.unique_key:
        _quarantine_duplicate_keys(con, source, cfg.unique_key, earlier or f"_ok_{source}")
    names = ", ".join(ident(c) for c in row_columns(source))
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
    aside = 0
    if rejects:
        (aside,) = con.execute("select count(*) from _rejects").fetchone()
        con.execute(
            f"insert into _bad_{source} select {literal(run_id)}, {literal(name)}, row, reason, "
            f"to_json({{'_record': record, '_line': line, '_source_row': row}}), "
            f"current_localtimestamp() from _rejects"
        )
    return FileLoad(source, name, read + aside, read - bad, bad + aside)


def check_columns(source: str, cfg: SourceConfig, src_types: dict[str, str], name: str) -> None:
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
    cols = row_columns(source)

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


def row_columns(source: str) -> list[str]:
    return list(CANONICAL[source]) + (["is_cancellation"] if source == "transactions" else [])
