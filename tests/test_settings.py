"""Environments (dev / prod) and the settings read from the environment."""

from __future__ import annotations

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
