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

Secrets: the password (and a URL holding one) is read from the environment here,
at connect time only. The source's name in logs, ``raw.load_log`` and errors is the
URL without password and parameters (``postgresql://user@host:5432/db#schema.table``),
and any text from a driver has the password masked before it is shown. Driver
exceptions are not chained onto ours, so their text never reaches a log either.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus, urlencode

import duckdb
import numpy as np
import pyarrow as pa
from sqlalchemy.engine import URL, make_url

from orchestration.io.config import ConfigError, SourceConfig, parse_url
from orchestration.io.ingest import IngestError
from orchestration.io.sql import ident

POSTGRES = ("postgresql", "postgres")
# The ADBC driver batches by size; this turns `batch_rows` into its byte hint (an Arrow
# row of a transaction table is ~60-120 bytes). Batches are then cut to `batch_rows`.
BYTES_PER_ROW_HINT = 128
STAGE = "_db_src"


class DatabaseError(IngestError):
    """A database source that cannot be read; the message never holds the password."""


@dataclass(frozen=True)
class Target:
    """A resolved database source. ``url`` holds the password: never show it."""

    url: URL = field(repr=False)
    name: str  # redacted, e.g. postgresql://user@host:5432/db#public.transactions
    sql: str
    secrets: tuple[str, ...] = field(repr=False)
    password_from: str | None  # where the password came from, for error hints
    connect_timeout: int
    batch_rows: int

    @property
    def is_postgres(self) -> bool:
        return self.url.drivername in POSTGRES

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def resolve(cfg: SourceConfig, source: str, environ: Mapping[str, str] | None = None) -> Target:
    """The URL with its password from the environment, the redacted name and the SQL."""
    db = cfg.database
    assert db is not None
    env = os.environ if environ is None else environ
    password_from = None
    if db.url_env:
        text = env.get(db.url_env)
        if not text:
            raise ConfigError(
                f"{source}.database.url_env: the environment variable {db.url_env} is not set"
            )
        try:
            url = parse_url(text, f"the value of the environment variable {db.url_env}")
        except ValueError as exc:
            raise ConfigError(f"{source}.database.url_env: {exc}") from None
        if url.password is not None:
            password_from = f"the URL in the environment variable {db.url_env}"
    else:
        url = make_url(db.url)
    if db.password_env:
        password = env.get(db.password_env)
        if password is None:
            raise ConfigError(
                f"{source}.database.password_env: the environment variable {db.password_env} "
                "is not set"
            )
        url = url.set(password=password)
        password_from = f"the environment variable {db.password_env}"
    plain = [url.password or "", *_tuple(url.query.get("password", ()))]
    secrets = {v for p in plain if p for v in (p, quote(p, safe=""), quote_plus(p))}
    # URL.create, not url.set(password=None): set() takes None as "leave unchanged".
    port = url.port or (5432 if url.drivername in POSTGRES and url.host else None)
    shown = URL.create(url.drivername, url.username, None, url.host, port, url.database)
    relation = cfg.table if cfg.table is not None else "query"
    name = f"{shown.render_as_string(hide_password=False)}#{relation}"
    return Target(
        url=url,
        name=name,
        # A trailing semicolon would break the COPY (...) the PostgreSQL driver wraps it in.
        sql=cfg.query.strip().rstrip(";") if cfg.query else _select_table(url, cfg.table or ""),
        secrets=tuple(sorted(secrets, key=len, reverse=True)),
        password_from=password_from,
        connect_timeout=db.connect_timeout,
        batch_rows=db.batch_rows,
    )


def _select_table(url: URL, table: str) -> str:
    """``select * from`` the table, each dotted part quoted as given (no SQL injection)."""
    if url.drivername in POSTGRES:
        quoted = [ident(part) for part in table.split(".")]
    else:
        from sqlalchemy.dialects import registry

        try:
            preparer = registry.load(url.get_backend_name())().identifier_preparer
        except Exception:  # an unknown dialect: the connect step reports it
            quoted = [ident(part) for part in table.split(".")]
        else:
            quoted = [preparer.quote_identifier(part) for part in table.split(".")]
    return f"select * from {'.'.join(quoted)}"


def stage_source(
    con: duckdb.DuckDBPyConnection,
    source: str,
    cfg: SourceConfig,
    log=print,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Stream the source into temp table ``_db_src`` and view ``src``; return its name."""
    target = resolve(cfg, source, environ)
    log(f"  reading {source}: {target.name}")
    with open_batches(target) as (columns, batches):
        try:
            n_batches = _stage(con, columns, batches)
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0][:300]
            raise DatabaseError(f"{target.name}: cannot be loaded into DuckDB: {first}") from None
    log(f"    {n_batches:,} batch(es) of at most {target.batch_rows:,} rows")
    return target.name


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
        con = adbc.connect(_libpq_uri(target))
    except adbc_driver_manager.Error as exc:
        raise _connect_error(target, exc) from None
    with con, con.cursor() as cur:
        hint = max(target.batch_rows * BYTES_PER_ROW_HINT, 64 * 1024)
        cur.adbc_statement.set_options(**{StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(hint)})
        try:
            cur.execute(target.sql)
            reader = cur.fetch_record_batch()
        except adbc_driver_manager.Error as exc:
            raise _query_error(target, exc) from None
        batches = _cut(reader, target.batch_rows)
        yield reader.schema.names, _translated(batches, target, adbc_driver_manager.Error)


def _libpq_uri(target: Target) -> str:
    """The libpq URI with the password; percent-encoded as libpq decodes it (SQLAlchemy's
    rendering leaves spaces, which libpq rejects)."""
    url = target.url
    auth = quote(url.username or "", safe="")
    if url.password is not None:
        auth += ":" + quote(url.password, safe="")
    host = f"[{url.host}]" if url.host and ":" in url.host else (url.host or "")
    port = f":{url.port}" if url.port else ""
    params = [(k, v) for k, values in url.query.items() for v in _tuple(values)]
    if "connect_timeout" not in url.query:
        params.append(("connect_timeout", str(target.connect_timeout)))
    database = quote(url.database or "", safe="")
    auth = f"{auth}@" if auth else ""
    return f"postgresql://{auth}{host}{port}/{database}?{urlencode(params, quote_via=quote)}"


def _tuple(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


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
        raise _connect_error(target, exc.orig) from None
    with conn:
        streaming = conn.execution_options(stream_results=True, yield_per=target.batch_rows)
        try:
            result = streaming.exec_driver_sql(target.sql)
        except sa.exc.DBAPIError as exc:
            raise _query_error(target, exc.orig) from None
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
        raise _query_error(target, getattr(exc, "orig", None) or exc) from None


def _reason(target: Target, exc: BaseException) -> str:
    """The driver's reason, one line, without libpq's prefixes and the password."""
    text = str(exc).strip()
    state = re.search(r"SQLSTATE: (\w+)", text)
    text = text.split("Query was:")[0]  # ADBC repeats the query wrapped in its COPY
    for prefix in (
        r"[A-Z_]+: (\[libpq\] )?",  # ADBC status
        r"Failed to (connect|prepare query|execute query): (could not begin COPY: )?",
        r"connection to server at .*? failed: ",
    ):
        text = re.sub(f"^{prefix}", "", text)
    text = re.sub(r"\b(FATAL|ERROR):\s+", "", text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    reason = "; ".join(line for line in lines if line).rstrip("; ")
    if state:
        reason += f" (SQLSTATE {state.group(1)})"
    return target.mask(reason)[:500]


def _where(target: Target) -> str:
    url = target.url
    if url.drivername in POSTGRES:
        host = url.host or "/".join(_tuple(url.query.get("host", "localhost")))
        return f"PostgreSQL at {host}:{url.port or 5432}/{url.database or ''}"
    if url.host:
        port = f":{url.port}" if url.port else ""
        return f"{url.get_backend_name()} at {url.host}{port}/{url.database or ''}"
    return f"{url.get_backend_name()} database {url.database or '(in memory)'}"


def _connect_error(target: Target, exc: BaseException) -> DatabaseError:
    reason = _reason(target, exc)
    user = f" as user {target.url.username!r}" if target.url.username else ""
    hint = ""
    if "password" in reason.lower() and target.password_from:
        hint = f"; check the password in {target.password_from}"
    elif "timeout" in reason.lower():
        hint = f" (connect_timeout {target.connect_timeout} s)"
    return DatabaseError(f"cannot connect to {_where(target)}{user}: {reason}{hint}")


def _query_error(target: Target, exc: BaseException) -> DatabaseError:
    return DatabaseError(f"{target.name}: the query failed: {_reason(target, exc)}")
