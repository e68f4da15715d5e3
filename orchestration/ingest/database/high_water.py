"""High-water marks of a database table loaded incrementally (``incremental: {column: id}``).

A mark is the largest value of the column that has been read, written ``kind:value``
(``int:1042``, ``decimal:1042``, ``timestamp:2024-05-01 10:00:00.123456``,
``timestamptz:2024-05-01 08:00:00+00:00``, ``date:2024-05-01``, ``float:…``, ``text:…``)
so it keeps its type in a Dagster cursor, a run config and ``raw.load_log``. Rows are
selected by the database itself, ``column > after and column <= through``, with the
values bound as parameters (SQLAlchemy) or written as untyped literals that PostgreSQL
reads in the column's own type, so ``numeric`` ids and time zones compare as they should.

Plain functions, no Dagster: the SQL for the cheap ``max(column)`` the sensor asks, for a
full load (up to a mark taken just before) and for one range; the mark the warehouse is
loaded through (``raw.load_log``); and the run key of a range.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from decimal import Decimal

import duckdb

from orchestration.ingest.database.errors import DatabaseError
from orchestration.ingest.database.target import Target, quoted
from orchestration.ingest.types import IngestError
from orchestration.io.sql import literal

KINDS = ("int", "decimal", "float", "timestamp", "timestamptz", "date", "text")


def encode_mark(value, target: Target, column: str) -> str | None:
    """``kind:value`` for a value of the column; ``None`` for no value (an empty table)."""
    if value is None:
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        pass  # not an order anyone relies on
    elif isinstance(value, int):
        return f"int:{value}"
    elif isinstance(value, float):
        return f"float:{value!r}"
    elif isinstance(value, Decimal):
        return f"decimal:{value}"
    elif isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return f"timestamp:{value.isoformat(sep=' ')}"
        return f"timestamptz:{value.astimezone(dt.UTC).isoformat(sep=' ')}"
    elif isinstance(value, dt.date):
        return f"date:{value.isoformat()}"
    elif isinstance(value, str):
        return f"text:{value}"
    raise DatabaseError(
        f"{target.name}: incremental.column {column!r} holds {value!r}, which cannot be a "
        "high-water mark: use a column that only grows, an integer id or a timestamp"
    )


def mark_value(mark: str):
    """The Python value of a mark (what SQLAlchemy binds)."""
    kind, sep, text = mark.partition(":")
    try:
        if not sep or kind not in KINDS:
            raise ValueError(kind)
        if kind == "int":
            return int(text)
        if kind == "decimal":
            return Decimal(text)
        if kind == "float":
            return float(text)
        if kind in ("timestamp", "timestamptz"):
            return dt.datetime.fromisoformat(text)
        if kind == "date":
            return dt.date.fromisoformat(text)
        return text
    except (ValueError, ArithmeticError):
        raise IngestError(
            f"not a high-water mark: {mark!r} (expected kind:value, kind one of {KINDS})"
        ) from None


def shown(mark: str) -> str:
    """The value of a mark as people write it (``1042``, ``2024-05-01 10:00:00``)."""
    return mark.partition(":")[2]


def _compare(target: Target, column: str, op: str, mark: str, key: str) -> tuple[str, dict]:
    col = quoted(target.url, column, dotted=False)
    mark_value(mark)  # a malformed mark fails here, before any SQL
    if target.is_postgres:  # an untyped literal takes the column's type
        return f"{col} {op} {literal(shown(mark))}", {}
    return f"{col} {op} :{key}", {key: mark_value(mark)}


def max_target(target: Target, column: str, after: str | None = None) -> Target:
    """``select max(column)`` (of the values after ``after``): one indexed lookup."""
    col = quoted(target.url, column, dotted=False)
    assert target.relation, "a high-water mark needs a table"
    sql, params = f"select max({col}) from {target.relation}", {}
    if after is not None:
        cond, params = _compare(target, column, ">", after, "after")
        sql += f" where {cond}"
    return target.with_sql(sql, params)


def full_load_target(target: Target, column: str, through: str | None) -> Target:
    """The whole table up to ``through`` (the mark taken just before). Rows without a value
    in the column are part of a full load; an incremental load never sees them."""
    if through is None:
        return target
    cond, params = _compare(target, column, "<=", through, "through")
    col = quoted(target.url, column, dotted=False)
    return target.with_sql(f"{target.sql} where {cond} or {col} is null", params)


def range_target(target: Target, column: str, after: str | None, through: str) -> Target:
    """The rows ``after < column <= through`` in column order, named after the range."""
    conds, params = [], {}
    if after is not None:
        cond, params = _compare(target, column, ">", after, "after")
        conds.append(cond)
    cond, more = _compare(target, column, "<=", through, "through")
    conds.append(cond)
    col = quoted(target.url, column, dotted=False)
    sql = f"{target.sql} where {' and '.join(conds)} order by {col}"
    lower = f"{column} > {shown(after)} and " if after is not None else ""
    name = f"{target.name} where {lower}{column} <= {shown(through)}"
    return target.with_sql(sql, {**params, **more}, name)


def run_key(name: str, column: str, after: str | None, through: str) -> str:
    """The same for the same source and range, whichever tick asks."""
    text = json.dumps([name, column, after, through])
    return "db-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def loaded_mark(con: duckdb.DuckDBPyConnection, column: str) -> str | None:
    """The mark ``raw.transactions`` is loaded through: that of the last full load or of an
    incremental load after it (``None``: the table was empty then). Raises when the last
    full load recorded none (``incremental:`` configured since, or a file source then)."""
    row = con.execute(
        """
        select mark_column, mark_to from raw.load_log
        where source = 'transactions' and mark_column is not null
          and load_seq >= coalesce((select max(load_seq) from raw.load_log where mode = 'full'), 0)
        order by load_seq desc limit 1
        """
    ).fetchone()
    if row is None or row[0] != column:
        recorded = f" (it has one for {row[0]!r})" if row else ""
        raise IngestError(
            f"incremental load: the last full load recorded no high-water mark for {column!r}"
            f"{recorded}; run a full load first (job full_pipeline or scoring_pipeline)"
        )
    return row[1]
