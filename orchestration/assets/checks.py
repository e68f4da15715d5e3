"""Great Expectations suites as blocking Dagster asset checks, one per stage.

A failed ``critical`` expectation fails the check with ERROR severity, and
because the checks are blocking, nothing downstream of the checked asset runs
in that run: the marts and the published exports stay as they were. Failed
``warning`` expectations give a WARN result and do not block.

Great Expectations is imported by the first check that runs, not with the definitions:
the Dagster code server, which loads the definitions and runs the sensors but no
check, never needs it.
"""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from orchestration.assets.dbt import dbt_features, dbt_marts
from orchestration.resources import WarehouseResource


def _metadata(outcome) -> dict:
    return {
        "rows": outcome.rows,
        "rows_validated": outcome.rows_validated,
        "row_scope": outcome.row_scope,
        "rows_in_scope": outcome.scope_rows,
        "sampled": outcome.sampled,
        "expectations_evaluated": len(outcome.expectations),
        "expectations_failed": len(outcome.failed),
        "failed": dg.MetadataValue.json(
            [
                {
                    "expectation": e.expectation,
                    "column": e.column,
                    "severity": e.severity,
                    "unexpected_count": e.unexpected_count,
                    "examples": e.examples,
                }
                for e in outcome.failed
            ]
        ),
        "bad_rows_sample": dg.MetadataValue.json(outcome.bad_rows_sample),
        "seconds": round(outcome.seconds, 3),
        **(
            {"data_docs": dg.MetadataValue.url(f"file://{outcome.docs_index}")}
            if outcome.docs_index
            else {}
        ),
    }


def gx_check(asset_key: dg.AssetKey, suite: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name=f"gx_{suite}",
        blocking=True,
        description=f"Great Expectations suite `{suite}` (data_quality/suites.py); "
        "critical expectations block everything downstream.",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        from data_quality import SUITES, validate

        stage = SUITES[suite](**_run_values(suite, warehouse))
        with warehouse.connect(read_only=True) as con:
            outcome = validate(con, stage, warehouse.root, warehouse.data_docs_dir)
        return dg.AssetCheckResult(
            passed=not outcome.failed,
            severity=dg.AssetCheckSeverity.ERROR
            if not outcome.passed
            else dg.AssetCheckSeverity.WARN,
            description=outcome.summary(),
            metadata=_metadata(outcome),
        )

    return _check


def _run_values(suite: str, warehouse: WarehouseResource) -> dict:
    """What a suite checks against the run's configuration: the scores' horizons."""
    if suite != "customer_scores":
        return {}
    run = warehouse.run_context()
    return {
        "horizons": {
            "churn_horizon_days": run.churn_horizon_days,
            "clv_horizon_days": run.clv_horizon_days,
        }
    }


def _model(assets, name: str) -> dg.AssetKey:
    return get_asset_key_for_model([assets], name)


GX_CHECKS = [
    gx_check(dg.AssetKey("raw_transactions"), "raw_transactions"),
    gx_check(dg.AssetKey("raw_customers"), "raw_customers"),
    gx_check(_model(dbt_features, "int_orders"), "int_orders"),
    gx_check(_model(dbt_features, "customer_features"), "customer_features"),
    gx_check(dg.AssetKey("customer_clusters"), "customer_clusters"),
    gx_check(dg.AssetKey("customer_scores"), "customer_scores"),
    gx_check(_model(dbt_marts, "dim_customer"), "marts"),
]
