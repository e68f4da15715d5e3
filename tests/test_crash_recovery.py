"""A pipeline killed mid-run (SIGKILL) leaves a readable export and the next run just works."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from tests.pipeline_utils import copy_workdir, run, start_and_kill


def _assert_complete_export(workdir: Path) -> str:
    published = workdir / "exports" / "powerbi"
    manifest = json.loads((published / "manifest.json").read_text())
    for entry in manifest["tables"]:
        assert pq.read_table(published / entry["file"]).num_rows == entry["rows"]
    return manifest["run_id"]


KILLS = [
    ("▶ dbt features", 3.0),  # inside the dbt subprocess
    ("▶ segmentation refit", 1.0),  # inside the Python ML step
]


def test_sigkill_mid_run_then_rerun_succeeds(published_demo, tmp_path):
    """Killed twice in a row (in dbt, then in the ML step); one plain rerun recovers."""
    workdir = tmp_path / "wd"
    copy_workdir(published_demo, workdir)
    first = _assert_complete_export(workdir)

    for stage, delay in KILLS:
        start_and_kill(workdir, stage, delay)
        # Readers see a complete export: the old one (or the new one, if the swap happened).
        _assert_complete_export(workdir)

    run(workdir)  # no manual cleanup
    assert _assert_complete_export(workdir) != first
    assert not list((workdir / "exports" / "versions").glob(".tmp-*"))
