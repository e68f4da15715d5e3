"""Errors of a database source: one clear line, the password masked, transient or not.

The driver's text is cut down to its reason (libpq's prefixes and the repeated query
dropped), the password masked, and the driver's exception is not chained onto ours, so
its text never reaches a log either. Each error says whether trying again later can
help (:attr:`DatabaseError.transient`: the server refused or dropped the connection,
timed out, is starting up, has no free slot or holds a lock) or not (a wrong password,
a missing table, a query error): the ingest asset retries only the first kind.

:func:`is_transient` reads what the driver states in code first: SQLAlchemy's
``connection_invalidated``, the SQLSTATE (ADBC's and psycopg's ``sqlstate``, psycopg2's
``pgcode``), SQLite's error code, ADBC's status code, the PEP 249 exception class. Only
when none decides does it read the message, whose English wording a server configured
for another language does not use. Some failures carry no code: libpq reports a failed
connection as text only, and a read that fails part-way reaches Python as PyArrow's
``OSError`` (adbc_driver_manager hands out PyArrow's own reader, without ADBC's error).
"""

from __future__ import annotations

import re
import sqlite3

from orchestration.ingest.database.target import POSTGRES, Target, as_tuple
from orchestration.ingest.types import IngestError

# Reasons that another attempt will not fix, whatever else the text says.
PERMANENT = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "access denied",
    "login failed",
    "no pg_hba.conf entry",
    "permission denied",
    "does not exist",
    "not known",  # could not translate host name: a typo, not an outage
    "syntax error",
)
# Connection trouble: the server is down, restarting, overloaded or the network dropped.
TRANSIENT = (
    "connection refused",
    "timeout expired",
    "timed out",
    "server closed the connection",
    "connection reset",
    "connection to server was lost",
    "could not receive data",
    "could not send data",
    "broken pipe",
    "terminating connection",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "too many clients",
    "too many connections",
    "no route to host",
    "network is unreachable",
    "temporary failure in name resolution",
    "ssl syscall error",
    "can't connect to mysql server",  # MySQL 2003
    "lost connection to mysql server",  # MySQL 2013
    "mysql server has gone away",
)
# SQLSTATEs another attempt can pass: connection exceptions (class 08 but a refused
# connection and a protocol violation), serialization failure and deadlock, too many
# connections, a lock held by another session, the server shutting down or starting up,
# an idle session ended. Every other SQLSTATE is the query's or the setup's fault.
TRANSIENT_SQLSTATE = frozenset({"08000", "08001", "08003", "08006", "08007", "40001", "40P01",
                                "53300", "55P03", "57P01", "57P02", "57P03", "57P05"})  # fmt: skip
# SQLite: the database file is locked by another connection (SQLITE_BUSY, SQLITE_LOCKED).
TRANSIENT_SQLITE = frozenset({5, 6})
# ADBC status codes (adbc_driver_manager.AdbcStatusCode): TIMEOUT may pass; these never do.
# IO, UNKNOWN, INTERNAL and INVALID_STATE say too little (libpq's failed connects are IO).
ADBC_TIMEOUT = 12
ADBC_PERMANENT = frozenset({2, 3, 4, 5, 7, 8, 13, 14})
# PEP 249 classes for errors in the query or the data (OperationalError is both kinds).
PERMANENT_CLASSES = frozenset({"ProgrammingError", "IntegrityError", "DataError",
                               "NotSupportedError"})  # fmt: skip


