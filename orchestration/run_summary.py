"""What ``custseg run`` prints after a successful run: the segments, the totals a manager
asks for first (customers, revenue, customer lifetime value, expected churn), where the
outputs are and what to do next.

Numbers have thousands separators; money is shown in the project's ``currency`` setting
when the config has one (otherwise as a plain number).
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.run_context import RunContext


def money_formatter(config):
    """``amount -> text`` in the project's currency (``CurrencyConfig.format``)."""
    return config.currency.format


def count(n: float) -> str:
    return f"{n:,.0f}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Text columns: the first (names) left-aligned, the numbers right-aligned."""
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *rows, strict=True)]

    def line(values):
        first, *rest = values
        cells = [first.ljust(widths[0])] + [
            v.rjust(w) for v, w in zip(rest, widths[1:], strict=True)
        ]
        return "  ".join(cells).rstrip()

    return [line(headers)] + [line(r) for r in rows]


def summary_lines(run: RunContext) -> list[str]:
    """The summary of the run whose warehouse ``run`` names, as lines of text."""
    s = run.settings
    money = money_formatter(run.config)
    with duckdb.connect(str(s.warehouse_path), read_only=True) as con:
        segments = con.execute(
            "select segment_name, customers, customer_share, revenue, revenue_share, "
            "mean_recency_days, mean_frequency, mean_monetary_total "
            "from marts.mart_segment_summary where segment_type = 'cluster' order by revenue desc"
        ).df()
        (algorithm,) = con.execute(
            "select any_value(algorithm) from ml.segmentation_candidates where chosen"
        ).fetchone()
        totals = con.execute(
            "select count(*), sum(monetary_total), sum(clv), sum(churn_probability), "
            "count(*) filter (where churn_risk_band = 'high'), sum(revenue_at_risk), "
            "max(as_of_date), max(clv_horizon_days), max(churn_horizon_days) "
            "from marts.dim_customer"
        ).fetchone()
    customers, revenue, clv, churners, high_risk, at_risk, as_of, clv_days, churn_days = totals
    table = _table(
        ["segment", "customers", "customers %", "revenue", "revenue %", "recency (days)",
         "orders", "spend / customer"],
        [
            [
                row.segment_name,
                count(row.customers),
                f"{100 * row.customer_share:.1f}",
                money(row.revenue),
                f"{100 * row.revenue_share:.1f}",
                f"{row.mean_recency_days:,.0f}",
                f"{row.mean_frequency:,.1f}",
                money(row.mean_monetary_total),
            ]
            for row in segments.itertuples()
        ],
    )  # fmt: skip
    as_of_text = str(as_of)[:10] if as_of is not None else "?"
    lines = [f"Segments as of {as_of_text} (production segmentation: {algorithm}):"]
    lines += table
    share = f" ({100 * churners / customers:.1f} %)" if customers else ""
    lines += [
        "",
        f"Customers:      {count(customers)}, revenue to date {money(revenue or 0)}",
        f"Lifetime value: {money(clv or 0)} expected in the next {clv_days or 0:,} days "
        "(CLV, all customers)",
        f"Churn:          {count(churners or 0)} customers expected to churn in the next "
        f"{churn_days or 0:,} days{share}; {count(high_risk)} at high risk, "
        f"{money(at_risk or 0)} of value at risk",
    ]
    return lines


def next_steps(run: RunContext) -> list[str]:
    """Where the outputs are, and what to open first."""
    s = run.settings
    report = Path(s.workdir) / "reports" / "latest.html"
    exports = Path(s.exports_dir) / "powerbi"
    return [
        "",
        "Next:",
        f"  1. Open the report:   {report}",
        f"     (custseg report --open --workdir {s.workdir})",
        f"  2. Power BI: open powerbi/CustomerSegmentation.pbip and set ExportFolder to {exports}",
        "     (on Windows, a folder Power BI can reach: docs/windows.md)",
        f"  3. Explore the data:  dagster UI (make dev), or DuckDB on {s.warehouse_path}",
    ]


def print_summary(run: RunContext) -> None:
    print()
    for line in summary_lines(run) + next_steps(run):
        print(line)
