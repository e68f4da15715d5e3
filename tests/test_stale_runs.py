"""Runs whose process was killed are found and marked failed (orchestration/run_monitor.py).

Small jobs in subprocesses on a temporary instance; the whole story (a killed `custseg
run`, then a job launched from the Dagster UI) is in tests/test_webserver.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from orchestration.run_monitor import fail_dead_runs, process_alive
from tests.conftest import REPO

# A one-step job that signals (a file) once it runs, then waits to be killed.
HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import dagster as dg

    @dg.op
    def wait():
        Path(sys.argv[2]).write_text("running")
        time.sleep(600)

    @dg.job
    def held():
        wait()

    instance = dg.DagsterInstance.local_temp(tempdir=sys.argv[1])
    held.execute_in_process(instance=instance)
    """
)
LAUNCHER = {
    "run_launcher": {"module": "orchestration.run_monitor", "class": "ProcessCheckingRunLauncher"}
}


def _hold(home: Path, marker: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(home), str(marker)], cwd=REPO)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the held run never started"
        time.sleep(0.2)
    return proc


@pytest.fixture
def two_runs(tmp_path):
    """One run whose process was killed with SIGKILL, one whose process still runs."""
    home = tmp_path / "home"
    home.mkdir()
    killed = _hold(home, tmp_path / "killed")
    alive = _hold(home, tmp_path / "alive")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    instance = dg.DagsterInstance.local_temp(tempdir=str(home), overrides=LAUNCHER)
    runs = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
    assert len(runs) == 2
    try:
        yield instance, killed.pid
    finally:
        alive.kill()
        alive.wait()
        instance.dispose()


def _pid_of(instance, run) -> int:
    (record,) = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_START
    ).records
    return record.event_log_entry.dagster_event.pid


def test_run_of_a_sigkilled_process_is_marked_failed_and_a_live_one_left_alone(two_runs):
    from dagster._core.launcher import WorkerStatus

    instance, killed_pid = two_runs
    # Dagster's run monitoring (the daemon) asks the instance's run launcher; a private
    # interface of dagster, pinned here.
    launcher = instance.run_launcher
    assert launcher.supports_check_run_worker_health
    health = {
        _pid_of(instance, r): launcher.check_run_worker_health(r) for r in instance.get_runs()
    }
    assert health.pop(killed_pid).status == WorkerStatus.FAILED
    assert [h.status for h in health.values()] == [WorkerStatus.RUNNING]

    # The start-up check of `custseg run` and `make dev`.
    messages = fail_dead_runs(instance)
    assert len(messages) == 1
    assert f"by process {killed_pid}, which is no longer running" in messages[0]
    status = {_pid_of(instance, r): r.status for r in instance.get_runs()}
    assert status.pop(killed_pid) == dg.DagsterRunStatus.FAILURE
    assert list(status.values()) == [dg.DagsterRunStatus.STARTED]
    assert fail_dead_runs(instance) == []  # nothing twice


def test_a_reused_process_id_is_not_taken_for_the_run():
    """A live process that started after the run did is another program with its id."""
    assert process_alive(os.getpid(), time.time())
    assert not process_alive(os.getpid(), time.time() - 3600)
