"""Write pandas frames into the warehouse: whole tables, replaced in one transaction."""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pandas as pd

from orchestration.io.sql import ident


def _qualified(name: str) -> str:
    schema, _, table = name.rpartition(".")
    if not schema or not table:
        raise ValueError(f"table name must be schema.table, got {name!r}")
    return f"{ident(schema)}.{ident(table)}"


def replace_tables(
    con: duckdb.DuckDBPyConnection,
    tables: Mapping[str, pd.DataFrame],
    casts: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Replace ``schema.table`` with each frame, all or none (one transaction).

    ``casts`` maps a table to ``{column: SQL type}`` for columns whose pandas
    type would not give the wanted warehouse type (e.g. ``INTEGER`` ids,
    ``TIMESTAMP`` without time zone); other columns keep DuckDB's mapping.
    """
    casts = casts or {}
    con.execute("begin transaction")
    try:
        for name, frame in tables.items():
            schema = name.rpartition(".")[0]
            con.execute(f"create schema if not exists {ident(schema)}")
            view = f"_frame_{abs(hash(name))}"
            con.register(view, frame)
            try:
                wanted = casts.get(name, {})
                unknown = sorted(set(wanted) - set(frame.columns))
                if unknown:
                    raise ValueError(f"{name}: cast for missing column(s) {unknown}")
                columns = ", ".join(
                    f"cast({ident(c)} as {wanted[c]}) as {ident(c)}" if c in wanted else ident(c)
                    for c in frame.columns
                )
                con.execute(
                    f"create or replace table {_qualified(name)} as select {columns} from {view}"
                )
            finally:
                con.unregister(view)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    schema, _, table = name.rpartition(".")
    (n,) = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return n > 0
