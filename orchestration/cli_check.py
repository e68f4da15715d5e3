"""``custseg check``: the config and the sources checked in seconds, nothing run or written.

Prints, per source, the files and rows read, the column mapping (and the columns the
ingest derives), the first rows as a run would load them and every quarantine rule
that rows break (how many, the first one's file and row); then the transactions' date
range, the as-of date and the customers. Exit status: 0 when a run would load the
sources (quarantined rows are reported, not errors), 1 when the run would stop on them,
2 when the config itself is invalid (the main command's handler).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields

from orchestration.settings import Settings

OK, STOPS = 0, 1
CHECK_HELP = """\
Read the sources through the ingest's own rules into a throwaway in-memory database,
in seconds, and print per source: the files and rows read, the column mapping (and
the columns the ingest derives), the first rows as a run would load them, and every
rule that rows break, with how many and the first one's file and row; then the
transactions' date range, the as-of date and the customers. Nothing is written; a
database source is read in full, as a run reads it.

exit status: 0 a run would load the sources (quarantined rows are reported, not errors)
             1 a run would stop on them (a file it cannot read, a missing column, an
               as-of date outside the data, too few customers)
             2 the config file itself is invalid"""
CHECK_EXAMPLES = """\
examples:
  custseg check --config examples/cdnow.yaml
  custseg check --config my_shop.yaml --data-root /mnt/deliveries --as-of 2024-01-01
  custseg check --config my_shop.yaml --rows 0     # counts and reasons only"""


def cmd_check(args: argparse.Namespace) -> int:
    from orchestration.ingest.check import check_sources
    from orchestration.ingest.types import IngestError
    from orchestration.run_context import RunContext

    t0 = time.perf_counter()
    settings = Settings(**{f.name: getattr(args, f.name, f.default) for f in fields(Settings)})
    run = RunContext.resolve(settings)  # a bad config or date: ConfigError, exit status 2
    s = run.settings
    what = args.config_path or f"the built-in demo data in {s.demo_data_dir}"
    print(f"Checking {what}: nothing is loaded or written.")
    print(f"Data root: {run.config.resolve_root(s.data_root)}")
    try:
        report = check_sources(
            run.config,
            s.data_root,
            run.as_of_date,
            s.duckdb_memory_limit,
            args.rows,
            threads=s.duckdb_threads,
        )
    except IngestError as exc:
        _stop([str(exc)], s.config_path is None and not s.demo_data_dir.is_dir())
        return STOPS
    for source in report.sources:
        _print_source(source, args.rows)
    print()
    if report.last is not None:
        default = "" if report.as_of else " (the day after the last transaction)"
        print(f"Transactions from {report.first} to {report.last}.")
        print(
            f"As of {report.effective_as_of}{default}: {report.customers:,} customers "
            f"and {report.orders:,} orders before it."
        )
    took = time.perf_counter() - t0
    if report.problems:
        _stop(report.problems, False)
        return STOPS
    config = f" --config {args.config_path}" if args.config_path else ""
    print(f"\nOK ({took:.1f} s): custseg run{config} would load these sources.")
    return OK


def _print_source(source, rows: int) -> None:
    read, loaded, quarantined = source.rows
    print(
        f"\n{source.source}: {len(source.files)} file(s), {read:,} rows read: {loaded:,} "
        f"would load, {quarantined:,} quarantined"
    )
    for f in source.files:
        print(f"  {f.file}: {f.rows_read:,} read, {f.rows_rejected:,} quarantined")
    mapped = ", ".join(f"{canonical} <- {column!r}" for canonical, column in source.columns.items())
    print(f"  columns: {mapped}")
    for canonical, how in source.derived.items():
        print(f"  derived: {canonical} = {how}")
    if source.sample and rows:
        import pandas as pd

        print(f"  first {len(source.sample)} row(s) as a run would load them:")
        frame = pd.DataFrame(source.sample).astype(object).where(lambda f: f.notna(), "")
        for line in frame.to_string(index=False).splitlines():
            print(f"    {line}")
    if source.reasons:
        print("  would be quarantined (raw.quarantine_" + source.source + "), by rule:")
        for reason in source.reasons:
            print(f"    {reason.rows:>10,}  {reason.rule}  (first: {reason.example})")


def _stop(problems: list[str], no_demo: bool) -> None:
    sys.stdout.flush()
    for problem in problems:
        print(f"custseg: error: {problem}", file=sys.stderr)
    if no_demo:
        print(
            "custseg: no --config and no demo data yet: pass --config FILE, or generate the "
            "demo first (custseg generate --out WORKDIR/demo_data, or make run)",
            file=sys.stderr,
        )
    print("A run would stop here: fix the sources or the config, then check again.")
