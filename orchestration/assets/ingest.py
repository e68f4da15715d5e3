"""Ingest: the configured sources into DuckDB ``raw.*``, in full or incrementally."""

from typing import Literal

import dagster as dg

from orchestration.io.generate import generate
from orchestration.io.ingest import ingest, ingest_incremental
from orchestration.resources import DEMO_CUSTOMERS, DEMO_SEED, WarehouseResource

RAW_KEYS = ("raw_transactions", "raw_customers", "raw_events")


class IngestConfig(dg.Config):
    """``full`` (default) replaces ``raw.*`` with every configured file and every inbox file;
    ``incremental`` appends the inbox ``files`` (names in the inbox; none = every inbox file
    not loaded yet) to ``raw.transactions``, skipping content loaded before."""

    mode: Literal["full", "incremental"] = "full"
    files: list[str] = []


def ingest_run_config(mode: str, files: list[str] | None = None) -> dict:
    """Run config selecting the ingest mode (and inbox files) of a job containing the ingest."""
    return {"ops": {"ingest_sources": {"config": {"mode": mode, "files": list(files or [])}}}}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            group_name="ingest",
            kinds={"duckdb", "python"},
            description=f"raw.{key.removeprefix('raw_')}: accepted input rows in the canonical "
            "columns; rejected rows go to raw.quarantine_* with a reason.",
        )
        for key in RAW_KEYS
    ],
    name="ingest_sources",
)
def ingest_sources(
    context: dg.AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource
):
    if not warehouse.config_path and not (warehouse.demo_data_dir / "transactions.csv").exists():
        context.log.info(f"No demo data yet: generating {DEMO_CUSTOMERS:,} customers")
        generate(warehouse.demo_data_dir, customers=DEMO_CUSTOMERS, seed=DEMO_SEED)
    if config.files and config.mode != "incremental":
        raise ValueError("ingest_sources: `files` only apply to mode incremental")
    project = warehouse.project_config()
    inbox = project.inbox_dir(warehouse.data_root)
    if not warehouse.config_path and inbox is not None:
        inbox.mkdir(parents=True, exist_ok=True)  # the demo's inbox, ready for files
    with warehouse.connect() as con:
        if config.mode == "incremental":
            result = ingest_incremental(
                con, project, context.run_id, config.files, warehouse.data_root, context.log.info
            )
        else:
            result = ingest(con, project, context.run_id, warehouse.data_root, context.log.info)
        totals = {
            key: con.execute(f"select count(*) from raw.{key.removeprefix('raw_')}").fetchone()[0]
            for key in RAW_KEYS
        }
    for key in RAW_KEYS:
        source = key.removeprefix("raw_")
        read, loaded, rejected = result.totals(source)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "mode": result.mode,
                "rows_read": read,
                "rows_loaded": loaded,
                "rows_quarantined": rejected,
                "files": dg.MetadataValue.json(
                    [f.__dict__ for f in result.files if f.source == source]
                ),
                **(
                    {"skipped_files": dg.MetadataValue.json(result.skipped)}
                    if source == "transactions" and result.skipped
                    else {}
                ),
                "dagster/row_count": totals[key],
            },
        )
