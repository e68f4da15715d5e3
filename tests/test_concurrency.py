"""Two runs on one workdir: the second waits or fails clearly, and nothing is corrupted."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestration.cli import run_pipeline
from orchestration.io.lock import LOCK_FILE, WorkdirBusyError, WorkdirLock
from orchestration.settings import Settings
from tests.conftest import REPO
from tests.pipeline_utils import copy_workdir

HOLD = textwrap.dedent(
    """
    import sys, time
    from orchestration.io.lock import WorkdirLock
    with WorkdirLock(sys.argv[1], owner="run holder-1"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def _holder(workdir: Path, seconds: float) -> subprocess.Popen:
    """Another process that holds the workdir lock for ``seconds``."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(workdir), str(seconds)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_locker_fails_after_its_timeout_naming_the_holder(tmp_path):
    holder = _holder(tmp_path, 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(WorkdirBusyError, match=r"in use by run holder-1 \(pid \d+"):
            WorkdirLock(tmp_path, owner="run 2", timeout=1.0, poll=0.1).acquire()
        assert 1.0 <= time.monotonic() - t0 < 10
    finally:
        holder.kill()
        holder.wait()


def test_a_second_locker_waits_for_the_first_and_says_so(tmp_path):
    holder = _holder(tmp_path, 2)
    messages: list[str] = []
    t0 = time.monotonic()
    with WorkdirLock(tmp_path, owner="run 2", timeout=60, poll=0.1, log=messages.append):
        waited = time.monotonic() - t0
        info = json.loads((tmp_path / LOCK_FILE).read_text())
    holder.wait(timeout=30)
    assert 1.0 < waited < 30
    assert len(messages) == 1 and "run holder-1" in messages[0] and "waiting" in messages[0]
    assert info["owner"] == "run 2" and info["pid"] == os.getpid()


def test_a_killed_holder_releases_the_lock(tmp_path):
    holder = _holder(tmp_path, 60)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with WorkdirLock(tmp_path, owner="run 2", timeout=5, poll=0.1):
        pass


def test_one_process_cannot_take_the_lock_twice_at_once(tmp_path):
    """flock is per open file: a second run started in the same process waits as well."""
    with WorkdirLock(tmp_path, owner="run 1"), pytest.raises(WorkdirBusyError):
        WorkdirLock(tmp_path, owner="run 2", timeout=0.3, poll=0.1).acquire()


def _export_rows(workdir: Path) -> dict[str, int]:
    published = workdir / "exports" / "powerbi"
    manifest = json.loads((published / "manifest.json").read_text())
    rows = {}
    for entry in manifest["tables"]:
        assert pq.read_table(published / entry["file"]).num_rows == entry["rows"]
        rows[entry["name"]] = entry["rows"]
    return rows


def test_two_pipeline_runs_at_once_on_one_workdir(published_demo, tmp_path):
    """The first run proceeds; the second, started while it runs, fails naming it; no damage."""
    workdir = copy_workdir(published_demo, tmp_path / "wd")
    first = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "run", "--workdir", str(workdir),
         "--job", "scoring_pipeline"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    for line in first.stdout:
        lines.append(line)
        if line.startswith("▶ ingest"):
            break
    drain = threading.Thread(target=lambda: lines.extend(first.stdout), daemon=True)
    drain.start()

    out = io.StringIO()
    second = run_pipeline(
        Settings(workdir=str(workdir), lock_timeout=1.0), stream=out, job_name="scoring_pipeline"
    )
    assert first.wait(timeout=600) == 0, "".join(lines)
    drain.join(timeout=10)

    assert not second.success
    errors = " ".join(
        e.event_specific_data.error.to_string()
        for e in second.all_events
        if e.is_failure and getattr(e.event_specific_data, "error", None) is not None
    )
    assert "is in use by run " in errors and "waited" in errors, errors
    assert not any(e.is_step_success for e in second.all_events)

    # The first run's results are all there and readable.
    rows = _export_rows(workdir)
    assert rows["dim_customer"] > 0
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        (n,) = con.execute("select count(*) from marts.dim_customer").fetchone()
    assert n == rows["dim_customer"]
