"""Errors of a database source: one clear line, the password masked, transient or not.

The driver's text is cut down to its reason (libpq's prefixes and the repeated query
dropped), the password masked, and the driver's exception is not chained onto ours, so
its text never reaches a log either. Each error says whether trying again later can
help (:attr:`DatabaseError.transient`: the server refused or dropped the connection,
timed out, is starting up or has no free slot) or not (a wrong password, a missing
table, a query error): the ingest asset retries only the first kind.
"""

from __future__ import annotations

import re

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
# SQLSTATE classes and codes: connection exceptions, admin shutdown / cannot connect now,
# too many connections, serialization failure and deadlock (the retry succeeds).
TRANSIENT_SQLSTATE = ("08000", "08001", "08003", "08006", "57P01", "57P02", "57P03",
                      "53300", "40001", "40P01")  # fmt: skip


class DatabaseError(IngestError):
    """A database source that cannot be read; the message never holds the password.

    ``transient``: the connection failed in a way another attempt may not (see the module
    docstring); the retry policy of the ingest asset acts on it.
    """

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


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
    out = "; ".join(line for line in lines if line).rstrip("; ")
    if state:
        out += f" (SQLSTATE {state.group(1)})"
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
        transient=is_transient_text(str(exc)),
    )


def query_error(target: Target, exc: BaseException) -> DatabaseError:
    return DatabaseError(
        f"{target.name}: the query failed: {reason(target, exc)}",
        transient=is_transient_text(str(exc)),
    )
