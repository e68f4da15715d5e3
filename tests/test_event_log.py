"""The pooled SQLite event log writes what Dagster's own storage reads, in the same files."""

from __future__ import annotations

import time

import dagster as dg
import pytest
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from sqlalchemy import event
from sqlalchemy.pool import Pool

from orchestration import event_log
from orchestration.event_log import PooledSqliteEventLogStorage, instance_overrides


def _entry(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None, level=20, user_message=message, run_id=run_id, timestamp=time.time()
    )


def test_events_written_pooled_are_read_by_dagsters_storage(tmp_path, monkeypatch):
    monkeypatch.setattr(event_log, "MAX_OPEN", 2)
    pooled = PooledSqliteEventLogStorage(str(tmp_path))
    runs = [f"run{i}" for i in range(4)]  # more databases than stay open
    for i in range(3):
        for run in runs:
            pooled.store_event(_entry(run, f"{run}-{i}"))
    assert len(pooled._engines) == 2
    stock = SqliteEventLogStorage(str(tmp_path))
    for run in runs:
        messages = [e.user_message for e in stock.get_logs_for_run(run)]
        assert messages == [f"{run}-{i}" for i in range(3)]
    pooled.dispose()
    assert not pooled._engines


def _connections_opened(work) -> int:
    """How many SQLite connections ``work()`` opens."""
    opened: list[object] = []

    def count(dbapi_connection, _record) -> None:
        opened.append(dbapi_connection)

    event.listen(Pool, "connect", count)
    try:
        work()
    finally:
        event.remove(Pool, "connect", count)
    return len(opened)


def _connections_opened_storing(storage, events: int) -> int:
    """How many SQLite connections ``storage`` opens to store ``events`` more events."""

    def store() -> None:
        for i in range(events):
            storage.store_event(_entry("r", f"m{i}"))

    return _connections_opened(store)


def test_the_connections_stay_open_between_events(tmp_path):
    """Every connection Dagster's storage asks for comes from the pool: should Dagster reach
    its databases another way, the stock cost per event comes back and this fails."""
    pooled = PooledSqliteEventLogStorage(str(tmp_path / "pooled"))
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    for storage in (pooled, stock):
        storage.store_event(_entry("r", "first"))  # creates the run's database
    try:
        assert _connections_opened_storing(pooled, 20) == 0
        assert _connections_opened_storing(stock, 20) >= 20
    finally:
        pooled.dispose()
        stock.dispose()


def test_a_table_found_is_not_looked_up_again(tmp_path):
    """Dagster asks ``has_table`` before storing asset event tags and check results."""
    pooled = PooledSqliteEventLogStorage(str(tmp_path / "pooled"))
    stock = SqliteEventLogStorage(str(tmp_path / "stock"))
    try:
        for storage in (pooled, stock):
            assert storage.has_table("asset_event_tags")
            assert not storage.has_table("no_such_table")

        def ask(storage, table: str):
            return lambda: [storage.has_table(table) for _ in range(10)]

        assert _connections_opened(ask(pooled, "asset_event_tags")) == 0
        assert _connections_opened(ask(stock, "asset_event_tags")) >= 10
        # A missing table is asked again each time: a migration may create it.
        assert _connections_opened(ask(pooled, "no_such_table")) >= 10
    finally:
        pooled.dispose()
        stock.dispose()


def test_a_relative_base_dir_is_under_dagster_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    storage = PooledSqliteEventLogStorage("history/runs")
    storage.store_event(_entry("r", "hello"))
    assert (tmp_path / "history" / "runs" / "r.db").exists()
    monkeypatch.delenv("DAGSTER_HOME")
    with pytest.raises(ValueError, match="DAGSTER_HOME is not set"):
        PooledSqliteEventLogStorage("history/runs")


def test_an_instance_with_the_overrides_runs_a_job_and_keeps_its_events(tmp_path):
    @dg.asset
    def one() -> int:
        return 1

    home = tmp_path / "home"
    home.mkdir()
    with dg.DagsterInstance.local_temp(str(home), overrides=instance_overrides(home)) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        result = dg.materialize([one], instance=instance)
        assert result.success
    # A stock instance on the same directory (as the webserver without our dagster.yaml).
    with dg.DagsterInstance.local_temp(str(home)) as stock:
        record = stock.get_latest_materialization_event(dg.AssetKey("one"))
        assert record is not None and record.run_id == result.run_id
        assert (home / "history" / "runs" / f"{result.run_id}.db").exists()


def test_the_log_watcher_sees_each_new_event(tmp_path):
    """Live run logs in the UI: Dagster's watcher must fire for events stored pooled."""
    import threading

    pooled = PooledSqliteEventLogStorage(str(tmp_path))
    pooled.store_event(_entry("live", "first"))  # the run's database exists before watching
    seen: list[str] = []
    arrived = threading.Event()

    def on_event(event, _cursor) -> None:
        seen.append(event.user_message)
        if len(seen) >= 3:
            arrived.set()

    pooled.watch("live", None, on_event)
    try:
        for i in range(3):
            pooled.store_event(_entry("live", f"later-{i}"))
            time.sleep(0.3)
        assert arrived.wait(10), f"the watcher saw only {seen}"
    finally:
        pooled.end_watch("live", on_event)
        pooled.dispose()
    assert seen[-3:] == ["later-0", "later-1", "later-2"]
