"""The Dagster code location: every asset, check, job, schedule and resource.

``dagster dev -w workspace.yaml`` loads ``defs`` from here (settings from the
environment, see ``orchestration/settings.py``); ``custseg run`` builds its own
with :func:`build_definitions` and the settings given on the command line.
Importing this module reads ``dbt_project/target/manifest.json`` and nothing
else: no dbt run, no database.
"""

from __future__ import annotations

import dagster as dg

from orchestration.assets.checks import GX_CHECKS
from orchestration.assets.dbt import dbt_features, dbt_marts
from orchestration.assets.export import powerbi_export
from orchestration.assets.ingest import ingest_run_config, ingest_sources
from orchestration.assets.powerbi_refresh import (
    PowerBIServiceResource,
    powerbi_semantic_model_refresh,
)
from orchestration.assets.report import customer_report
from orchestration.assets.scores import (
    churn_training_features,
    customer_scores,
    p_alive_identified,
    value_models,
)
from orchestration.assets.segmentation import customer_clusters, segmentation_model
from orchestration.dbt import dbt_executable, dbt_project
from orchestration.dbt_resource import CustsegDbtCli
from orchestration.executor import overlapping_executor
from orchestration.resources import WarehouseResource
from orchestration.sensors import build_database_sensor, build_inbox_sensor
from orchestration.settings import PowerBIServiceSettings, Settings

_ASSETS = [
    ingest_sources,
    dbt_features,
    segmentation_model,
    customer_clusters,
    churn_training_features,
    value_models,
    customer_scores,
    dbt_marts,
    powerbi_export,
    customer_report,
]

# Who to ask about each stage, shown in the UI and searchable (owner:, tag:stage=).
OWNERS = {
    "ingest": "team:data-engineering",
    "staging": "team:data-engineering",
    "features": "team:data-engineering",
    "ml": "team:data-science",
    "marts": "team:analytics-engineering",
    "exports": "team:analytics",
}


def _owned(spec: dg.AssetSpec) -> dg.AssetSpec:
    stage = spec.group_name or "default"
    return spec.replace_attributes(
        owners=[OWNERS.get(stage, "team:data-engineering")],
        tags={**spec.tags, "stage": stage},
    )


ALL_ASSETS = dg.map_asset_specs(_owned, _ASSETS)

# The refit: re-choose and refit the segmentation, rebuild the churn cut-offs and refit
# the value and churn models. Everything else only applies the saved models.
REFIT = dg.AssetSelection.assets(segmentation_model, churn_training_features, value_models)
# What an append to raw.transactions can change: raw_transactions and everything after it.
# The rest (the customers and events tables with their checks and staging models, and the
# dbt seeds, reference data that changes with the project) stays as the last full or daily
# run loaded and tested it. The ingest step itself runs whole (one op for all raw tables).
APPENDED = (
    dg.AssetSelection.assets(ingest_sources)
    | dg.AssetSelection.assets("raw_transactions").downstream()
)
NOT_APPENDED = dg.AssetSelection.checks_for_assets("raw_customers", "raw_events")

full_pipeline = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description="Everything: ingest -> dbt features -> refit the segmentation (choose among "
    "the candidates) and the value and churn models (on earlier cut-offs) -> score customers "
    "-> dbt marts -> Power BI export -> report.",
)

scoring_pipeline = dg.define_asset_job(
    "scoring_pipeline",
    selection=dg.AssetSelection.all() - REFIT,
    description="The daily job: ingest -> dbt features -> assign segments and scores with the "
    "SAVED models (no refit) -> dbt marts -> Power BI export -> report. Needs models from "
    "`refit_models` or `full_pipeline`.",
)

refit_models = dg.define_asset_job(
    "refit_models",
    selection=REFIT.downstream(),
    description="The weekly job: re-choose and refit the segmentation, refit the value (BG/NBD, "
    "Gamma-Gamma) and churn models, then re-score customers, rebuild the marts and publish.",
)

incremental_scoring = dg.define_asset_job(
    "incremental_scoring",
    selection=APPENDED - NOT_APPENDED - REFIT,
    config=ingest_run_config("incremental"),
    description="Run by `inbox_sensor` or `database_sensor`: APPEND the new inbox files, or the "
    "database rows above the high-water mark, to raw.transactions (each file or row once; what "
    "was loaded before is skipped), then as `scoring_pipeline`: dbt features -> "
    "segments and scores with the SAVED models -> dbt marts -> Power BI export -> report. "
    "What the append cannot change (customers, events, the dbt seeds and their checks) is "
    "left as the last full or daily run built it. "
    "Launched by hand it loads every inbox file (or row) not loaded yet.",
)

JOBS = [full_pipeline, scoring_pipeline, refit_models, incremental_scoring]

daily_scoring = dg.ScheduleDefinition(
    name="daily_scoring",
    job=scoring_pipeline,
    cron_schedule="0 3 * * *",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Every day at 03:00: load the data, re-score customers with the saved models, "
    "rebuild the marts, publish the export and the report. Off until turned on in the UI.",
)

weekly_refit = dg.ScheduleDefinition(
    name="weekly_refit",
    job=refit_models,
    cron_schedule="0 2 * * 0",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Sundays at 02:00: refit the segmentation and the value and churn models, then "
    "everything downstream. Off until turned on in the UI.",
)

SCHEDULES = [daily_scoring, weekly_refit]


def build_definitions(settings: Settings, loggers: dict | None = None) -> dg.Definitions:
    warehouse = WarehouseResource.from_settings(settings.resolved())
    resources = {
        "warehouse": warehouse,
        "dbt": CustsegDbtCli(project_dir=dbt_project, dbt_executable=dbt_executable()),
    }
    assets = ALL_ASSETS
    # The Power BI service refresh exists only where its service principal is configured.
    powerbi = PowerBIServiceSettings.from_env()
    if powerbi is not None:
        assets = [*ALL_ASSETS, *dg.map_asset_specs(_owned, [powerbi_semantic_model_refresh])]
        resources["powerbi_service"] = PowerBIServiceResource.from_settings(powerbi)
    return dg.Definitions(
        assets=assets,
        asset_checks=[*GX_CHECKS, p_alive_identified],
        jobs=JOBS,
        schedules=SCHEDULES,
        sensors=[
            build_inbox_sensor(warehouse, incremental_scoring),
            build_database_sensor(warehouse, incremental_scoring),
        ],
        resources=resources,
        # One process (DuckDB takes one writer at a time); the model fits tagged
        # custseg/overlap may run two at a time (orchestration/executor.py).
        executor=overlapping_executor,
        loggers=loggers,
    )


dbt_project.prepare_if_dev()
defs = build_definitions(Settings.from_env())
