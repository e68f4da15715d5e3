"""A pipeline killed mid-run (SIGKILL) leaves a readable export and the next run just works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import REPO
from tests.pipeline_utils import copy_workdir, run


def _assert_complete_export(workdir: Path) -> str:
    published = workdir / "exports" / "powerbi"
    manifest = json.loads((published / "manifest.json").read_text())
    for entry in manifest["tables"]:
        assert pq.read_table(published / entry["file"]).num_rows == entry["rows"]
    return manifest["run_id"]


def _start_and_kill(workdir: Path, when: str, delay: float) -> None:
    """Run `custseg run` and SIGKILL its whole process group once `when` is printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "run", "--workdir", str(workdir)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        seen.append(line)
        if when in line:
            time.sleep(delay)
            break
        if time.monotonic() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    assert any(when in s for s in seen), "".join(seen)


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
        _start_and_kill(workdir, stage, delay)
        # Readers see a complete export: the old one (or the new one, if the swap happened).
        _assert_complete_export(workdir)

    run(workdir)  # no manual cleanup
    assert _assert_complete_export(workdir) != first
    assert not list((workdir / "exports" / "versions").glob(".tmp-*"))
