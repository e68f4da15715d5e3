"""The project config's currency labels money in the report, the run summary and Power BI.

Power BI's format strings are tested with the model generator (tests/test_powerbi_generated.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from orchestration.io.config import ConfigError, CurrencyConfig, load_config, project_currency
from orchestration.report import load_report_data
from orchestration.report.markup import fmt_money
from orchestration.report.render import render_report

REPO = Path(__file__).resolve().parents[1]
POUND = CurrencyConfig.model_validate({"code": "GBP", "symbol": "£"})


def _config(tmp_path: Path, currency: str | None) -> Path:
    text = "transactions:\n  path: t.csv\n  columns: {customer_id: c, order_id: o, ordered_at: d, amount: a}\n"
    if currency is not None:
        text += f"currency: {currency}\n"
    path = tmp_path / "shop.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_live_in_the_config_module_and_a_code_alone_is_enough(tmp_path):
    assert (
        project_currency(None) == CurrencyConfig() == load_config(_config(tmp_path, None)).currency
    )
    assert (CurrencyConfig().code, CurrencyConfig().symbol) == ("USD", "$")
    euro = load_config(_config(tmp_path, "EUR")).currency
    assert (euro.code, euro.symbol, euro.format(1234.5)) == ("EUR", None, "EUR 1,234.50")
    assert load_config(_config(tmp_path, '{code: GBP, symbol: "£"}')).currency == POUND
    yen = CurrencyConfig.model_validate({"code": "JPY", "symbol": "¥", "decimals": 0})
    assert (yen.format(-1234.5), yen.powerbi_format()) == ("-¥1,234", '"¥"#,0')
    with pytest.raises(ConfigError, match="currency.code"):
        load_config(_config(tmp_path, "dollars"))


def test_amounts_carry_the_currency():
    assert POUND.format(-3) == "-£3.00" and POUND.powerbi_format() == '"£"#,0.00'
    assert fmt_money(2_094_823.8, POUND) == "£2.09M"
    assert fmt_money(-9_500, POUND) == "-£9,500"
    assert fmt_money(2_094_823.8) == "2.09M"  # no currency: as before


def test_report_shows_the_configured_currency(published_demo):
    with duckdb.connect(str(published_demo / "warehouse.duckdb"), read_only=True) as con:
        data = load_report_data(con, published_demo, currency=POUND)
        default = load_report_data(con, published_demo)
    html = render_report(data, "run-currency", datetime(2026, 1, 1, tzinfo=UTC))
    revenue = re.search(r'data-metric="revenue"[^>]*>([^<]*)<', html).group(1)
    assert revenue.startswith("£") and revenue == fmt_money(data.headline.revenue, POUND)
    for header in ("Revenue (GBP)", "Revenue at risk (GBP)", "CLV / customer (GBP)"):
        assert f">{header}</th>" in html
    plain = render_report(default, "run-currency", datetime(2026, 1, 1, tzinfo=UTC))
    assert "£" not in plain and ">Revenue (USD)</th>" in plain


def test_run_summary_shows_the_configured_currency(published_demo, tmp_path):
    from orchestration.run_context import RunContext
    from orchestration.run_summary import summary_lines
    from orchestration.settings import Settings

    config = _config(tmp_path, '{code: GBP, symbol: "£"}')
    gbp = "\n".join(
        summary_lines(
            RunContext.resolve(Settings(workdir=str(published_demo), config_path=str(config)))
        )
    )
    usd = "\n".join(summary_lines(RunContext.resolve(Settings(workdir=str(published_demo)))))
    assert "revenue to date £" in gbp and "$" not in gbp
    assert "revenue to date $" in usd and "£" not in usd
