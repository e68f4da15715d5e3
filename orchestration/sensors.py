"""Sensors: new transactions become incremental runs of ``incremental_scoring``.

``inbox_sensor`` watches the transactions inbox folder; ``database_sensor`` a database
table's high-water mark (``transactions.incremental``). Exactly once, in three layers:
the cursor (kept by Dagster) remembers what was already requested; the run key is
derived from what is requested (the batch of (name, content hash), or the source and
its range of marks), so a repeated request is dropped by Dagster; and the ingest
skips what ``raw.load_log`` shows loaded, so a retried run loads nothing twice. The
logic is in ``orchestration/ingest/inbox.py`` and ``orchestration/ingest/database/high_water.py``.
"""

from __future__ import annotations

import json

import dagster as dg

from orchestration.assets.ingest import ingest_run_config
from orchestration.ingest.inbox import list_inbox, new_files
from orchestration.resources import WarehouseResource
from orchestration.run_context import RunContext


def _config(warehouse: WarehouseResource):
    """The project config as it is now: a sensor outlives runs and config edits, so it
    reads the file on every look instead of keeping the resource's run context."""
    return RunContext.resolve(warehouse.settings()).config


def build_inbox_sensor(warehouse: WarehouseResource, job: dg.UnresolvedAssetJobDefinition):
    """The sensor for ``warehouse``'s project, requesting runs of ``job``.

    It only reads the config and lists the inbox folder: it opens no database and takes
    no lock, so it never waits for a running job.
    """

    @dg.sensor(
        name="inbox_sensor",
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Every 30 s: looks for new complete files in the transactions inbox "
        "(config `transactions.inbox`; demo: WORKDIR/demo_data/inbox/*.csv) and requests one "
        f"`{job.name}` run for the batch: append only those files to raw.transactions (each "
        "file once, even if asked twice), rebuild the features and re-score customers with the "
        "saved models. Files modified in the last seconds or named *.tmp / *.part wait for the "
        "next look. Off until turned on in the UI; a full refresh is still `full_pipeline`.",
    )
    def inbox_sensor(context: dg.SensorEvaluationContext):
        config = _config(warehouse)
        folder = config.inbox_dir(warehouse.data_root)
        if folder is None or config.transactions.inbox is None:
            return dg.SkipReason("the project config has no `transactions.inbox` folder")
        batch = new_files(list_inbox(folder, config.transactions.inbox), context.cursor)
        if not batch.files:
            return dg.SensorResult(skip_reason=f"no new files in {folder}", cursor=batch.cursor)
        names = [name for name, _ in batch.files]
        context.log.info(f"{len(names)} new inbox file(s): {', '.join(names)}")
        request = dg.RunRequest(
            run_key=batch.run_key,
            run_config=ingest_run_config("incremental", names),
            tags={"custseg/trigger": "inbox_sensor", "custseg/inbox_files": str(len(names))},
        )
        return dg.SensorResult(run_requests=[request], cursor=batch.cursor)

    return inbox_sensor


def build_database_sensor(warehouse: WarehouseResource, job: dg.UnresolvedAssetJobDefinition):
    """The high-water-mark sensor for ``warehouse``'s project, requesting runs of ``job``.

    Each look is one ``select max(column) ... where column > mark`` on the source database
    (with an index on the column, a lookup); it opens no DuckDB file and takes no lock.
    The mark it continues from is its cursor, or the one the latest materialization of
    ``raw_transactions`` recorded when that is newer (a full refresh moves it on).
    """

    @dg.sensor(
        name="database_sensor",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Every 60 s: asks the transactions table (config `transactions.database`, "
        "`table` and `incremental: {column: ...}`) for its largest value of the column and, "
        f"when it is above the loaded high-water mark, requests one `{job.name}` run that "
        "appends only the rows above the mark up to that value (each row once, even if asked "
        "twice or retried), then re-scores customers with the saved models. Off until turned "
        "on in the UI; a full refresh is still `full_pipeline`.",
    )
    def database_sensor(context: dg.SensorEvaluationContext):
        from orchestration.ingest.database.high_water import encode_mark, max_target, run_key, shown
        from orchestration.ingest.database.read import fetch_value, resolve

        cfg = _config(warehouse).transactions
        if cfg.database is None or cfg.incremental is None:
            return dg.SkipReason(
                "the transactions source is not a database table with `incremental: {column}`"
            )
        column = cfg.incremental.column
        state = _start(context, column)
        if state is None:
            return dg.SkipReason(
                f"no load has recorded a high-water mark for {column!r} yet: run a full load "
                "(full_pipeline or scoring_pipeline) first"
            )
        after = state["through"]
        target = resolve(cfg, "transactions")
        new = encode_mark(fetch_value(max_target(target, column, after)), target, column)
        since = f"{column} = {shown(after)}" if after else "its empty state"
        if new is None:
            return dg.SensorResult(
                skip_reason=f"nothing new in {target.name} after {since}",
                cursor=json.dumps(state),
            )
        context.log.info(f"{target.name}: new rows after {since}, up to {shown(new)}")
        request = dg.RunRequest(
            run_key=run_key(target.name, column, after, new),
            run_config=ingest_run_config("incremental", mark_after=after, mark_through=new),
            tags={"custseg/trigger": "database_sensor", "custseg/high_water_mark": new},
        )
        return dg.SensorResult(run_requests=[request], cursor=json.dumps({**state, "through": new}))

    return database_sensor


def _start(context: dg.SensorEvaluationContext, column: str) -> dict | None:
    """Where to continue: ``{"column", "through": mark, "event": storage id}`` from the
    cursor, or from the latest ``raw_transactions`` materialization when it is newer than
    what the cursor has seen; None when neither knows a mark for ``column``."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    if cursor.get("column") != column:
        cursor = {}
    records = context.instance.fetch_materializations(dg.AssetKey("raw_transactions"), limit=1)
    for record in records.records:
        meta = record.asset_materialization.metadata.get("high_water_mark")
        mark = meta.value if isinstance(meta, dg.JsonMetadataValue) else None
        if record.storage_id > cursor.get("event", -1) and mark and mark["column"] == column:
            return {"column": column, "through": mark["through"], "event": record.storage_id}
    return cursor or None
