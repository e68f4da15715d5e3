"""The automated HTML report, rendered last in every run (orchestration/report/)."""

import time

import dagster as dg

from orchestration.assets.dbt import dbt_marts
from orchestration.report import write_report
from orchestration.resources import WarehouseResource


def _actions_markdown(actions) -> str:
    if actions.empty:
        return "No customer is selected for a campaign in this run."
    lines = ["| # | action | segment | customers | expected value |", "|---|---|---|---:|---:|"]
    for rank, a in enumerate(actions.itertuples(), start=1):
        action, segment = (str(t).replace("|", "\\|") for t in (a.action, a.segment))
        lines.append(
            f"| {rank} | {action} | {segment} | {a.customers:,} | {a.expected_value:,.2f} |"
        )
    return "\n".join(lines)


@dg.asset(
    key="customer_report",
    deps=[*dbt_marts.keys, "powerbi_export"],
    group_name="exports",
    kinds={"html"},
    description="reports/report_<date>_<run>.html and reports/latest.html: one self-contained, "
    "offline HTML report per run (executive summary, top actions, segments, RFM, CLV, churn, "
    "retention, migration, data quality), every number read from the marts.",
)
def customer_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    config = warehouse.project_config()
    t0 = time.perf_counter()
    with warehouse.connect(read_only=True) as con:
        result = write_report(
            con,
            warehouse.root,
            context.run_id,
            min_expected_value=config.campaign.min_expected_value,
            exports_dir=warehouse.exports_dir,
            currency=config.currency,
        )
    h = result.data.headline
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "latest": dg.MetadataValue.path(str(result.latest)),
            "customers": h.customers,
            "segments": len(result.data.segments),
            "expected_churners": dg.MetadataValue.float(round(h.expected_churners, 1)),
            "revenue_at_risk": dg.MetadataValue.float(round(h.revenue_at_risk, 2)),
            "top_actions": dg.MetadataValue.md(_actions_markdown(result.data.top_actions)),
            "render_seconds": dg.MetadataValue.float(round(time.perf_counter() - t0, 3)),
        }
    )
