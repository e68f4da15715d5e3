"""dbt models as Dagster assets: features before the ML step, marts after it."""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.dbt import dbt_project
from orchestration.resources import WarehouseResource

POST_ML = "tag:post_ml"


class CustsegTranslator(DagsterDbtTranslator):
    """Group dbt assets by layer (the folder under models/) so the UI shows the stages."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props.get("resource_type") == "seed":
            return "features"
        fqn = dbt_resource_props.get("fqn") or []
        layer = fqn[1] if len(fqn) > 2 else None
        if layer == "staging" and len(fqn) > 3 and fqn[2] == "ml":
            return "marts"
        return {"intermediate": "features"}.get(layer, layer)


TRANSLATOR = CustsegTranslator()


def _build(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource, name: str
):
    target = warehouse.root / "dbt" / name
    args = ["build", "--vars", json.dumps(warehouse.dbt_vars())]
    yield from dbt.cli(args, context=context, target_path=target).stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=POST_ML,
    name="dbt_features",
    dagster_dbt_translator=TRANSLATOR,
)
def dbt_features(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Staging, intermediate and feature models (and their tests) up to customer_features."""
    yield from _build(context, dbt, warehouse, "features")


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=POST_ML,
    name="dbt_marts",
    dagster_dbt_translator=TRANSLATOR,
)
def dbt_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Marts for Power BI, built after the ML step (which they read as a dbt source)."""
    yield from _build(context, dbt, warehouse, "marts")
