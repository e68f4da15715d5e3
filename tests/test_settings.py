"""Environments (dev / prod) and the settings read from the environment."""

from __future__ import annotations

import os
import re

import dagster as dg
import pytest

from orchestration.settings import DEFAULT_WORKDIR, Settings, SettingsError
from tests.conftest import REPO
from tests.pipeline_utils import copy_workdir


def test_dev_defaults_to_the_demo_in_the_default_workdir():
    s = Settings.from_env({})
    assert (s.env, s.workdir, s.config_path, s.export_dir) == ("dev", DEFAULT_WORKDIR, None, None)
    assert s.lock_timeout == 600


def test_prod_refuses_to_run_without_workdir_and_config():
    with pytest.raises(SettingsError, match="CUSTSEG_WORKDIR and CUSTSEG_CONFIG"):
        Settings.from_env({"CUSTSEG_ENV": "prod"})
    with pytest.raises(SettingsError, match="needs CUSTSEG_CONFIG"):
        Settings.from_env({"CUSTSEG_ENV": "prod", "CUSTSEG_WORKDIR": "/srv/custseg"})
    s = Settings.from_env(
        {
            "CUSTSEG_ENV": "PROD",
            "CUSTSEG_WORKDIR": "/srv/custseg",
            "CUSTSEG_CONFIG": "/etc/custseg.yaml",
            "CUSTSEG_EXPORT_DIR": "/mnt/share",
            "CUSTSEG_LOCK_TIMEOUT": "30",
        }
    )
    assert (s.env, s.workdir, s.export_dir, s.lock_timeout) == (
        "prod",
        "/srv/custseg",
        "/mnt/share",
        30.0,
    )


def test_bad_values_are_named():
    with pytest.raises(SettingsError, match="CUSTSEG_ENV must be one of"):
        Settings.from_env({"CUSTSEG_ENV": "staging"})
    with pytest.raises(SettingsError, match="CUSTSEG_LOCK_TIMEOUT must be seconds, got 'soon'"):
        Settings.from_env({"CUSTSEG_LOCK_TIMEOUT": "soon"})
    with pytest.raises(SettingsError, match="CUSTSEG_DUCKDB_MEMORY_LIMIT must be a size"):
        Settings.from_env({"CUSTSEG_DUCKDB_MEMORY_LIMIT": "lots"})
    for threads in ("0", "-2", "2.5", "many"):
        with pytest.raises(
            SettingsError, match=f"CUSTSEG_DUCKDB_THREADS must be a whole .*'{threads}'"
        ):
            Settings.from_env({"CUSTSEG_DUCKDB_THREADS": threads})


def test_duckdb_memory_limit_reaches_every_connection(tmp_path):
    """The limit (default 3GB, DuckDB's own default is 80 % of RAM) is set on the run's
    connections and handed to dbt's profile as a var."""
    from orchestration.resources import WarehouseResource

    assert Settings.from_env({}).duckdb_memory_limit == "3GB"
    s = Settings.from_env({"CUSTSEG_DUCKDB_MEMORY_LIMIT": " 512MB "})
    assert s.resolved().duckdb_memory_limit == "512MB"
    resource = WarehouseResource(workdir=str(tmp_path), duckdb_memory_limit=s.duckdb_memory_limit)
    with resource.connect() as con:
        (limit,) = con.execute("select current_setting('memory_limit')").fetchone()
    assert limit == "488.2 MiB"  # DuckDB reports 512 MB (10^6) in MiB
    assert resource.run_context().dbt_vars()["duckdb_memory_limit"] == "512MB"
    profile = (REPO / "dbt_project" / "profiles.yml").read_text()
    assert "memory_limit: \"{{ var('duckdb_memory_limit'" in profile


def test_env_example_documents_every_variable_settings_reads():
    source = (REPO / "orchestration" / "settings.py").read_text()
    read = set(re.findall(r'"(CUSTSEG_[A-Z_]+)"', source))
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?(CUSTSEG_[A-Z_]+)=", example, flags=re.M))
    assert read and read <= documented, read - documented


def test_export_dir_publishes_the_export_elsewhere(published_demo, tmp_path):
    from orchestration.assets.export import powerbi_export
    from orchestration.resources import WarehouseResource

    workdir = copy_workdir(published_demo, tmp_path / "wd")
    share = tmp_path / "share"
    resource = WarehouseResource(workdir=str(workdir), export_dir=str(share))
    assert resource.exports_dir == share
    result = dg.materialize([powerbi_export], resources={"warehouse": resource})
    assert result.success
    assert (share / "powerbi" / "manifest.json").is_file()
    assert (share / "powerbi" / "dim_customer.parquet").is_file()


def test_duckdb_threads_reach_every_connection(tmp_path):
    """DuckDB's threads (default: the cores this process may use, plus two) are set on the
    run's connections, on the ingest's staging connection, and handed to dbt's profile."""
    import duckdb

    from orchestration.ingest.load import staged
    from orchestration.resources import WarehouseResource
    from orchestration.run_context import RunContext

    cores = len(os.sched_getaffinity(0))
    assert Settings.from_env({}).duckdb_threads == cores + 2 == Settings().duckdb_threads
    assert WarehouseResource(workdir=str(tmp_path)).duckdb_threads == cores + 2
    s = Settings.from_env({"CUSTSEG_DUCKDB_THREADS": " 3 "})
    assert s.duckdb_threads == 3
    resource = WarehouseResource(workdir=str(tmp_path), duckdb_threads=s.duckdb_threads)
    with resource.connect() as con:
        assert con.execute("select current_setting('threads')").fetchone() == (3,)
    assert resource.run_context().dbt_vars()["duckdb_threads"] == 3
    run = RunContext.resolve(s)
    with staged(run.config, None, "1GB", [], threads=5) as (con, _):
        assert con.execute("select current_setting('threads')").fetchone() == (5,)
    with duckdb.connect() as con:  # DuckDB's own default, which the setting replaces
        assert con.execute("select current_setting('threads')").fetchone() == (cores,)


def test_dbt_connects_with_the_runs_duckdb_settings(tmp_path):
    """dbt's connection gets the run's threads and memory limit from the vars (profiles.yml)."""
    import json

    from orchestration.dbt import DBT_PROJECT_DIR, invoke_dbt

    dbt_vars = {
        "warehouse_path": str(tmp_path / "w.duckdb"),
        "duckdb_threads": 3,
        "duckdb_memory_limit": "512MB",
    }
    sql = "select current_setting('threads') as t, current_setting('memory_limit') as m"
    res = invoke_dbt(
        ["show", "--inline", sql, "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path), "--quiet", "--no-version-check",
         "--vars", json.dumps(dbt_vars)]
    )  # fmt: skip
    assert res.success, res.error
    assert [tuple(r) for r in res.result.results[0].agate_table.rows] == [(3, "488.2 MiB")]
