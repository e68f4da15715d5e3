"""``custseg``: the command line (generate demo data, run the pipeline, parse the dbt project)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import traceback
from dataclasses import fields
from pathlib import Path

from orchestration.settings import DEFAULT_WORKDIR, Settings, SettingsError, parse_as_of


def _cmd_generate(args: argparse.Namespace) -> int:
    from orchestration.demo import generate

    t0 = time.perf_counter()
    result = generate(args.out, customers=args.customers, seed=args.seed)
    print(f"Generated demo data in {args.out} ({time.perf_counter() - t0:.1f} s): {result}")
    return 0


def _cmd_parse(_args: argparse.Namespace) -> int:
    from orchestration.dbt import ensure_manifest

    print(f"dbt manifest: {ensure_manifest(force=True)}")
    return 0


def _as_of_date(text: str) -> str:
    try:
        return parse_as_of(text).isoformat()
    except (SettingsError, AttributeError):
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


JOBS = ("full_pipeline", "scoring_pipeline", "refit_models", "incremental_scoring")
# The jobs whose ingest replaces raw.* with the configured sources as they are now.
FULL_LOAD_JOBS = ("full_pipeline", "scoring_pipeline")


def _check_as_of_first(run, job: str) -> None:
    """Refuse an as-of date outside the data before the run starts (ingest/delivery.py).

    Starting Dagster takes longer than reading a delivery of files, so a full load's
    transaction files are read once here through the ingest's rules. The run checks
    again where it loads (before raw.* changes) and covers what is skipped here: a
    database source (read once, by the run), an incremental job (its range includes
    raw.*), a demo not generated yet, and a delivery the ingest will refuse anyway.
    """
    from orchestration.ingest.delivery import check_as_of
    from orchestration.ingest.load import IngestError, delivery_range

    s = run.settings
    if run.as_of_date is None or job not in FULL_LOAD_JOBS:
        return
    if run.config.transactions.database is not None:
        return
    if s.config_path is None and not (s.demo_data_dir / "transactions.csv").is_file():
        return
    try:
        span = delivery_range(run.config, s.data_root, s.duckdb_memory_limit)
    except (IngestError, OSError):
        return  # the run's ingest reports it, with its log
    if span is not None:
        check_as_of(run.as_of_date, *span)


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
    from orchestration.io.permissions import private_umask

    with private_umask():
        return _run_pipeline(settings, stream, verbose, timings, job_name, run_config, run_id)


def _run_pipeline(settings, stream, verbose, timings, job_name, run_config, run_id):
    import contextlib
    import uuid

    import dagster as dg

    from orchestration.dbt import ensure_manifest
    from orchestration.event_log import instance_overrides
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
        return job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_id=run_id,
            run_config={**config, "loggers": {name: {} for name in loggers}},
        )


def _print_summary(settings: Settings) -> None:
    import duckdb

    from orchestration.io.config import project_currency

    s = settings.resolved()
    wh = s.warehouse_path
    code = project_currency(s.config_path).code
    with duckdb.connect(str(wh), read_only=True) as con:
        summary = con.execute(
            "select segment_name as segment, customers, round(100 * customer_share, 1) as "
            f'"customers %", round(revenue, 2) as "revenue ({code})", round(100 * revenue_share, '
            '1) as "revenue %", round(mean_recency_days, 1) as "recency (d)", '
            f'round(mean_frequency, 2) as orders, round(mean_monetary_total, 2) as "spend ({code})" '
            "from marts.mart_segment_summary where segment_type = 'cluster' order by revenue desc"
        ).df()
        (algorithm,) = con.execute(
            "select any_value(algorithm) from ml.segmentation_candidates where chosen"
        ).fetchone()
    print(f"\nSegments (production segmentation: {algorithm}):")
    print(summary.to_string(index=False))
    print(f"Warehouse:      {wh}")
    print(f"Power BI files: {s.exports_dir / 'powerbi'}")
    print(f"Report:         {Path(s.workdir) / 'reports' / 'latest.html'}")


def _cmd_run(args: argparse.Namespace) -> int:
    import uuid

    from orchestration.failures import explain, run_failure_details, run_failure_lines
    from orchestration.run_context import RunContext

    # The parser's destinations are the settings' field names.
    settings = Settings(**{f.name: getattr(args, f.name) for f in fields(Settings)})
    # Fail fast, before any work: a bad config file, an as-of date outside the data.
    _check_as_of_first(RunContext.resolve(settings), args.job)
    if settings.config_path is None:
        print(f"No --config: running on the built-in demo data in {settings.demo_data_dir}")
    t0 = time.perf_counter()
    if args.job != "full_pipeline":
        print(f"Job: {args.job}")
    run_id = str(uuid.uuid4())
    try:
        result = run_pipeline(settings, verbose=args.verbose, job_name=args.job, run_id=run_id)
    except Exception as exc:  # every failure ends in one line, not a traceback
        lines = [explain(exc, settings.workdir)]
        details = "".join(traceback.format_exception(exc))
    else:
        if result.success:
            print(f"\nDone in {time.perf_counter() - t0:.1f} s.")
            _print_summary(settings)
            return 0
        lines = run_failure_lines(result, settings.workdir)
        details = run_failure_details(result)
    _report_failure(settings, run_id, lines, details, time.perf_counter() - t0, args.verbose)
    return 1


def _report_failure(
    settings: Settings, run_id: str, lines: list[str], details: str, took: float, verbose: bool
) -> None:
    """The root errors (one line each), what was published, and where the details are."""
    from orchestration.io.workdir import RUN_LOGS

    sys.stdout.flush()
    print(file=sys.stderr)
    for line in lines:
        print(f"custseg: error: {line}", file=sys.stderr, flush=True)
    print(f"The run failed after {took:.1f} s. {_published(settings, run_id)}")
    if verbose:
        print(details, file=sys.stderr)
        return
    log = Path(settings.workdir) / RUN_LOGS / f"{run_id}.log"
    try:
        with log.open("a", encoding="utf-8") as f:
            f.write(f"\n{details}\n")
    except OSError:
        print("The errors with their tracebacks: run again with --verbose.")
    else:
        print(f"dbt output and every error with its traceback: {log} (or run with --verbose)")


def _published(settings: Settings, run_id: str) -> str:
    """Whether this run's export was swapped in before the failure (its manifest says)."""
    import json

    exports = settings.exports_dir
    try:
        manifest = json.loads((exports / "powerbi" / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if isinstance(manifest, dict) and manifest.get("run_id") == run_id:
        return (
            f"This run's Power BI export was published ({exports / 'powerbi'}); "
            "a step after it failed."
        )
    if manifest is None:
        return "Nothing was published."
    return (
        "Nothing was published: the Power BI export and the report are still those of the "
        "last successful run."
    )


def _cmd_report(args: argparse.Namespace) -> int:
    from orchestration.report import latest_report

    path = latest_report(args.workdir).resolve()
    if not path.is_file():
        print(
            f"custseg: error: no report yet: expected {path}. Run `custseg run --workdir "
            f"{args.workdir}` first; every run writes one.",
            file=sys.stderr,
        )
        return 1
    print(path)
    if args.open:
        import webbrowser

        webbrowser.open(path.as_uri())
    return 0


def build_parser() -> argparse.ArgumentParser:
    env = Settings.from_env()
    p = argparse.ArgumentParser(prog="custseg", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write synthetic demo data (with ground truth)")
    g.add_argument("--customers", type=int, default=20_000)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--out", required=True, help="output folder")
    g.set_defaults(func=_cmd_generate)

    r = sub.add_parser("run", help="run the whole pipeline in-process")
    r.add_argument(
        "--config",
        dest="config_path",
        default=env.config_path,
        help="project config YAML (default: demo)",
    )
    r.add_argument("--workdir", default=env.workdir or DEFAULT_WORKDIR)
    r.add_argument("--data-root", default=env.data_root, help="override the config's data_root")
    r.add_argument(
        "--export-dir",
        default=env.export_dir,
        help="publish the Power BI export here (default WORKDIR/exports)",
    )
    r.set_defaults(env=env.env, duckdb_memory_limit=env.duckdb_memory_limit)
    r.add_argument(
        "--as-of",
        dest="as_of_date",
        type=_as_of_date,
        default=env.as_of_date,
        help="as-of date YYYY-MM-DD (default: the day after the last transaction); after the "
        "first transaction and at most the day after the last",
    )
    r.add_argument(
        "--lock-timeout",
        type=float,
        default=env.lock_timeout,
        help="seconds to wait while another run uses the workdir (default 600)",
    )
    r.add_argument(
        "--verbose",
        action="store_true",
        help="print dbt's and Dagster's own logs, and the tracebacks of a failure",
    )
    r.add_argument(
        "--job",
        choices=JOBS,
        default="full_pipeline",
        help="full_pipeline (default: everything, refits the segmentation), scoring_pipeline "
        "(segments and scores from the saved models, no refit), refit_models or incremental_scoring (append new inbox files, then score)",
    )
    r.set_defaults(func=_cmd_run)

    rep = sub.add_parser("report", help="print the path of the latest HTML report (and open it)")
    rep.add_argument("--workdir", default=env.workdir or DEFAULT_WORKDIR)
    rep.add_argument("--open", action="store_true", help="open it in the web browser")
    rep.set_defaults(func=_cmd_report)

    pr = sub.add_parser("parse", help="parse the dbt project (writes the manifest Dagster loads)")
    pr.set_defaults(func=_cmd_parse)
    return p


def main(argv: list[str] | None = None) -> int:
    args = None
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except KeyboardInterrupt:
        print("\ncustseg: interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as exc:  # config file, settings
        print(f"custseg: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # one line, never a traceback without --verbose
        from orchestration.failures import explain

        print(f"custseg: error: {explain(exc)}", file=sys.stderr)
        if getattr(args, "verbose", False):
            traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
