"""``custseg``: the command line (check a config, run the pipeline, find the report, generate
demo data, parse the dbt project)."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from dataclasses import fields
from pathlib import Path

from orchestration.pipeline_run import run_pipeline
from orchestration.settings import DEFAULT_WORKDIR, Settings, SettingsError, parse_as_of


def _cmd_generate(args: argparse.Namespace) -> int:
    from orchestration.demo import generate

    t0 = time.perf_counter()
    result = generate(args.out, customers=args.customers, seed=args.seed)
    print(f"Generated demo data in {args.out} ({time.perf_counter() - t0:.1f} s): {result}")
    return 0


def _cmd_parse(_args: argparse.Namespace) -> int:
    from orchestration.dbt import ensure_manifest
    from orchestration.dbt_parse import seed_parse_states

    print(f"dbt manifest: {ensure_manifest(force=True)}")
    # The parse state each new workdir starts from (orchestration/dbt_parse.py).
    print(f"dbt parse states: {', '.join(str(p.parent.name) for p in seed_parse_states())}")
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
        span = delivery_range(run.config, s.data_root, s.duckdb_memory_limit, s.duckdb_threads)
    except (IngestError, OSError):
        return  # the run's ingest reports it, with its log
    if span is not None:
        check_as_of(run.as_of_date, *span)


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
            from orchestration.run_summary import print_summary

            print(f"\nDone in {time.perf_counter() - t0:.1f} s.")
            print_summary(RunContext.resolve(settings))
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


DESCRIPTION = """\
Customer segmentation warehouse: load your transactions, build RFM features, segments,
CLV and churn scores with dbt, DuckDB and scikit-learn, and publish them for Power BI.

Start with "custseg check --config FILE" (seconds), then "custseg run --config FILE".
Without --config everything runs on generated demo data."""

EXAMPLES = """\
examples:
  custseg run                                      # the demo: 20,000 generated customers
  custseg check --config examples/cdnow.yaml       # is the config right? (seconds)
  custseg run --config examples/cdnow.yaml --workdir .custseg-cdnow
  custseg report --open                            # the newest HTML report

Every option can also come from the environment (.env.example): CUSTSEG_CONFIG,
CUSTSEG_WORKDIR, CUSTSEG_DATA_ROOT, CUSTSEG_EXPORT_DIR, CUSTSEG_AS_OF_DATE, ..."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; each option's default after its help,
    unless it has none (None, a flag) or the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            text += " (default: %(default)s)"
        return text


def _data_options(p: argparse.ArgumentParser, env: Settings) -> None:
    """What ``run`` and ``check`` read: the config, its data, the as-of date, the workdir."""
    p.add_argument(
        "--config",
        dest="config_path",
        metavar="FILE",
        default=env.config_path,
        help="project config YAML mapping your columns (examples/); without one, the "
        "built-in demo data (generated into WORKDIR/demo_data on the first run)",
    )
    p.add_argument(
        "--workdir",
        metavar="DIR",
        default=env.workdir or DEFAULT_WORKDIR,
        help="folder for the warehouse, models, reports and exports",
    )
    p.add_argument(
        "--data-root", metavar="DIR", default=env.data_root, help="override the config's data_root"
    )
    p.add_argument(
        "--as-of",
        dest="as_of_date",
        metavar="DATE",
        type=_as_of_date,
        default=env.as_of_date,
        help="as-of date YYYY-MM-DD: after the first transaction and at most the day after "
        "the last; without it, the day after the last transaction",
    )
    p.set_defaults(
        env=env.env,
        duckdb_memory_limit=env.duckdb_memory_limit,
        duckdb_threads=env.duckdb_threads,
    )


def build_parser() -> argparse.ArgumentParser:
    from orchestration import cli_check

    env = Settings.from_env()
    workdir = env.workdir or DEFAULT_WORKDIR
    p = argparse.ArgumentParser(
        prog="custseg", description=DESCRIPTION, epilog=EXAMPLES, formatter_class=HelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser(
        "run",
        help="run the whole pipeline in this process (ingest, dbt, models, export, report)",
        description="Run a job of the pipeline in this process and print a summary: the\n"
        "segments, customers, revenue, CLV and churn totals, and where the outputs are.",
        formatter_class=HelpFormatter,
        epilog="examples:\n"
        "  custseg run                                       # demo data, workdir .custseg\n"
        "  custseg run --config examples/cdnow.yaml --workdir .custseg-cdnow\n"
        "  custseg run --config my_shop.yaml --as-of 2024-01-01 --job scoring_pipeline\n"
        "  custseg run --config my_shop.yaml --export-dir //server/share/custseg",
    )
    _data_options(r, env)
    r.add_argument(
        "--export-dir",
        metavar="DIR",
        default=env.export_dir,
        help="publish the Power BI export here instead of WORKDIR/exports (e.g. a share)",
    )
    r.add_argument(
        "--lock-timeout",
        metavar="SECONDS",
        type=float,
        default=env.lock_timeout,
        help="seconds to wait while another run uses the workdir",
    )
    r.add_argument(
        "--verbose",
        action="store_true",
        help="print dbt's and Dagster's own logs, and the tracebacks of a failure",
    )
    r.add_argument(
        "--job",
        choices=JOBS,
        metavar="JOB",
        default="full_pipeline",
        help="full_pipeline: everything, refits the segmentation; scoring_pipeline: segments "
        "and scores from the saved models, no refit; refit_models; incremental_scoring: "
        "append new inbox files, then score",
    )
    r.set_defaults(func=_cmd_run)

    c = sub.add_parser(
        "check",
        help="check the config and the sources in seconds, without running anything",
        description=cli_check.CHECK_HELP,
        formatter_class=HelpFormatter,
        epilog=cli_check.CHECK_EXAMPLES,
    )
    _data_options(c, env)
    c.add_argument(
        "--rows", metavar="N", type=int, default=3, help="how many parsed rows to show per source"
    )
    c.set_defaults(func=cli_check.cmd_check)

    rep = sub.add_parser(
        "report",
        help="print the path of the latest HTML report (and open it)",
        formatter_class=HelpFormatter,
        epilog="example:\n  custseg report --open --workdir .custseg-cdnow",
    )
    rep.add_argument("--workdir", metavar="DIR", default=workdir, help="the workdir of the run")
    rep.add_argument("--open", action="store_true", help="open it in the web browser")
    rep.set_defaults(func=_cmd_report)

    g = sub.add_parser(
        "generate",
        help="write synthetic demo data (with ground truth) into a folder",
        formatter_class=HelpFormatter,
        epilog="example:\n  custseg generate --out /tmp/demo --customers 5000 --seed 7",
    )
    g.add_argument("--out", metavar="DIR", required=True, help="output folder (created if needed)")
    g.add_argument("--customers", metavar="N", type=int, default=20_000, help="how many customers")
    g.add_argument(
        "--seed",
        metavar="N",
        type=int,
        default=42,
        help="random seed: the same seed, the same data",
    )
    g.set_defaults(func=_cmd_generate)

    pr = sub.add_parser(
        "parse",
        help="parse the dbt project (writes the manifest the Dagster definitions load)",
        formatter_class=HelpFormatter,
    )
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


def console() -> int:
    """The ``custseg`` command: :func:`main`, without the interpreter's last collection."""
    code = main()
    from orchestration.gc_pace import skip_final_collection

    skip_final_collection()
    return code


if __name__ == "__main__":
    sys.exit(console())
