"""Run the dbt project (dbt_project/) in-process from tests.

dbt runs with its target and log paths in the test's temporary directory, so
parallel runs do not collide, and through ``invoke_dbt``, which frees the warehouse
file after every run so the test can open it itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from orchestration.cutoffs import cutoff_schema_suffix
from orchestration.dbt import invoke_dbt

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"


def run_dbt(
    tmp: Path,
    *args: str,
    variables: dict | None = None,
    profiles_dir: Path = PROJECT_DIR,
) -> None:
    """Run dbt in-process against PROJECT_DIR; fail the test with the failing nodes' messages."""
    cli_args = [
        *args,
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(profiles_dir),
        "--target-path", str(tmp / "target"),
        "--log-path", str(tmp / "logs"),
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
        "--no-use-colors",
        "--quiet",
    ]  # fmt: skip
    if variables is not None:
        cli_args += ["--vars", json.dumps(variables)]
    res = invoke_dbt(cli_args)
    if not res.success:
        failures = [
            f"{r.node.unique_id}: {r.status} {r.message}"
            for r in getattr(res.result, "results", None) or []
            if str(r.status) not in ("success", "pass")
        ]
        pytest.fail(f"dbt {' '.join(args)} failed: {res.error}\n" + "\n".join(failures))


def create_ml_stand_ins(con, clusters_sql: str) -> None:
    """Stand-ins for the Python ML step's tables, so the dbt tests need no ML.

    ``clusters_sql`` selects ``customer_id, cluster_id, cluster_label``; the rest
    of ml.customer_clusters and the whole ml.customer_scores are derived
    deterministically from features.customer_features (the same values every run).
    The evidence tables get the fixed rows of ``EVIDENCE_STAND_IN``.
    """
    con.execute("create schema if not exists ml")
    con.execute(
        "create or replace table ml.customer_clusters as select customer_id, "
        "cast(cluster_id as integer) as cluster_id, cluster_label, false as is_noise, "
        "'test-model' as model_version, timestamp '2024-01-01 00:00:00' as scored_at "
        f"from ({clusters_sql})"
    )
    con.execute(
        """
        create or replace table ml.customer_scores as
        select
            customer_id,
            1.0 / (1 + recency_days / 30.0) as p_alive,
            '' as p_alive_note,
            recency_days / (recency_days + 60.0) as churn_probability,
            case when recency_days / (recency_days + 60.0) >= 0.6 then 'high'
                 when recency_days / (recency_days + 60.0) < 0.3 then 'low'
                 else 'medium' end as churn_risk_band,
            frequency / 4.0 as expected_purchases_churn_horizon,
            frequency as expected_purchases_clv_horizon,
            greatest(monetary_avg, 1.0) as expected_avg_spend,
            greatest(monetary_avg, 1.0) * frequency as clv,
            greatest(monetary_avg, 1.0) * frequency * recency_days / (recency_days + 60.0)
                as revenue_at_risk,
            90 as churn_horizon_days,
            365 as clv_horizon_days,
            as_of_date,
            timestamp '2024-01-01 00:00:00' as scored_at
        from features.customer_features
        """
    )
    for table, rows in EVIDENCE_STAND_IN.items():
        values = ", ".join(
            "({})".format(", ".join("null" if v is None else repr(v) for v in row)) for row in rows
        )
        con.execute(
            f"create or replace table ml.{table} as select model_family, candidate, role, "
            "metric, cast(value as double) as value, higher_is_better, "
            "cast(cutoff_date as date) as cutoff_date, cast(horizon_days as integer) as "
            "horizon_days, cast(customers as bigint) as customers, note, 'test-run' as run_id, "
            "timestamp '2024-01-01 00:00:00' as evaluated_at "
            f"from (values {values}) as t(model_family, candidate, role, metric, value, "
            "higher_is_better, cutoff_date, horizon_days, customers, note)"
        )


#: Rows of ml.segmentation_evidence / ml.value_evidence (EVIDENCE_COLUMNS, no run columns).
EVIDENCE_STAND_IN = {
    "segmentation_evidence": [
        ("segmentation", "kmeans", "production", "silhouette", 0.5, True, None, None, 4, "x"),
        ("segmentation", "ward", "candidate", "silhouette", 0.4, True, None, None, 4, "x"),
    ],
    "value_evidence": [
        ("churn", "churn_model", "production", "roc_auc", 0.8, True, "2024-01-01", 90, 4, ""),
        ("churn", "p_alive_baseline", "baseline", "roc_auc", 0.7, True, "2024-01-01", 90, 4, ""),
        ("churn", "p_no_purchase_baseline", "baseline", "roc_auc", 0.75, True, "2024-01-01", 90,
         4, ""),
        ("churn", "churn_model", "production", "brier", 0.2, False, "2024-01-01", 90, 4, ""),
        ("churn", "p_alive_baseline", "baseline", "brier", 0.15, False, "2024-01-01", 90, 4, ""),
        ("churn", "p_no_purchase_baseline", "baseline", "brier", 0.25, False, "2024-01-01", 90,
         4, ""),
        ("clv", "(not evaluated)", "production", "not_evaluated", None, True, None, 90, 0,
         "not judged out of time yet"),
    ],
}  # fmt: skip


def drop_cutoff_schemas(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    """Drop the schemas of cut-off build ``name``; returns their names.

    A schema is one of them when it is ``<s>_<name>`` for another schema ``<s>`` of the
    database (``features_<name>`` beside ``features``), so only the suffixed copies go.
    """
    suffix = cutoff_schema_suffix(name)
    schemas = {
        row[0]
        for row in con.execute(
            "select schema_name from information_schema.schemata"
            " where catalog_name = current_database()"
        ).fetchall()
    }
    doomed = sorted(s + suffix for s in schemas if s + suffix in schemas)
    for schema in doomed:
        con.execute(f'drop schema "{schema}" cascade')
    return doomed
