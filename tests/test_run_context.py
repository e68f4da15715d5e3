"""The run context: settings and config resolved once, one dbt var per concept, one default."""

from __future__ import annotations

from dataclasses import fields

import pytest
import yaml

from orchestration.cli import build_parser
from orchestration.io.config import CampaignConfig, ScoringConfig, SourceConfig
from orchestration.resources import WarehouseResource
from orchestration.run_context import RunContext
from orchestration.settings import Settings, SettingsError
from tests.conftest import REPO

CONFIG = """\
transactions:
  path: t.csv
  columns: {customer_id: c, ordered_at: d, amount: a}
scoring: {churn_horizon_days: 60, clv_horizon_days: 180}
"""


def _dbt_project_vars() -> dict:
    text = (REPO / "dbt_project" / "dbt_project.yml").read_text(encoding="utf-8")
    return yaml.safe_load(text)["vars"]


def test_dbt_project_defaults_are_the_configs():
    """dbt_project.yml repeats the config's defaults for dbt runs by hand: they agree."""
    declared = _dbt_project_vars()
    assert declared["churn_horizon_days"] == ScoringConfig().churn_horizon_days
    assert declared["campaign_min_expected_value"] == CampaignConfig().min_expected_value
    path = {"path": "t.csv", "columns": {"customer_id": "c", "ordered_at": "d", "amount": "a"}}
    assert declared["drop_exact_duplicates"] == SourceConfig(**path).drop_exact_duplicates


def test_every_dbt_var_of_a_run_is_declared_once_under_one_name(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    settings = Settings(
        workdir=str(tmp_path / "wd"), config_path=str(config), as_of_date="2024-05-01"
    )
    variables = RunContext.resolve(settings).dbt_vars()
    declared = _dbt_project_vars()
    profile_only = {"warehouse_path", "duckdb_memory_limit", "duckdb_threads"}
    assert set(variables) <= set(declared) | profile_only
    assert variables["churn_horizon_days"] == 60 and variables["as_of_date"] == "2024-05-01"
    # The churn horizon reaches dbt under one name (it used to be outcome_horizon_days too).
    assert [v for v in declared if "horizon" in v] == ["churn_horizon_days"]


def test_the_config_is_read_once_per_run(tmp_path):
    config = tmp_path / "shop.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    resource = WarehouseResource(workdir=str(tmp_path / "wd"), config_path=str(config))
    first = resource.run_context()
    config.write_text(CONFIG.replace("60", "45"), encoding="utf-8")
    assert resource.run_context() is first and resource.project_config() is first.config
    assert first.churn_horizon_days == 60 and first.clv_horizon_days == 180
    # A new run (a new context) reads the file as it is then.
    assert RunContext.resolve(resource.settings()).churn_horizon_days == 45


def test_settings_reach_the_resource_and_the_cli_under_their_own_names(tmp_path):
    s = Settings(
        workdir=str(tmp_path),
        config_path="c.yaml",
        data_root="data",
        as_of_date="2024-01-31",
        lock_timeout=5.0,
        export_dir="out",
        duckdb_memory_limit="1GB",
        duckdb_threads=3,
    )
    assert WarehouseResource.from_settings(s).settings() == s
    names = {f.name for f in fields(Settings)}
    assert names - set(WarehouseResource.model_fields) == {"env"}
    args = build_parser().parse_args(["run"])
    assert names <= set(vars(args)), names - set(vars(args))


@pytest.mark.parametrize("value", ["01/02/2026", "2026-02-30", "soon"])
def test_a_malformed_as_of_date_is_refused_naming_where_it_came_from(value):
    with pytest.raises(
        SettingsError, match=rf"CUSTSEG_AS_OF_DATE: not a date YYYY-MM-DD: '{value}'"
    ):
        Settings.from_env({"CUSTSEG_AS_OF_DATE": value})
    with pytest.raises(SettingsError, match=r"--as-of / CUSTSEG_AS_OF_DATE: not a date"):
        RunContext.resolve(Settings(as_of_date=value))
    assert Settings.from_env({"CUSTSEG_AS_OF_DATE": " 2026-02-01 "}).as_of_date == "2026-02-01"
