"""Publish the marts for Power BI (Parquet + manifest), atomically."""

import dagster as dg

from orchestration.assets.dbt import dbt_marts
from orchestration.assets.retry import TRANSIENT_RETRY, retry_only_if
from orchestration.io.transient import is_transient_write_error
from orchestration.publish.export import publish_marts
from orchestration.resources import WarehouseResource


@dg.asset(
    key="powerbi_export",
    deps=list(dbt_marts.keys),
    group_name="exports",
    kinds={"parquet"},
    description="exports/powerbi/: one Parquet file per mart, marts.duckdb (the same tables "
    "for the DuckDB ODBC driver), optional CSV, manifest.json — written as a new version, "
    "then swapped into the folder one rename per file, manifest last; the last versions "
    "are kept.",
    # The export folder is often a network share: a failed write is tried again (10 s, then
    # 20 s; a half-written version is never published); no permission or space fails at once.
    retry_policy=TRANSIENT_RETRY,
)
def powerbi_export(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    with retry_only_if(is_transient_write_error), warehouse.connect(read_only=True) as con:
        # The as-of date the features were computed for (the dbt default when not configured).
        (as_of,) = con.execute(
            "select cast(max(as_of_date) as varchar) from marts.dim_customer"
        ).fetchone()
        cfg = warehouse.project_config().export
        result = publish_marts(
            con,
            warehouse.exports_dir,
            context.run_id,
            as_of,
            keep=cfg.keep_versions,
            csv=cfg.csv,
            access=cfg.access,
            workdir=warehouse.root,
        )
    tables = {t["name"]: t["rows"] for t in result.manifest["tables"]}
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(result.published)),
            "version": result.version_dir.name,
            "tables": dg.MetadataValue.json(tables),
        }
    )
