"""A dbt asset's ``dbt build`` in this process, its results streamed as Dagster events.

dagster-dbt's ``DbtCliResource.cli`` starts a dbt process per build, which imports dbt
and parses the project again each time. Here dbt runs in the step's own process on the
run's parsed manifest (:mod:`orchestration.dbt_parse`), in a worker thread, while the
step turns each finished node into Dagster events as it arrives, with dagster-dbt's
public ``DbtCliEventMessage.to_default_asset_events``: the same materialisations and
asset-check results as the subprocess gives. dbt's structured events reach us through
``dbtRunner``'s ``callbacks`` in the form of its JSON log lines (``msg_to_dict``).

A step that materialises only part of its dbt assets (a job's selection, a subset picked
in the UI) gets its dbt selection from dagster-dbt (:func:`subset_selection`, a function
below its public API, pinned in ``CHECKED_WITH``); when that needs a generated selectors
file in a copy of the project (hundreds of nodes), the step keeps dagster-dbt's subprocess.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg
from dagster_dbt import DagsterDbtTranslator
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from orchestration.dbt import DBT_PROJECT_DIR, dbt_project, invoke_dbt
from orchestration.dbt_parse import PRODUCTION, parsed_manifest

# The dagster-dbt release subset_selection was read against (tests/test_private_internals.py).
CHECKED_WITH = {"dagster-dbt": "==0.29.27"}
# dbt's events that end a node: the ones dagster-dbt turns into Dagster events.
RESULT_EVENTS = frozenset({"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"})
_DONE = object()


def is_whole_step(context: dg.AssetExecutionContext, whole: dg.AssetsDefinition) -> bool:
    """Whether the step materialises every asset and check of ``whole``, its full definition
    (not a subset picked in the UI or by a job's selection)."""
    return set(context.selected_asset_keys) == set(whole.keys) and set(
        context.selected_asset_check_keys
    ) == set(whole.check_keys)


def subset_selection(
    context: dg.AssetExecutionContext, translator: DagsterDbtTranslator, excludes: Sequence[str]
) -> list[str] | None:
    """dbt selection arguments for the assets and checks the step was asked for, or None
    when dagster-dbt would run them from a generated copy of the project."""
    from dagster_dbt.asset_utils import get_updated_cli_invocation_params_for_context
    from dagster_dbt.dbt_manifest import validate_manifest

    params = get_updated_cli_invocation_params_for_context(
        context=context,
        manifest=validate_manifest(dbt_project.manifest_path),  # dagster-dbt's cached read
        dagster_dbt_translator=translator,
        runtime_excludes=list(excludes),
    )
    if params.dbt_project is not None and Path(params.dbt_project.project_dir) != DBT_PROJECT_DIR:
        return None
    args = list(params.selection_args)
    if params.indirect_selection:
        args += ["--indirect-selection", params.indirect_selection]
    return args


def _run_in_thread(args: list[str], manifest, events: queue.Queue) -> None:
    from dbt_common.events.functions import msg_to_dict

    def forward(msg) -> None:
        info = msg.info
        if info.name in RESULT_EVENTS or info.level == "error":
            events.put(msg_to_dict(msg))

    def run() -> None:
        try:
            events.put(invoke_dbt(args, manifest, callbacks=[forward]))
        except BaseException as exc:  # noqa: BLE001 - handed to the step's thread
            events.put(exc)
        finally:
            events.put(_DONE)

    threading.Thread(target=run, name="dbt-build", daemon=True).start()


def build(
    context: dg.AssetExecutionContext,
    *,
    workdir: Path,
    target: Path,
    dbt_vars: dict,
    args: Sequence[str],
    translator: DagsterDbtTranslator,
) -> Iterator:
    """Run ``dbt build <args>`` in this process and yield the Dagster events of its nodes.

    ``target`` is dbt's target and log folder (``dbt.log`` in text). Raises
    ``DagsterDbtCliRuntimeError`` with dbt's error lines when the build fails, like
    dagster-dbt's subprocess does.
    """
    manifest = parsed_manifest(workdir, PRODUCTION, Path(dbt_vars["warehouse_path"]).name)
    project = str(DBT_PROJECT_DIR)
    command = [
        "build",
        "--project-dir", project, "--profiles-dir", project,
        "--target-path", str(target), "--log-path", str(target),
        # dbt's console lines go to sys.stdout: the run's log file, or the console with
        # `custseg run --verbose` (orchestration/cli.py), as the dbt command's output did.
        "--no-use-colors",
        "--vars", json.dumps(dbt_vars),
        *args,
    ]  # fmt: skip
    events: queue.Queue = queue.Queue()
    _run_in_thread(command, manifest, events)
    errors: list[str] = []
    outcome = None
    while (item := events.get()) is not _DONE:
        if isinstance(item, BaseException):
            raise item
        if not isinstance(item, dict):
            outcome = item
            continue
        if item["info"]["level"] == "error":
            errors.append(item["info"]["msg"])
        if item["info"]["name"] in RESULT_EVENTS:
            event = DbtCoreCliEventMessage(raw_event=item, event_history_metadata={})
            yield from event.to_default_asset_events(
                manifest=dbt_project.manifest_path,  # read once: dagster-dbt caches it
                dagster_dbt_translator=translator,
                context=context,
                target_path=target,
                project=dbt_project,
            )
    context.log.info(f"dbt {' '.join(command[:1] + list(args))}: log in {target / 'dbt.log'}")
    if outcome is None or not outcome.success:
        detail = outcome.error if outcome is not None else "no result"
        raise DagsterDbtCliRuntimeError(
            description=(
                f"dbt build in this process failed ({detail or 'a node failed'}); its log:"
                f" {target / 'dbt.log'}.\n\nErrors parsed from dbt logs:\n\n" + "\n\n".join(errors)
            )
        )
