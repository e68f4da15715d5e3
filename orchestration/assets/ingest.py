"""Ingest: the configured sources into DuckDB ``raw.*``, in full or incrementally."""

from typing import Literal

import dagster as dg

from orchestration.assets.retry import TRANSIENT_RETRY, retry_only_if
from orchestration.demo import generate
from orchestration.ingest.database.high_water import loaded_mark
from orchestration.ingest.database.incremental import ingest_new_rows
from orchestration.ingest.load import ingest, ingest_incremental
from orchestration.io.transient import is_transient_database_error
from orchestration.resources import DEMO_CUSTOMERS, DEMO_SEED, WarehouseResource

RAW_KEYS = ("raw_transactions", "raw_customers", "raw_events")


class IngestConfig(dg.Config):
    """``full`` (default) replaces ``raw.*`` with every configured file and every inbox file;
    ``incremental`` appends new transactions: the inbox ``files`` (names in the inbox; none =
    every inbox file not loaded yet), skipping content loaded before, or for a database
    table with ``incremental:`` its rows above the loaded high-water mark up to
    ``mark_through`` (none = the table's largest value now); ``mark_after`` is the mark the
    sensor saw. Marks are ``kind:value``, e.g. ``int:1042``."""

    mode: Literal["full", "incremental"] = "full"
    files: list[str] = []
    mark_after: str | None = None
    mark_through: str | None = None


def ingest_run_config(
    mode: str,
    files: list[str] | None = None,
    mark_after: str | None = None,
    mark_through: str | None = None,
) -> dict:
    """Run config selecting the ingest mode (and inbox files, or database range) of a job
    containing the ingest."""
    config: dict = {"mode": mode, "files": list(files or [])}
    if mark_through is not None:
        config |= {"mark_after": mark_after, "mark_through": mark_through}
    return {"ops": {"ingest_sources": {"config": config}}}


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
    # A database that refuses or drops the connection is tried again (10 s, then 20 s);
    # a wrong password, a missing table or a bad file fails at once (assets/retry.py).
    retry_policy=TRANSIENT_RETRY,
)
def ingest_sources(
    context: dg.AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource
):
    with retry_only_if(is_transient_database_error):
        result, totals, mark = _ingest(context, config, warehouse)
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
                # What database_sensor continues from (orchestration/sensors.py).
                **({"high_water_mark": mark} if source == "transactions" and mark else {}),
                "dagster/row_count": totals[key],
            },
        )


def _ingest(context: dg.AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource):
    """The load itself: (IngestResult, rows per raw table, high-water mark metadata)."""
    if not warehouse.config_path and not (warehouse.demo_data_dir / "transactions.csv").exists():
        context.log.info(f"No demo data yet: generating {DEMO_CUSTOMERS:,} customers")
        generate(warehouse.demo_data_dir, customers=DEMO_CUSTOMERS, seed=DEMO_SEED)
    run = warehouse.run_context()
    project, as_of = run.config, run.as_of_date
    incremental = project.transactions.incremental
    if (config.files or config.mark_through) and config.mode != "incremental":
        raise ValueError("ingest_sources: `files` and marks only apply to mode incremental")
    if config.files if incremental is not None else config.mark_through:
        raise ValueError(
            "ingest_sources: `files` are for an inbox, `mark_*` for a database table with "
            "`incremental:`"
        )
    inbox = project.inbox_dir(warehouse.data_root)
    if not warehouse.config_path and inbox is not None:
        inbox.mkdir(parents=True, exist_ok=True)  # the demo's inbox, ready for files
    log = context.log.info
    with warehouse.connect() as con:
        if config.mode == "full":
            result = ingest(con, project, context.run_id, warehouse.data_root, log, as_of=as_of)
        elif incremental is not None:
            result = ingest_new_rows(
                con, project, context.run_id, config.mark_after, config.mark_through, log,
                as_of=as_of,
            )  # fmt: skip
        else:
            result = ingest_incremental(
                con, project, context.run_id, config.files, warehouse.data_root, log, as_of=as_of
            )
        totals = {
            key: con.execute(f"select count(*) from raw.{key.removeprefix('raw_')}").fetchone()[0]
            for key in RAW_KEYS
        }
        mark = None
        if incremental is not None:
            through = loaded_mark(con, incremental.column)
            mark = dg.MetadataValue.json({"column": incremental.column, "through": through})
    return result, totals, mark
