"""Sensors: ``inbox_sensor`` turns new files in the transactions inbox into incremental runs.

Exactly once, in three layers: the cursor (kept by Dagster) remembers the files already
requested; the run key is derived from the batch of (name, content hash), so a repeated
request is dropped by Dagster; and the ingest skips content already in ``raw.load_log``,
so a retried run loads nothing twice. The file logic is in ``orchestration/io/inbox.py``.
"""

from __future__ import annotations

import dagster as dg

from orchestration.assets.ingest import ingest_run_config
from orchestration.io.inbox import list_inbox, new_files
from orchestration.resources import WarehouseResource


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
        config = warehouse.project_config()
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
