"""Small helpers shared by the ML asset modules."""

import datetime as dt

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


def read_judge_frame(warehouse, name: str = "cutoff_eval") -> pd.DataFrame | None:
    """The features of cut-off ``name`` with their next-horizon outcomes (complete horizons
    only: ``churned``, ``spend_in_horizon``, ``purchase_days_in_horizon``); None if that
    cut-off was never built."""
    from orchestration.cutoffs import cutoff_schema_suffix
    from orchestration.io.tables import table_exists

    schema = f"features{cutoff_schema_suffix(name)}"
    with warehouse.connect(read_only=True) as con:
        if not table_exists(con, f"{schema}.customer_outcomes"):
            return None
        return con.execute(
            f"select f.*, o.churned, o.spend_in_horizon, o.purchase_days_in_horizon "
            f"from {schema}.customer_features f join {schema}.customer_outcomes o "
            "using (customer_id) where o.churned is not null order by f.customer_id"
        ).df()


def markdown(frame: pd.DataFrame, digits: int = 4, index: bool = False) -> dg.MetadataValue:
    """A frame as a Markdown table for Dagster metadata (numbers rounded, timestamps as is)."""
    numeric = frame.select_dtypes("number").columns
    shown = frame.copy()
    shown[numeric] = shown[numeric].round(digits)
    return dg.MetadataValue.md(shown.to_markdown(index=index))


#: Warehouse types of the evidence columns (ml.evaluation.EVIDENCE_COLUMNS plus run_id,
#: evaluated_at). Each refit asset writes its own evidence table (ml.segmentation_evidence,
#: ml.value_evidence); dbt's mart_model_evaluation puts them together.
EVIDENCE_CASTS = {
    "value": "DOUBLE",
    "cutoff_date": "DATE",
    "horizon_days": "INTEGER",
    "customers": "BIGINT",
    "evaluated_at": "TIMESTAMP",
}


def evidence_spec(key: str, deps: list, description: str) -> dg.AssetSpec:
    """An ``ml.<key>`` evidence table (EVIDENCE_COLUMNS + run_id, evaluated_at) of a refit."""
    return dg.AssetSpec(
        key,
        deps=deps,
        group_name="ml",
        kinds={"duckdb"},
        description=f"ml.{key}: {description} One row per (model_family, candidate, metric) "
        "(ml.evaluation.EVIDENCE_COLUMNS) plus run_id and evaluated_at; put together with the "
        "other evidence table by dbt's mart_model_evaluation.",
    )


def evidence_table(rows: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """Evidence rows as written to the warehouse: the run that wrote them and when."""
    at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return rows.assign(run_id=run_id, evaluated_at=at)


def evidence_markdown(rows: pd.DataFrame) -> dg.MetadataValue:
    """The evidence rows as a Markdown table for the asset's metadata (values rounded)."""
    shown = rows[["model_family", "candidate", "role", "metric", "value", "customers", "note"]]
    return markdown(shown) if len(shown) else dg.MetadataValue.md("(no evidence rows)")
