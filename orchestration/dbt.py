"""Where the dbt project is, how its manifest is made, and how dbt runs in this process.

Importing this module does no work: ``DbtProject`` only computes paths. The
manifest (``dbt_project/target/manifest.json``) is produced by ``custseg
parse`` (run by ``make install``) or, under ``dagster dev``, by
``prepare_if_dev``. The dbt assets run dbt through dagster-dbt's resource
(``orchestration/dbt_resource.py``); :func:`invoke_dbt` runs it in this process.
"""

from __future__ import annotations

import gc
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)

# How every dbt build and run of the pipeline logs: dbt.log (under its log path) in text
# at INFO, no manifest.json / run_results.json (Dagster's event log has every node's
# outcome). dbt's defaults, debug lines and JSON artifacts, cost time on every node.
QUIET_FILE_ARGS = (
    "--log-format-file", "text",
    "--log-level-file", "info",
    "--no-use-colors-file",
    "--no-write-json",
)  # fmt: skip


@dataclass(frozen=True)
class DbtOutcome:
    """What an in-process dbt invocation returned, without dbt's exception object."""

    success: bool
    result: Any  # the manifest for ``parse``, the node results for ``run`` / ``build``
    error: str  # the exception that ended the invocation, as text ("" when none)


def invoke_dbt(args: list[str], manifest=None, callbacks=None) -> DbtOutcome:
    """Run dbt in this process (``dbtRunner``) and free the warehouse file afterwards.

    dbt-duckdb keeps its DuckDB database open for the rest of the process, so this
    process could not open the warehouse again with other settings (read-only), nor
    could another process write it. ``close_all_connections()``, dbt-duckdb's public
    way to end that, drops the database, which closes once nothing else refers to it.
    An exception that ended the invocation still refers to it through dbt's frames:
    only its text is kept, and a garbage collection frees the rest.
    tests/dbt/test_cutoffs.py checks that the file is free after either outcome.
    ``callbacks`` get each of dbt's structured events (``dbtRunner``'s own argument).
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.cli.main import dbtRunner

    outcome = None
    try:
        res = dbtRunner(manifest=manifest, callbacks=callbacks).invoke(args)
        outcome = DbtOutcome(res.success, res.result, str(res.exception or ""))
        del res
    finally:
        DuckDBConnectionManager.close_all_connections()
        if outcome is None or outcome.error:
            gc.collect()
    return outcome


def dbt_executable() -> str:
    """The dbt installed beside this Python, so an un-activated venv (`.venv/bin/custseg`) works."""
    # sys.prefix is the venv even when the interpreter was started through a resolved
    # symlink (as `dagster dev` starts its code server).
    for candidate in (Path(sys.prefix) / "bin" / "dbt", Path(sys.executable).parent / "dbt"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("dbt") or "dbt"


def project_mtime() -> float:
    """When a file of the dbt project (models, seeds, macros, tests, project, profiles) changed last."""
    files = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for sub in ("models", "seeds", "macros", "tests"):
        files += [f for f in (DBT_PROJECT_DIR / sub).rglob("*") if f.is_file()]
    return max(f.stat().st_mtime for f in files if f.exists())


def _sources_newer_than(manifest: Path) -> bool:
    return project_mtime() > manifest.stat().st_mtime


def parse_project(target: Path, *, write_json: bool, extra: tuple[str, ...] = ()) -> DbtOutcome:
    """``dbt parse`` of the project in this process into ``target`` (``extra``: e.g. vars);
    ``write_json`` writes ``manifest.json`` there (else only dbt's partial-parse state)."""
    project = str(DBT_PROJECT_DIR)
    return invoke_dbt(
        [
            "parse", "--quiet", "--write-json" if write_json else "--no-write-json",
            "--project-dir", project, "--profiles-dir", project,
            "--target-path", str(target), *extra,
        ]
    )  # fmt: skip


def ensure_manifest(force: bool = False) -> Path:
    """Run ``dbt parse`` when the manifest is missing or older than the project files."""
    manifest = dbt_project.manifest_path
    if not force and manifest.exists() and not _sources_newer_than(manifest):
        return manifest
    result = parse_project(DBT_PROJECT_DIR / "target", write_json=True)
    if not result.success or not manifest.exists():
        raise RuntimeError(f"dbt parse failed for {DBT_PROJECT_DIR}: {result.error}")
    return manifest
