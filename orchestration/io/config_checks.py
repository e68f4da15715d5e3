"""Checks of single config values that need more than a type: file paths and date formats.

Kept apart from ``config.py`` (the config's shape) so each check is a plain function
with its own message; the pydantic validators there only call them, and pydantic puts
the key (``transactions.date_format``) in front of the message.
"""

from __future__ import annotations

import duckdb


def check_paths(value: str | list[str] | None) -> str | list[str] | None:
    """``path``: one file or glob, or a non-empty list of them; never an empty name."""
    if value is None:
        return value
    paths = [value] if isinstance(value, str) else value
    if not paths:
        raise ValueError(
            "an empty list names no file: give a file or glob, e.g. `path: data/*.csv`"
        )
    if any(not p.strip() for p in paths):
        raise ValueError(f"an empty file name in {value!r}: give a file or glob")
    return value


def check_date_format(fmt: str) -> str:
    """A strptime format the ingest (DuckDB's ``strptime``) can use, with a ``%`` directive.

    DuckDB is asked itself, so the check accepts exactly what the ingest does (``%-d``,
    ``%z``, ...) and names the directive it does not know.
    """
    if "%" not in fmt:
        raise ValueError(f"{fmt!r} has no % directive (e.g. '%d/%m/%Y'): no date would parse")
    try:
        with duckdb.connect() as con:
            con.execute("select try_strptime('', ?)", [fmt])
    except duckdb.Error as exc:
        reason = str(exc).split(": ", 1)[-1].split(": ", 1)[-1]  # without "Invalid Input ..."
        raise ValueError(f"{fmt!r} is not a strptime format: {reason}") from None
    return fmt
