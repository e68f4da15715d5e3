"""Ingest: the configured sources into DuckDB ``raw.*``."""

import dagster as dg

from orchestration.io.generate import generate
from orchestration.io.ingest import ingest
from orchestration.resources import DEMO_CUSTOMERS, DEMO_SEED, WarehouseResource

RAW_KEYS = ("raw_transactions", "raw_customers", "raw_events")


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
def ingest_sources(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    if not warehouse.config_path and not (warehouse.demo_data_dir / "transactions.csv").exists():
        context.log.info(f"No demo data yet: generating {DEMO_CUSTOMERS:,} customers")
        generate(warehouse.demo_data_dir, customers=DEMO_CUSTOMERS, seed=DEMO_SEED)
    config = warehouse.project_config()
    with warehouse.connect() as con:
        result = ingest(con, config, context.run_id, warehouse.data_root, log=context.log.info)
    for key in RAW_KEYS:
        source = key.removeprefix("raw_")
        read, loaded, rejected = result.totals(source)
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={
                "rows_read": read,
                "rows_loaded": loaded,
                "rows_quarantined": rejected,
                "files": dg.MetadataValue.json(
                    [f.__dict__ for f in result.files if f.source == source]
                ),
                "dagster/row_count": loaded,
            },
        )
