"""Run a job of the pipeline in this process: ``custseg run``, the tests and the benchmarks
call :func:`run_pipeline` (orchestration/cli.py re-exports it)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from orchestration.settings import Settings


def run_pipeline(
    settings: Settings,
    stream=None,
    verbose: bool = False,
    timings: dict | None = None,
    job_name: str = "full_pipeline",
    run_config: dict | None = None,
    run_id: str | None = None,
):
    """Materialise a job's assets (default: the whole graph) in this process.

    Returns the Dagster result. ``run_config`` (e.g. a sensor's request) replaces the job's
    own default config; the loggers are added to it.

    Progress lines go to ``stream`` (stdout); dbt's own output goes to the run's log file,
    ``WORKDIR/logs/runs/<run_id>.log`` (``logs/last_run.log`` points at the newest), unless
    ``verbose``, which prints it and Dagster's own log. Raises
    :class:`~orchestration.io.workdir.WorkdirError` at once if the workdir cannot be written.
    Everything the run writes in the workdir is readable by its owner only
    (orchestration/io/permissions.py).
    """
    from orchestration.gc_pace import run_pace
    from orchestration.io.permissions import private_umask

    with private_umask(), run_pace():
        return _run_pipeline(settings, stream, verbose, timings, job_name, run_config, run_id)


def _run_pipeline(settings, stream, verbose, timings, job_name, run_config, run_id):
    import contextlib
    import uuid

    import dagster as dg

    from orchestration.dbt import ensure_manifest
    from orchestration.event_log import instance_overrides
    from orchestration.executor import execute_in_process
    from orchestration.io.workdir import check_writable, run_log

    s = settings.resolved()
    check_writable(s.workdir)  # a read-only workdir or a full disk: one line, before any work
    ensure_manifest()
    from orchestration.definitions import build_definitions
    from orchestration.progress import progress_logger

    stream = stream or sys.stdout
    loggers = {"progress": progress_logger(stream, timings)}
    if verbose:
        loggers["console"] = dg.colored_console_logger
    defs = build_definitions(s, loggers=loggers)
    job = defs.resolve_job_def(job_name)
    # A persistent instance in the workdir, so `make dev` shows the runs made here.
    home = Path(s.workdir) / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        # No telemetry; one run at a time (see the file).
        shutil.copyfile(Path(__file__).with_name("dagster.yaml"), home / "dagster.yaml")
    instance = dg.DagsterInstance.local_temp(tempdir=str(home), overrides=instance_overrides(home))
    run_id = run_id or str(uuid.uuid4())
    from orchestration.run_monitor import fail_dead_runs

    for message in fail_dead_runs(instance):  # killed runs would block the UI's run queue
        print(message, file=stream)
    with contextlib.ExitStack() as stack:
        stack.callback(instance.dispose)
        if not verbose:
            # dagster-dbt writes dbt's log lines to sys.stdout; keep them in the run's file.
            log = stack.enter_context(run_log(s.workdir, run_id).open("a", encoding="utf-8"))
            stack.enter_context(contextlib.redirect_stdout(log))
        # Without --verbose only the progress logger: Dagster's console logger prints every
        # event at DEBUG.
        config = run_config if run_config is not None else (job.run_config or {})
        # On the executor that lets the model fits overlap (orchestration/executor.py);
        # Dagster's own execute_in_process would swap in its serial one.
        return execute_in_process(
            job,
            instance=instance,
            run_id=run_id,
            run_config={**config, "loggers": {name: {} for name in loggers}},
        )
