"""Project config files: validation errors name the file and the key; CLI reports them."""

from __future__ import annotations

import pytest

from orchestration.cli import main
from orchestration.io.config import ConfigError, load_config


def _write(tmp_path, text: str):
    path = tmp_path / "shop.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_relative_data_root_resolves_against_the_config_file(tmp_path):
    path = _write(
        tmp_path,
        "data_root: data\ntransactions:\n  path: t.csv\n"
        "  columns: {customer_id: c, ordered_at: d, amount: a}\n",
    )
    cfg = load_config(path)
    assert cfg.resolve_root() == (tmp_path / "data").resolve()
    assert str(cfg.resolve_root("/elsewhere")) == "/elsewhere"


def test_unknown_canonical_column_is_named(tmp_path):
    path = _write(
        tmp_path,
        "transactions:\n  path: t.csv\n  columns: {customer_id: c, ordered_at: d, amount: a, "
        "price: p}\n",
    )
    with pytest.raises(ConfigError, match=r"shop\.yaml.*unknown canonical column.*'price'"):
        load_config(path)


def test_amount_or_quantity_and_price_required(tmp_path):
    path = _write(
        tmp_path, "transactions:\n  path: t.csv\n  columns: {customer_id: c, ordered_at: d}\n"
    )
    with pytest.raises(ConfigError, match="must map `amount`, or both `quantity` and `unit_price`"):
        load_config(path)


def test_misspelt_key_is_rejected_with_its_path(tmp_path):
    path = _write(
        tmp_path,
        "transactions:\n  path: t.csv\n  delimeter: ';'\n"
        "  columns: {customer_id: c, ordered_at: d, amount: a}\n",
    )
    with pytest.raises(ConfigError, match=r"transactions\.delimeter"):
        load_config(path)


def test_cli_reports_a_missing_config_file_without_a_traceback(tmp_path, capsys):
    code = main(["run", "--config", str(tmp_path / "nope.yaml"), "--workdir", str(tmp_path / "w")])
    assert code == 2
    err = capsys.readouterr().err
    assert "config file not found" in err and "nope.yaml" in err and "Traceback" not in err


def test_dbt_vars_carry_the_configured_churn_horizon(tmp_path):
    """Scores (Python) and observed churn (dbt marts) use one horizon from the config."""
    from orchestration.resources import WarehouseResource

    config = tmp_path / "shop.yaml"
    config.write_text(
        "transactions:\n"
        "  path: t.csv\n"
        "  columns: {customer_id: c, ordered_at: d, amount: a}\n"
        "scoring: {churn_horizon_days: 60}\n"
        "campaign: {min_expected_value: 25}\n"
    )
    resource = WarehouseResource(workdir=str(tmp_path / "wd"), config_path=str(config))
    assert resource.dbt_vars()["churn_horizon_days"] == 60
    assert resource.dbt_vars()["campaign_min_expected_value"] == 25
    demo = WarehouseResource(workdir=str(tmp_path / "demo"))
    assert demo.dbt_vars()["churn_horizon_days"] == 90
    assert demo.dbt_vars()["campaign_min_expected_value"] == 1.0
