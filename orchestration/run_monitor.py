"""Runs whose process is gone are marked failed, so that queued runs can start.

A run executes in one process: ``custseg run`` itself, or the run worker that the Dagster
UI, a schedule or a sensor launches. When that process is killed (SIGKILL, the OOM
killer, a reboot) nothing records the end of the run: it stays STARTED, and with one run
at a time (``max_concurrent_runs: 1``, orchestration/dagster.yaml) every queued run waits
for it forever. The event that starts a run (RUN_START) carries the id of the process
that runs it; two checks use it:

* :class:`ProcessCheckingRunLauncher`, Dagster's default run launcher that can also
  answer Dagster's run monitoring (``run_monitoring`` in orchestration/dagster.yaml,
  done by the daemon of ``make dev``): a run whose process is gone is marked failed
  within ``poll_interval_seconds``, whoever started it;
* :func:`fail_dead_runs`, the same check once, when ``custseg run`` and ``make dev``
  start, which also covers a ``dagster.yaml`` copied before run monitoring was on.

The instance is local (SQLite under ``DAGSTER_HOME``), so its runs ran on this machine.
A process id that the system gave to a new process since is told apart by the
process's start time (Linux; elsewhere a live id counts as the run's process).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import dagster as dg

# Dagster's run-worker health interface; run monitoring calls it on the instance's run
# launcher. Not exported at the top level of dagster: used here only (tests/test_stale_runs.py).
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

# A process counts as the run's when it started before the run did (plus clock slack).
START_SLACK_SECONDS = 2.0


@dataclass(frozen=True)
class RunProcess:
    """The process that started a run: its id and when the run started (epoch seconds)."""

    pid: int
    run_started: float


def run_process(instance: dg.DagsterInstance, run_id: str) -> RunProcess | None:
    """The process that runs ``run_id`` (from its RUN_START event), or None before it started."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
    ).records
    if not records:
        return None
    entry = records[0].event_log_entry
    pid = entry.dagster_event.pid if entry.dagster_event is not None else None
    return RunProcess(pid=pid, run_started=entry.timestamp) if pid else None


def _boot_time() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def process_alive(pid: int, started_by: float) -> bool:
    """Whether process ``pid`` runs (not a zombie) and started by ``started_by`` (epoch s)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user's process
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return True  # no /proc (macOS) or gone this instant: trust the signal check
    if fields[0] in ("Z", "X"):  # a zombie: dead, its parent has not collected it yet
        return False
    boot = _boot_time()
    if boot is None:
        return True
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time
    return started <= started_by + START_SLACK_SECONDS


def dead_run_message(run: dg.DagsterRun, process: RunProcess) -> str:
    return (
        f"Run {run.run_id} ({run.job_name}) was left {run.status.value} by process "
        f"{process.pid}, which is no longer running (killed or crashed): marked as failed so "
        "that queued runs can start. Its partial results were never published."
    )


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark every started run of ``instance`` whose process is gone as failed (a run being
    cancelled: as canceled). Returns one message per run marked."""
    messages = []
    statuses = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=statuses)):
        process = run_process(instance, run.run_id)
        if process is None or process_alive(process.pid, process.run_started):
            continue
        message = dead_run_message(run, process)
        if run.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message)
        else:
            instance.report_run_failed(run, message)
        messages.append(message)
    return messages


class ProcessCheckingRunLauncher(dg.DefaultRunLauncher):
    """Dagster's default run launcher (runs in a new process of the code server) that also
    tells run monitoring whether a run's process is still there, for runs it launched and
    runs executed elsewhere on this instance (``custseg run``)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        process = run_process(self._instance, run.run_id)
        if process is None:
            # Not started yet: run monitoring's start timeout is for that.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no RUN_START event yet")
        if process_alive(process.pid, process.run_started):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"process {process.pid} runs")
        return CheckRunHealthResult(WorkerStatus.FAILED, dead_run_message(run, process))


def main() -> int:
    """``python -m orchestration.run_monitor``: the start-up check of ``make dev``
    (the instance of ``DAGSTER_HOME``)."""
    with dg.DagsterInstance.get() as instance:
        for message in fail_dead_runs(instance):
            print(message, file=sys.stderr)
        if not instance.run_monitoring_enabled:
            print(
                f"{os.environ.get('DAGSTER_HOME')}/dagster.yaml has no run monitoring: a run "
                "killed while `make dev` runs stays started until the next start. Copy "
                "orchestration/dagster.yaml over it to check every 10 s.",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
