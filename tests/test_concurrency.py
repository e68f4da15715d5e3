"""Two runs on one workdir: the second waits or fails clearly, and nothing is corrupted.

The lock itself here; two real pipeline runs at once in tests/test_webserver.py (a run
launched from the Dagster UI, and `custseg run` started while it runs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from orchestration.io.lock import LOCK_FILE, WorkdirBusyError, WorkdirLock
from tests.pipeline_utils import hold_workdir


def _holder(workdir: Path, seconds: float) -> subprocess.Popen:
    return hold_workdir(workdir, seconds, owner="run holder-1")


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


def test_a_lock_taken_on_one_thread_is_released_on_another(tmp_path):
    """Dagster may set the warehouse resource up and tear it down on different threads."""
    import threading

    first = WorkdirLock(tmp_path, owner="run 1")
    taker = threading.Thread(target=first.acquire)
    taker.start()
    taker.join()
    first.release()
    with WorkdirLock(tmp_path, owner="run 2", timeout=0.3, poll=0.1):
        info = json.loads((tmp_path / LOCK_FILE).read_text())
    assert info["owner"] == "run 2"
    assert (tmp_path / LOCK_FILE).read_text() == ""  # the last holder left no name behind
