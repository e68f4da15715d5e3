"""ML assets: thin wrappers that read features, call ``ml/`` and write ``ml.*``."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from ml.clustering import segment_customers
from orchestration.assets.dbt import dbt_features
from orchestration.resources import WarehouseResource


@dg.asset(
    key="customer_clusters",
    deps=[get_asset_key_for_model([dbt_features], "customer_features")],
    group_name="ml",
    kinds={"scikitlearn", "duckdb"},
    description="ml.customer_clusters: one row per customer with a K-Means segment "
    "(k chosen by silhouette on a sample) and a readable label.",
)
def customer_clusters(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    with warehouse.connect(read_only=True) as con:
        features = con.sql("select * from features.customer_features order by customer_id").df()
    context.log.info(f"Clustering {len(features):,} customers")
    assignments, model, profile = segment_customers(features)
    with warehouse.connect() as con:
        con.execute("create schema if not exists ml")
        con.register("assignments", assignments)
        con.execute(
            "create or replace table ml.customer_clusters as "
            "select cast(customer_id as varchar) as customer_id, cast(cluster_id as integer) "
            "as cluster_id, cast(cluster_label as varchar) as cluster_label from assignments"
        )
        con.unregister("assignments")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(assignments),
            "k": int(model.n_clusters_),
            "k_scores": dg.MetadataValue.md(model.k_scores_.to_markdown(index=False))
            if hasattr(model, "k_scores_")
            else "",
            "profile": dg.MetadataValue.md(profile.to_markdown(index=False)),
        }
    )
