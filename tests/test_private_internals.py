"""The two places that reach below a library's public API, pinned to what they were read against.

* ``orchestration/event_log.py`` subclasses Dagster's ``SqliteEventLogStorage`` (in
  ``dagster._core``) and overrides its two connection methods.
* ``orchestration/dbt_resource.py`` overrides two private members of dagster-dbt's
  ``DbtCliResource`` (``_cli_version``, ``_initialize_dbt_core_adapter``).

Both save seconds per run that no public setting saves (the commit messages give the
numbers). A new release of either library fails these tests first: read the internals
named here in it, measure again, then move ``CHECKED_WITH`` in the adapter.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from functools import cached_property

import pytest
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster_dbt import DbtCliResource
from packaging.specifiers import SpecifierSet

from orchestration import dbt_resource, event_log


@pytest.mark.parametrize("adapter", [event_log, dbt_resource], ids=lambda m: m.__name__)
def test_the_installed_release_is_the_one_the_adapter_was_read_against(adapter):
    for package, checked in adapter.CHECKED_WITH.items():
        installed = importlib.metadata.version(package)
        assert installed in SpecifierSet(checked), (
            f"{package} {installed} is installed, {adapter.__name__} was read against "
            f"{package}{checked}: check the internals it relies on (see its docstring)"
        )


def _parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_dagster_reaches_every_event_log_database_through_the_two_overridden_methods():
    # The SQL storage interface's two connection methods, as overridden...
    assert {"run_connection", "index_connection"} <= SqlEventLogStorage.__abstractmethods__
    assert _parameters(SqliteEventLogStorage.run_connection) == ["self", "run_id"]
    assert _parameters(SqliteEventLogStorage.index_connection) == ["self"]
    # ... are the only callers of the SQLite storage's private connect (which the adapter
    # calls once per database, through them, to create it).
    source = inspect.getsource(SqliteEventLogStorage)
    assert source.count("self._connect(") == 2
    for name in ("path_for_shard", "conn_string_for_shard", "wipe", "dispose"):
        assert callable(getattr(SqliteEventLogStorage, name))


def test_dagster_dbt_still_asks_the_two_overridden_members_before_each_command():
    cli = inspect.getsource(DbtCliResource.cli)
    assert "self._initialize_dbt_core_adapter(args)" in cli
    assert "self._cli_version" in cli
    assert _parameters(DbtCliResource._initialize_dbt_core_adapter) == ["self", "args"]
    assert isinstance(inspect.getattr_static(DbtCliResource, "_cli_version"), cached_property)
