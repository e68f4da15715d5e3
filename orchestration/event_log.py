"""Dagster's SQLite event log, with the connection to each database kept open.

Dagster's ``SqliteEventLogStorage`` builds a SQLAlchemy engine, opens a SQLite
connection, commits and closes it again (a WAL checkpoint) for every event it
stores, and an asset or asset-check event goes to two or three databases (the
run's, the index). A dbt build stores an event per model and test, and the run's
main thread, which also reads dbt's output, waits for each of them.

``PooledSqliteEventLogStorage`` changes only how connections are made: the same
files (``DAGSTER_HOME/history/runs/*.db``), tables and transactions, so the
webserver, the daemon and a plain Dagster instance read them as before. A commit
to a run's database touches its ``.db`` file, which is what Dagster's log watcher
(the UI's live run logs) waits for: with the connection open, commits only grow
the ``-wal`` file beside it. It keeps one engine per database for the most recently
used ``MAX_OPEN`` databases (a webserver reads many runs). ``synchronous=NORMAL`` in
WAL mode (Dagster's mode for these files) cannot corrupt a database; a power cut may
lose the last events written, a crash of the process loses nothing.

Dagster's ``has_table``, which it asks before storing an asset event's tags or an asset
check result, also opens a connection to the index each time: a table once found is
remembered (tables are only dropped by ``wipe``, which forgets them).

An adapter over Dagster internals (the class lives in ``dagster._core``), kept small:
it overrides only ``run_connection`` and ``index_connection``, the two connection
methods of Dagster's ``SqlEventLogStorage`` interface, and ``has_table``, and lets
Dagster's own code create and migrate each database the first time it is used.
``tests/test_private_internals.py`` fails when Dagster's version or these methods
change.

Enabled in ``orchestration/dagster.yaml`` (the webserver and daemon, which find it
through ``DAGSTER_HOME``; a relative ``base_dir`` is taken from there) and by
``custseg run`` for its own runs (:func:`instance_overrides`), also in a workdir
whose ``dagster.yaml`` was copied before this class existed.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

MAX_OPEN = 8  # databases whose engine (one idle connection each) stays open
# The Dagster release this adapter was read against (tests/test_private_internals.py).
CHECKED_WITH = {"dagster": "==1.13.27"}


def instance_overrides(dagster_home: str | os.PathLike) -> dict:
    """``DagsterInstance`` overrides for this storage in Dagster's default place
    (``dagster_home/history/runs``)."""
    return {
        "event_log_storage": {
            "module": __name__,
            "class": PooledSqliteEventLogStorage.__name__,
            "config": {"base_dir": os.path.join(os.fspath(dagster_home), "history", "runs")},
        }
    }


def _set_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` that reuses one engine per database file."""

    def __init__(self, base_dir: str, inst_data=None):
        # Set before Dagster's __init__, which already reads the index.
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._ready: set[str] = set()  # databases Dagster has created or migrated
        self._tables: set[str] = set()  # index tables found (a missing one may be migrated in)
        self._pool_lock = threading.Lock()
        if not os.path.isabs(base_dir):
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise ValueError(
                    f"event_log_storage base_dir {base_dir!r} is relative and DAGSTER_HOME "
                    "is not set: give an absolute path or set DAGSTER_HOME"
                )
            base_dir = os.path.join(home, base_dir)
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def run_connection(self, run_id: str | None = None):
        return self._pooled(run_id)

    def index_connection(self):
        return self._pooled(INDEX_SHARD_NAME)

    def has_table(self, table_name: str) -> bool:
        # Dagster's own check, which takes no pooled connection (so no lock is held),
        # asked again only while the table is missing.
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    @contextmanager
    def _pooled(self, shard: str) -> Iterator[Connection]:
        # One connection at a time, as Dagster's own storage does (the log watcher reads
        # from another thread).
        with self._pool_lock:
            if shard not in self._ready:
                index = shard == INDEX_SHARD_NAME
                with super().index_connection() if index else super().run_connection(shard):
                    pass  # Dagster's own path creates the database and its tables
                self._ready.add(shard)
            with self._engine(shard).connect() as conn, conn.begin():
                yield conn
            if shard != INDEX_SHARD_NAME:
                # Dagster's log watcher (live run logs in the UI) waits for <run_id>.db to
                # change; with the connection kept open a commit only grows the -wal file.
                with contextlib.suppress(OSError):
                    os.utime(self.path_for_shard(shard))

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard),
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=4,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        event.listen(engine, "connect", _set_pragmas)
        self._engines[shard] = engine
        while len(self._engines) > MAX_OPEN:
            _, old = self._engines.popitem(last=False)
            old.dispose()
        return engine

    def _dispose_engines(self) -> None:
        with self._pool_lock:
            while self._engines:
                _, engine = self._engines.popitem()
                engine.dispose()

    def wipe(self) -> None:
        self._dispose_engines()  # before the files are unlinked
        self._ready.clear()
        self._tables.clear()
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()
