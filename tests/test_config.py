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
    assert resource.run_context().dbt_vars()["churn_horizon_days"] == 60
    assert resource.run_context().dbt_vars()["campaign_min_expected_value"] == 25
    demo = WarehouseResource(workdir=str(tmp_path / "demo"))
    assert demo.run_context().dbt_vars()["churn_horizon_days"] == 90
    assert demo.run_context().dbt_vars()["campaign_min_expected_value"] == 1.0


COLUMNS = "  columns: {customer_id: c, ordered_at: d, amount: a}\n"


@pytest.mark.parametrize("path", ["[]", "''", "[t.csv, ' ']"])
def test_empty_path_list_or_blank_name_is_refused_naming_the_key(tmp_path, path):
    config = _write(tmp_path, f"transactions:\n  path: {path}\n{COLUMNS}")
    with pytest.raises(ConfigError, match=r"shop\.yaml: transactions\.path: an empty "):
        load_config(config)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("date_format", "'%Y-%Q'", "'%Y-%Q' is not a strptime format: Unrecognized format .*%Q"),
        ("date_format", "'%d/%m/%'", "'%d/%m/%' is not a strptime format: Trailing format"),
        ("date_formats", "['%Y-%m-%d', 'dd/mm/yyyy']", "'dd/mm/yyyy' has no % directive"),
    ],
)
def test_bad_date_format_names_the_key_and_the_value(tmp_path, key, value, message):
    config = _write(tmp_path, f"transactions:\n  path: t.csv\n  {key}: {value}\n{COLUMNS}")
    with pytest.raises(ConfigError, match=rf"shop\.yaml: transactions\.{key}: {message}"):
        load_config(config)


def test_date_formats_duckdb_reads_are_accepted(tmp_path):
    config = _write(
        tmp_path,
        f"transactions:\n  path: t.csv\n  date_format: '%-d.%-m.%Y %H:%M'\n{COLUMNS}"
        "customers:\n  path: c.csv\n  date_formats: ['%Y%m%d', '%d/%m/%Y']\n"
        "  columns: {customer_id: c}\n",
    )
    assert load_config(config).transactions.date_format == "%-d.%-m.%Y %H:%M"


def test_cli_refuses_an_as_of_that_is_not_a_date(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--as-of", "2030-13-01", "--workdir", str(tmp_path / "w")])
    assert exit_.value.code == 2
    assert "argument --as-of: not a date YYYY-MM-DD: '2030-13-01'" in capsys.readouterr().err
