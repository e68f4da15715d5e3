"""The summary ``custseg run`` prints: formatted numbers, CLV and churn totals computed
independently from the published marts, and the next steps."""

from __future__ import annotations

import re

import duckdb

from orchestration.io.config import ProjectConfig
from orchestration.run_context import RunContext
from orchestration.run_summary import money_formatter, next_steps, summary_lines
from orchestration.settings import Settings


def test_summary_has_formatted_totals_and_the_next_steps(published_demo):
    run = RunContext.resolve(Settings(workdir=str(published_demo)))
    money = money_formatter(run.config)
    lines = summary_lines(run)
    text = "\n".join(lines)
    with duckdb.connect(str(published_demo / "warehouse.duckdb"), read_only=True) as con:
        customers, revenue, clv, churn, high = con.execute(
            "select count(*), sum(monetary_total), sum(clv), sum(churn_probability), "
            "count(*) filter (where churn_risk_band = 'high') from marts.dim_customer"
        ).fetchone()
        segments = con.execute(
            "select segment_name, revenue from marts.mart_segment_summary "
            "where segment_type = 'cluster'"
        ).fetchall()
    assert f"Customers:      {customers:,}, revenue to date {money(revenue)}" in text
    assert f"Lifetime value: {money(clv)} expected in the next 365 days" in text
    assert f"Churn:          {churn:,.0f} customers expected to churn in the next 90 days" in text
    assert f"{high:,} at high risk" in text
    for name, segment_revenue in segments:
        assert re.search(rf"{re.escape(name)}\s.*{re.escape(money(segment_revenue))}", text), name
    # Separators, never a bare float like 6572467.84.
    assert not re.search(r"\d{4,}\.\d", text), text
    assert revenue >= 1000 and "," in money(revenue)

    steps = "\n".join(next_steps(run))
    assert str(published_demo / "reports" / "latest.html") in steps
    assert f"set ExportFolder to {published_demo / 'exports' / 'powerbi'}" in steps
    assert "docs/windows.md" in steps


def test_money_follows_the_currency_setting_with_separators():
    source = {"path": "x.csv", "columns": {"customer_id": "c", "ordered_at": "d", "amount": "a"}}
    usd = ProjectConfig.model_validate({"transactions": source})
    eur = ProjectConfig.model_validate({"transactions": source, "currency": "EUR"})
    assert money_formatter(usd)(6572467.844) == "$6,572,467.84"
    assert money_formatter(eur)(6572467.844) == "EUR 6,572,467.84"
