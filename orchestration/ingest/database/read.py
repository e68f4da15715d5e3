"""Database sources: a table or query streamed into DuckDB as Arrow record batches.

PostgreSQL URLs (``postgresql://`` / ``postgres://``) are read with the ADBC libpq
driver, which runs the query as ``COPY ... TO STDOUT (FORMAT binary)`` and hands
back Arrow batches without Python objects per value (the fastest of the drivers
measured in docs/database_source.md). Any other URL goes through SQLAlchemy and
the driver it names, with a server-side cursor (``stream_results`` / ``yield_per``),
each batch of rows turned into Arrow. Either way at most one batch is held in
Python: the batches are appended to the temp table ``_db_src`` with ``_source_row``
(the 1-based position in the result), and the temp view ``src`` over it is parsed,
checked and quarantined by the ingest exactly like a file.

A table with ``incremental: {column: ...}`` is read up to a high-water mark taken just
before (``orchestration/ingest/database/high_water.py``), so rows written meanwhile are left to the
next incremental load rather than loaded twice. Resolving the URL and its secrets is
``database_target.py``; error texts (never holding the password) ``database_errors.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa

from orchestration.ingest.database.errors import DatabaseError, connect_error, query_error
from orchestration.ingest.database.high_water import (
    encode_mark,
    full_load_target,
    max_target,
    shown,
)
from orchestration.ingest.database.target import Target, libpq_uri, resolve
from orchestration.io.config import SourceConfig
from orchestration.io.sql import ident

__all__ = ["DatabaseError", "Staged", "fetch_value", "open_batches", "resolve", "stage_source"]

# The ADBC driver batches by size; this turns `batch_rows` into its byte hint (an Arrow
# row of a transaction table is ~60-120 bytes). Batches are then cut to `batch_rows`.
BYTES_PER_ROW_HINT = 128
STAGE = "_db_src"


@dataclass(frozen=True)
class Staged:
    """What :func:`stage_source` read: the source's name and, for a table with
    ``incremental:``, the column and the high-water mark the rows were read up to
    (``None``: the column had no value, everything later is new)."""

    name: str
    mark_column: str | None = None
    mark_to: str | None = None


def stage_source(
    con: duckdb.DuckDBPyConnection,
    source: str,
    cfg: SourceConfig,
    log=print,
    environ: Mapping[str, str] | None = None,
) -> Staged:
    """Stream the whole source into temp table ``_db_src`` and view ``src``."""
    target = resolve(cfg, source, environ)
    if cfg.incremental is None:
        stage_target(con, target, source, log)
        return Staged(target.name)
    column = cfg.incremental.column
    mark = encode_mark(fetch_value(max_target(target, column)), target, column)
    stage_target(con, full_load_target(target, column, mark), source, log)
    log(f"    high-water mark: {column} = {shown(mark) if mark else '(no value yet)'}")
    return Staged(target.name, column, mark)


def stage_target(con: duckdb.DuckDBPyConnection, target: Target, source: str, log=print) -> None:
    """Stream ``target``'s result into ``_db_src`` / ``src``."""
    log(f"  reading {source}: {target.name}")
    with open_batches(target) as (columns, batches):
        try:
            n_batches = _stage(con, columns, batches)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0][:300]
            raise DatabaseError(f"{target.name}: cannot be loaded into DuckDB: {first}") from None
    log(f"    {n_batches:,} batch(es) of at most {target.batch_rows:,} rows")


def fetch_value(target: Target) -> object:
    """The first value of ``target``'s result (a one-row query such as ``max(...)``)."""
    with open_batches(target) as (_columns, batches):
        for batch in batches:
            if batch.num_rows:
                value = batch.column(0)[0].as_py()
                # ADBC hands PostgreSQL `numeric` over as exact text (an opaque Arrow type).
                numeric = getattr(batch.schema.field(0).type, "type_name", None) == "numeric"
                return Decimal(value) if numeric and value is not None else value
    return None


def open_batches(target: Target):
    """Context manager: (column names, iterator of Arrow record batches of <= batch_rows)."""
    return _adbc_batches(target) if target.is_postgres else _sqlalchemy_batches(target)