class DatabaseError(IngestError):
    """A database source that cannot be read; the message never holds the password.

    ``transient``: the connection failed in a way another attempt may not (see the module
    docstring); the retry policy of the ingest asset acts on it.
    """

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt may succeed: the driver's codes first, its text last."""
    if getattr(exc, "connection_invalidated", False):  # SQLAlchemy: the connection is gone
        return True
    driver = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's exception
    for verdict in (_by_sqlstate(driver), _by_driver_code(driver), _by_class(exc)):
        if verdict is not None:
            return verdict
    return is_transient_text(str(driver))


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE the driver attached to ``exc``, if any."""
    diag = getattr(exc, "diag", None)
    for state in (getattr(exc, "sqlstate", None), getattr(exc, "pgcode", None),
                  getattr(diag, "sqlstate", None)):  # fmt: skip
        if isinstance(state, str) and len(state) == 5:
            return state.upper()
    return None


def _by_sqlstate(exc: BaseException) -> bool | None:
    state = sqlstate(exc)
    return None if state is None else state in TRANSIENT_SQLSTATE


def _by_driver_code(exc: BaseException) -> bool | None:
    code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.Error) else None
    if code is not None:
        return (code & 0xFF) in TRANSIENT_SQLITE or None  # extended codes keep it in the low byte
    status = getattr(exc, "status_code", None)  # adbc_driver_manager.Error
    if status is not None:
        status = int(status)
        if status == ADBC_TIMEOUT:
            return True
        return False if status in ADBC_PERMANENT else None
    return None


def _by_class(exc: BaseException) -> bool | None:
    names = {c.__name__ for e in (exc, getattr(exc, "orig", None)) for c in type(e).__mro__}
    return False if names & PERMANENT_CLASSES else None


def is_transient_text(text: str) -> bool:
    """Whether a driver's error text describes a failure worth retrying."""
    low = text.lower()
    if any(marker in low for marker in PERMANENT):
        return False
    state = re.search(r"sqlstate:? (\w{5})", low)
    if state and state.group(1).upper() in TRANSIENT_SQLSTATE:
        return True
    return any(marker in low for marker in TRANSIENT)


def reason(target: Target, exc: BaseException) -> str:
    """The driver's reason, one line, without libpq's prefixes and the password."""
    exc = getattr(exc, "orig", None) or exc  # SQLAlchemy's text adds its own background link
    text = str(exc).strip()
    found = re.search(r"SQLSTATE: (\w+)", text)
    state = sqlstate(exc) or (found and found.group(1))
    text = text.split("Query was:")[0]  # ADBC repeats the query wrapped in its COPY
    for prefix in (
        r"[A-Z_]+: (\[libpq\] )?",  # ADBC status
        r"\[libpq\] (Execution error \[\w+\]: )?",  # PyArrow's error for a failed read
        r"Failed to (connect|prepare query|execute query): (could not begin COPY: )?",
        r"connection to server at .*? failed: ",
    ):
        text = re.sub(f"^{prefix}", "", text)
    text = re.sub(r"\b(FATAL|ERROR):\s+", "", text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out = "; ".join(line for line in lines if line).rstrip("; ")
    if state:
        out += f" (SQLSTATE {state})"
    return target.mask(out)[:500]


def where(target: Target) -> str:
    url = target.url
    if url.drivername in POSTGRES:
        host = url.host or "/".join(as_tuple(url.query.get("host", "localhost")))
        return f"PostgreSQL at {host}:{url.port or 5432}/{url.database or ''}"
    if url.host:
        port = f":{url.port}" if url.port else ""
        return f"{url.get_backend_name()} at {url.host}{port}/{url.database or ''}"
    return f"{url.get_backend_name()} database {url.database or '(in memory)'}"


def connect_error(target: Target, exc: BaseException) -> DatabaseError:
    why = reason(target, exc)
    user = f" as user {target.url.username!r}" if target.url.username else ""
    hint = ""
    if "password" in why.lower() and target.password_from:
        hint = f"; check the password in {target.password_from}"
    elif "timeout" in why.lower():
        hint = f" (connect_timeout {target.connect_timeout} s)"
    return DatabaseError(
        f"cannot connect to {where(target)}{user}: {why}{hint}",
        transient=is_transient(exc),
    )


def query_error(target: Target, exc: BaseException) -> DatabaseError:
    return DatabaseError(
        f"{target.name}: the query failed: {reason(target, exc)}",
        transient=is_transient(exc),
    )
