"""The places that reach below a library's public API, pinned to what they were read against.

* ``orchestration/event_log.py`` subclasses Dagster's ``SqliteEventLogStorage`` (in
  ``dagster._core``) and overrides its two connection methods.
* ``orchestration/dbt_resource.py`` overrides two private members of dagster-dbt's
  ``DbtCliResource`` (``_cli_version``, ``_initialize_dbt_core_adapter``).
* ``orchestration/dbt_build.py`` asks dagster-dbt's ``asset_utils`` for the dbt selection
  of a step's subset (``get_updated_cli_invocation_params_for_context``) and builds
  ``DbtCoreCliEventMessage`` objects (not exported at the top level) from dbt's events.
* ``orchestration/executor.py`` runs Dagster's in-process step loop with the steps on
  threads, and calls ``core_execute_in_process`` as ``execute_in_process`` does.

They save seconds per run that no public setting saves (the commit messages give the
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

from orchestration import dbt_build, dbt_resource, event_log, executor


@pytest.mark.parametrize(
    "adapter", [event_log, dbt_resource, dbt_build, executor], ids=lambda m: m.__name__
)
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
    # ... and the table check the adapter remembers, asked through self before storing.
    assert _parameters(SqliteEventLogStorage.has_table) == ["self", "table_name"]
    assert "self.has_table(" in inspect.getsource(SqlEventLogStorage)


def test_dagster_dbt_still_asks_the_two_overridden_members_before_each_command():
    cli = inspect.getsource(DbtCliResource.cli)
    assert "self._initialize_dbt_core_adapter(args)" in cli
    assert "self._cli_version" in cli
    assert _parameters(DbtCliResource._initialize_dbt_core_adapter) == ["self", "args"]
    assert isinstance(inspect.getattr_static(DbtCliResource, "_cli_version"), cached_property)


def test_dagster_dbt_still_derives_a_subset_selection_the_way_dbt_build_reads_it():
    from dagster_dbt import asset_utils

    params = _parameters(asset_utils.get_updated_cli_invocation_params_for_context)
    assert params[:3] == ["context", "manifest", "dagster_dbt_translator"]
    assert "runtime_excludes" in params
    fields = set(asset_utils.DbtCliInvocationPartialParams.__annotations__)
    assert {"selection_args", "indirect_selection", "dbt_project"} <= fields
    # The events dbt_build feeds it: dbt's JSON log lines, one class per engine.
    from dagster_dbt.core.dbt_cli_event import DbtCliEventMessage, DbtCoreCliEventMessage

    assert issubclass(DbtCoreCliEventMessage, DbtCliEventMessage)
    # ... and the manifest it hands that function: dagster-dbt's cached read of the file.
    from dagster_dbt.dbt_manifest import read_manifest_path, validate_manifest

    assert _parameters(validate_manifest) == ["manifest"]
    assert hasattr(read_manifest_path, "cache_info")
    assert _parameters(DbtCoreCliEventMessage) == ["raw_event", "event_history_metadata"]


def test_dagsters_in_process_loop_still_makes_the_calls_the_overlapping_loop_makes():
    from dagster._core.execution.plan.execute_plan import inner_plan_execution_iterator

    loop = inspect.getsource(inner_plan_execution_iterator)
    for call in (
        "execution_plan.start(",
        "active_execution.concurrency_event_iterator(job_context)",
        "job_context.for_step(step, active_execution.get_known_state())",
        "dagster_event_sequence_for_step(step_context)",
        "active_execution.handle_event(dagster_event)",
        "active_execution.verify_complete(job_context, step.key)",
        "active_execution.plan_events_iterator(job_context)",
        "_trigger_hook(step_context, step_event_list)",
        "compute_log_manager.capture_logs(log_key)",
    ):
        assert call in loop, call


def test_dagsters_execute_in_process_still_wraps_the_ephemeral_job_as_the_adapter_does():
    from dagster import JobDefinition
    from dagster._core.execution.execute_in_process import core_execute_in_process

    source = inspect.getsource(JobDefinition.execute_in_process)
    for call in ("self.as_ephemeral_job(", "InMemoryJob(job_def=ephemeral_job)", "merge_run_tags("):
        assert call in source, call
    assert _parameters(JobDefinition.as_ephemeral_job)[:3] == [
        "self",
        "resource_defs",
        "input_values",
    ]
    assert {"job", "run_config", "instance", "output_capturing_enabled", "raise_on_error",
            "run_tags", "run_id", "asset_selection"} <= set(_parameters(core_execute_in_process))  # fmt: skip