def _stage(
    con: duckdb.DuckDBPyConnection, columns: list[str], batches: Iterator[pa.RecordBatch]
) -> int:
    """Append the batches to ``_db_src`` with ``_source_row``; create view ``src``."""
    con.execute(f"drop table if exists {STAGE}")
    rows = n_batches = 0
    schema = None
    for batch in batches:
        numbers = np.arange(rows + 1, rows + batch.num_rows + 1, dtype=np.int64)
        batch = batch.append_column("_source_row", pa.array(numbers))
        con.register("_db_batch", batch)
        try:
            if schema is None:
                con.execute(f"create temp table {STAGE} as select * from _db_batch")
            else:
                if batch.schema != schema:
                    _widen(con)
                con.execute(f"insert into {STAGE} by name select * from _db_batch")
        finally:
            con.unregister("_db_batch")
        schema = batch.schema
        rows += batch.num_rows
        n_batches += 1
    if schema is None:  # no rows: the columns are still known
        cols = ", ".join(f"{ident(c)} VARCHAR" for c in columns)
        con.execute(f"create temp table {STAGE} ({cols}, _source_row BIGINT)")
    con.execute(f"create or replace temp view src as select * from {STAGE}")
    return n_batches


def _widen(con: duckdb.DuckDBPyConnection) -> None:
    """Widen ``_db_src`` columns to fit a batch of other types (SQLAlchemy rows are typed
    per batch: a column that is all NULL, or mixes ints and floats, changes type)."""

    def types(rel: str) -> dict[str, str]:
        return dict(
            con.execute(f"select column_name, column_type from (describe {rel})").fetchall()
        )

    table = types(STAGE)
    for col, new in types("_db_batch").items():
        old = table.get(col)
        if old is None or new in (old, '"NULL"'):
            continue
        (common,) = con.execute(
            f"select typeof(x) from (select cast(null as {old}) as x "
            f"union all select cast(null as {new}))"
        ).fetchone()
        if common != old:
            con.execute(f"alter table {STAGE} alter {ident(col)} type {common}")


def _cut(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for start in range(0, batch.num_rows, size):
            yield batch.slice(start, size)
        if batch.num_rows == 0:
            yield batch


@contextmanager
def _adbc_batches(target: Target):
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as adbc
    from adbc_driver_postgresql import StatementOptions

    try:
        con = adbc.connect(libpq_uri(target))
    except adbc_driver_manager.Error as exc:
        raise connect_error(target, exc) from None
    with con, con.cursor() as cur:
        hint = max(target.batch_rows * BYTES_PER_ROW_HINT, 64 * 1024)
        cur.adbc_statement.set_options(**{StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(hint)})
        try:
            cur.execute(target.sql)
            reader = cur.fetch_record_batch()
        except adbc_driver_manager.Error as exc:
            raise query_error(target, exc) from None
        batches = _cut(reader, target.batch_rows)
        # A read that fails part-way raises PyArrow's OSError, not an ADBC error.
        errors = (adbc_driver_manager.Error, OSError)
        yield reader.schema.names, _translated(batches, target, errors)


@contextmanager
def _sqlalchemy_batches(target: Target):
    import sqlalchemy as sa

    try:
        # NullPool: the connection is closed, not pooled, when the read ends.
        engine = sa.create_engine(target.url, poolclass=sa.pool.NullPool)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(
            target.mask(
                f"{target.name}: no SQLAlchemy dialect or driver for "
                f"{target.url.drivername!r} ({type(exc).__name__}: {exc}); install the driver "
                "package it names (e.g. pymysql for mysql+pymysql://)"
            )
        ) from None
    try:
        conn = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise connect_error(target, exc) from None
    with conn:
        streaming = conn.execution_options(stream_results=True, yield_per=target.batch_rows)
        try:
            if target.params:  # SQL built here (a high-water range): bound, typed values
                result = streaming.execute(sa.text(target.sql), dict(target.params))
            else:  # the user's query as written (no `:name` parsing)
                result = streaming.exec_driver_sql(target.sql)
        except sa.exc.DBAPIError as exc:
            raise query_error(target, exc) from None
        names = list(result.keys())
        batches = (_rows_to_arrow(names, rows) for rows in result.partitions(target.batch_rows))
        yield names, _translated(batches, target, sa.exc.DBAPIError)


def _rows_to_arrow(names: list[str], rows) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    return pa.RecordBatch.from_arrays([_array(c) for c in columns], names=names)


def _array(values) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # Mixed types in one column (SQLite allows it), UUID objects, ...: keep the text;
        # the ingest's parse rules decide, as for a CSV file.
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _translated(batches: Iterator[pa.RecordBatch], target: Target, errors) -> Iterator:
    try:
        yield from batches
    except errors as exc:
        raise query_error(target, exc) from None
