"""Tiny helpers to put user-supplied names and paths into SQL safely.

File and column names come from users' files and configs; a column called
``"; DROP TABLE x; --`` must stay a column name.
"""

from __future__ import annotations


def ident(name: str) -> str:
    """Quote an identifier (column, table) for DuckDB."""
    return '"' + str(name).replace('"', '""') + '"'


def literal(value: str) -> str:
    """Quote a string literal for DuckDB."""
    return "'" + str(value).replace("'", "''") + "'"
