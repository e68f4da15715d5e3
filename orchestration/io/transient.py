"""Which failures are worth trying again: plain predicates, no Dagster.

The ingest and export assets retry a failure only when it is transient (their retry
policy is in ``orchestration/assets/retry.py``); anything else fails the run at once
with its own message. A database error says itself whether it is transient
(``orchestration/ingest/database/errors.py``: refused, dropped or timed-out connections,
a server starting up or out of slots; never a wrong password, a missing table or bad
data). A write to the export folder (often a network share) is transient unless the
folder refuses it for good: no permission, no space, read-only.
"""

from __future__ import annotations

import errno

import duckdb

from orchestration.ingest.database.errors import DatabaseError

# OSError numbers that the same write will meet again a few seconds later.
PERMANENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS,
                    errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR}  # fmt: skip
PERMANENT_TEXT = ("permission denied", "no space left", "read-only file system", "quota")


def is_transient_database_error(exc: BaseException) -> bool:
    return isinstance(exc, DatabaseError) and exc.transient


def is_transient_write_error(exc: BaseException) -> bool:
    """An OSError, or DuckDB's IOException from a ``COPY ... TO`` file, that may pass."""
    if isinstance(exc, OSError):
        return exc.errno not in PERMANENT_ERRNOS
    if isinstance(exc, duckdb.IOException):
        text = str(exc).lower()
        return not any(marker in text for marker in PERMANENT_TEXT)
    return False
