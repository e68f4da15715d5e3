"""Run the dbt project (dbt_project/) in-process from tests.

dbt runs with its target and log paths in the test's temporary directory, so
parallel runs do not collide, and the DuckDB instance that dbt-duckdb caches per
process is closed after every run so the test can open the file itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dbt.cli.main import dbtRunner

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


def release_duckdb() -> None:
    """Close the DuckDB instance dbt-duckdb keeps open in this process after a run.

    dbt-duckdb caches one environment per process (class attribute) holding the
    database open; the test's own connections (some read-only) would otherwise
    fail with "different configuration than existing connections".
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
        DuckDBConnectionManager.close_all_connections()


def run_dbt(
    tmp: Path,
    *args: str,
    variables: dict | None = None,
    profiles_dir: Path = PROJECT_DIR,
) -> None:
    """Run dbt in-process against PROJECT_DIR; fail the test with the failing nodes' messages."""
    cli_args = [
        *args,
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(profiles_dir),
        "--target-path", str(tmp / "target"),
        "--log-path", str(tmp / "logs"),
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "--no-use-colors",
        "--quiet",
    ]  # fmt: skip
    if variables is not None:
        cli_args += ["--vars", json.dumps(variables)]
    try:
        res = dbtRunner().invoke(cli_args)
    finally:
        release_duckdb()
    if not res.success:
        failures = [
            f"{r.node.unique_id}: {r.status} {r.message}"
            for r in getattr(res.result, "results", None) or []
            if str(r.status) not in ("success", "pass")
        ]
        pytest.fail(f"dbt {' '.join(args)} failed: {res.exception or ''}\n" + "\n".join(failures))
