"""Small helpers shared by the ML asset modules."""

import dagster as dg
import pandas as pd
from dagster_dbt import get_asset_key_for_model

from orchestration.assets.dbt import dbt_features

FEATURES = get_asset_key_for_model([dbt_features], "customer_features")


def ml_table_spec(key: str, upstream: str, description: str) -> dg.AssetSpec:
    """An ``ml.<key>`` table written from the customer features and the ``upstream`` asset."""
    return dg.AssetSpec(
        key,
        deps=[FEATURES, upstream],
        group_name="ml",
        kinds={"scikitlearn", "duckdb"},
        description=f"ml.{key}: {description}",
    )


def read_features(warehouse) -> pd.DataFrame:
    """features.customer_features, one row per current customer, ordered by customer id."""
    with warehouse.connect(read_only=True) as con:
        return con.execute("select * from features.customer_features order by customer_id").df()


def markdown(frame: pd.DataFrame, digits: int = 4, index: bool = False) -> dg.MetadataValue:
    """A frame as a Markdown table for Dagster metadata (numbers rounded, timestamps as is)."""
    numeric = frame.select_dtypes("number").columns
    shown = frame.copy()
    shown[numeric] = shown[numeric].round(digits)
    return dg.MetadataValue.md(shown.to_markdown(index=index))


EVIDENCE_TABLE = "ml.model_evaluation"
EVIDENCE_CASTS = {
    "value": "DOUBLE",
    "cutoff_date": "DATE",
    "horizon_days": "INTEGER",
    "customers": "BIGINT",
    "evaluated_at": "TIMESTAMP",
}


def evidence_with_others(con, rows: pd.DataFrame, run_id: str, evaluated_at) -> pd.DataFrame:
    """``ml.model_evaluation`` with the families in ``rows`` replaced by ``rows``.

    Each refit asset judges its own model families; the table keeps the latest
    evidence of every family, so the segmentation refit does not erase churn's rows.
    Pass the result to ``replace_tables`` with :data:`EVIDENCE_CASTS`.
    """
    from orchestration.io.tables import table_exists

    new = rows.assign(run_id=run_id, evaluated_at=evaluated_at)
    if not table_exists(con, EVIDENCE_TABLE):
        return new.reset_index(drop=True)
    old = con.execute(f"select * from {EVIDENCE_TABLE}").df()
    old = old[~old["model_family"].isin(set(rows["model_family"]))]
    return pd.concat([old[new.columns], new], ignore_index=True)
