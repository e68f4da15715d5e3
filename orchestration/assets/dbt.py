"""dbt models as Dagster assets: features before the ML step, marts after it."""

import json
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration import dbt_build
from orchestration.dbt import QUIET_FILE_ARGS, dbt_project
from orchestration.dbt_build import is_whole_step
from orchestration.ingest.delivery import check_delivery
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


INGEST_NODE = "ingest_sources"
PRODUCTION_ARGS = ("--exclude-resource-type", "unit_test", *QUIET_FILE_ARGS)


def full_refresh(run_config: Mapping[str, Any], runs_ingest: bool) -> bool:
    """Whether the features build starts over (``dbt build --full-refresh``).

    Yes when this run's ingest replaced ``raw.*`` (its mode is ``full``, the default):
    the incremental transaction models must not keep rows of the old load. No after an
    incremental ingest (they read only the new lines), and no when the run has no ingest
    step: they then find out from ``raw.load_log`` whether ``raw.*`` was replaced since
    they were built, and rebuild if so (dbt_project/macros/incremental.sql).
    """
    if not runs_ingest:
        return False
    ops = run_config.get("ops") or {}
    config = (ops.get(INGEST_NODE) or {}).get("config") or {}
    return config.get("mode", "full") != "incremental"


def _build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    name: str,
    whole: dg.AssetsDefinition,
    refresh: bool = False,
    select: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
):
    """``dbt build`` of this step's models: ``select`` / ``exclude`` when the step runs whole;
    for a subset dagster-dbt derives the selection from the assets (and ``exclude``)."""
    target = warehouse.root / "dbt" / name
    # Unit tests check the SQL logic on fixed inputs, not the data: they run in the test
    # suite (tests/dbt), not on every materialisation (as dbt recommends for production).
    # dbt.log under the target path (QUIET_FILE_ARGS).
    dbt_vars = warehouse.run_context().dbt_vars()
    args = [*PRODUCTION_ARGS, *(["--full-refresh"] if refresh else [])]
    excludes = [a for x in exclude for a in ("--exclude", x)]
    if is_whole_step(context, whole):
        selection = [*select, *excludes]
    else:
        selection = dbt_build.subset_selection(context, TRANSLATOR, exclude)
    if selection is None:  # a selection too large for the command line: dagster-dbt's way
        cli_args = ["build", "--vars", json.dumps(dbt_vars), *args, *excludes]
        yield from dbt.cli(cli_args, context=context, target_path=target).stream()
        return
    # dbt in this process, on the run's parsed manifest (orchestration/dbt_build.py).
    yield from dbt_build.build(
        context, workdir=warehouse.root, target=target, dbt_vars=dbt_vars,
        args=[*args, *selection], translator=TRANSLATOR,
    )  # fmt: skip


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
    # Too few customers, or (in a job without the ingest) an as-of date outside the data:
    # stop here, saying why.
    with warehouse.connect(read_only=True) as con:
        check_delivery(con, warehouse.run_context().as_of_date)
    refresh = full_refresh(context.run_config, context.job_def.has_node_named(INGEST_NODE))
    if refresh:
        context.log.info("raw.* was loaded in full: dbt build --full-refresh")
    # When the run selects part of the features (incremental_scoring), dagster-dbt names the
    # models in --select and dbt adds every test with one selected parent, also the post-ML
    # tests comparing features with the marts, which must wait for the new marts.
    yield from _build(
        context, dbt, warehouse, "features", dbt_features, refresh, exclude=(POST_ML,)
    )


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=POST_ML,
    name="dbt_marts",
    dagster_dbt_translator=TRANSLATOR,
)
def dbt_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    """Marts for Power BI, built after the ML step (which they read as a dbt source).

    Never a full refresh: fct_customer_snapshot keeps the earlier snapshots."""
    yield from _build(context, dbt, warehouse, "marts", dbt_marts, select=("--select", POST_ML))
