"""The Dagster code location: every asset, check, job, schedule and resource.

``dagster dev -w workspace.yaml`` loads ``defs`` from here (settings from the
environment, see ``orchestration/settings.py``); ``custseg run`` builds its own
with :func:`build_definitions` and the settings given on the command line.
Importing this module reads ``dbt_project/target/manifest.json`` and nothing
else: no dbt run, no database.
"""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.assets.checks import GX_CHECKS
from orchestration.assets.dbt import dbt_features, dbt_marts
from orchestration.assets.export import powerbi_export
from orchestration.assets.ingest import ingest_sources
from orchestration.assets.scores import churn_training_features, customer_scores
from orchestration.assets.segmentation import customer_clusters, segmentation_model
from orchestration.dbt import dbt_executable, dbt_project
from orchestration.resources import WarehouseResource
from orchestration.settings import Settings

ALL_ASSETS = [
    ingest_sources,
    dbt_features,
    segmentation_model,
    customer_clusters,
    churn_training_features,
    customer_scores,
    dbt_marts,
    powerbi_export,
]

REFIT = dg.AssetSelection.assets("segmentation_model")

full_pipeline = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description="Everything: ingest -> dbt features -> refit segmentation (choose among the "
    "candidates) -> assign segments; CLV and churn models on earlier cut-offs -> scores -> "
    "dbt marts -> Power BI export.",
)

scoring_pipeline = dg.define_asset_job(
    "scoring_pipeline",
    selection=dg.AssetSelection.all() - REFIT,
    description="Ingest -> dbt features -> assign customers to the SAVED segmentation model "
    "(no refit) -> dbt marts -> Power BI export. Needs a model from `refit_segmentation` or "
    "`full_pipeline`.",
)

refit_segmentation = dg.define_asset_job(
    "refit_segmentation",
    selection=REFIT.downstream(),
    description="Refit: re-choose and refit the segmentation on the current features, then "
    "re-score customers, rebuild the marts and publish.",
)

JOBS = [full_pipeline, scoring_pipeline, refit_segmentation]

daily_schedule = dg.ScheduleDefinition(
    name="daily_full_pipeline",
    job=full_pipeline,
    cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Runs the whole pipeline every day at 03:00. Off until turned on in the UI.",
)


def build_definitions(settings: Settings, loggers: dict | None = None) -> dg.Definitions:
    s = settings.resolved()
    return dg.Definitions(
        assets=ALL_ASSETS,
        asset_checks=GX_CHECKS,
        jobs=JOBS,
        schedules=[daily_schedule],
        resources={
            "warehouse": WarehouseResource(
                workdir=s.workdir,
                config_path=s.config_path,
                data_root=s.data_root,
                as_of_date=s.as_of_date,
            ),
            "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
        },
        # DuckDB takes one writer at a time: run the steps one after another in one process.
        executor=dg.in_process_executor,
        loggers=loggers,
    )


dbt_project.prepare_if_dev()
defs = build_definitions(Settings.from_env())
