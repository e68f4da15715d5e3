"""Where the dbt project is, and how its manifest is made.

Importing this module does no work: ``DbtProject`` only computes paths. The
manifest (``dbt_project/target/manifest.json``) is produced by ``custseg
parse`` (run by ``make install``) or, under ``dagster dev``, by
``prepare_if_dev``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """The dbt installed beside this Python, so an un-activated venv (`.venv/bin/custseg`) works."""
    # sys.prefix is the venv even when the interpreter was started through a resolved
    # symlink (as `dagster dev` starts its code server).
    for candidate in (Path(sys.prefix) / "bin" / "dbt", Path(sys.executable).parent / "dbt"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("dbt") or "dbt"


def _sources_newer_than(manifest: Path) -> bool:
    mtime = manifest.stat().st_mtime
    for sub in ("models", "seeds", "macros", "tests"):
        for f in (DBT_PROJECT_DIR / sub).rglob("*"):
            if f.is_file() and f.stat().st_mtime > mtime:
                return True
    return (DBT_PROJECT_DIR / "dbt_project.yml").stat().st_mtime > mtime


def ensure_manifest(force: bool = False) -> Path:
    """Run ``dbt parse`` when the manifest is missing or older than the project files."""
    manifest = dbt_project.manifest_path
    if not force and manifest.exists() and not _sources_newer_than(manifest):
        return manifest
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(
        [
            "parse",
            "--quiet",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(DBT_PROJECT_DIR / "target"),
        ]
    )
    if not result.success or not manifest.exists():
        raise RuntimeError(f"dbt parse failed for {DBT_PROJECT_DIR}: {result.exception}")
    return manifest
