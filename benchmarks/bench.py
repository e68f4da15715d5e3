"""End-to-end benchmark: generated data with ~1,000,000 transaction lines.

Prints and writes (benchmarks/results/e2e_<rows>.{md,json}) the time of each
stage, the end-to-end time and the peak memory of the process tree (Python +
the dbt subprocess), sampled every 50 ms.

    .venv/bin/python benchmarks/bench.py [--rows 1000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import psutil
from peak_rss import PeakRSS

from orchestration.cli import run_pipeline
from orchestration.io.generate import generate
from orchestration.settings import Settings

LINES_PER_CUSTOMER = 12.9  # what the generator produces on average (measured)
RESULTS = Path(__file__).parent / "results"


def _dbt_test_seconds(workdir: Path) -> float:
    """Time dbt spent in data tests and unit tests, from both stages' run_results.json."""
    total = 0.0
    for stage in ("features", "marts"):
        path = workdir / "dbt" / stage / "run_results.json"
        if path.exists():
            for r in json.loads(path.read_text())["results"]:
                if r["unique_id"].startswith(("test.", "unit_test.")):
                    total += r.get("execution_time") or 0.0
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="target transaction lines")
    ap.add_argument("--workdir", default=None, help="default: a temp dir, removed afterwards")
    args = ap.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="custseg-bench-"))
    customers = max(100, round(args.rows / LINES_PER_CUSTOMER))
    try:
        t0 = time.perf_counter()
        gen = generate(workdir / "demo_data", customers=customers, seed=1)
        t_gen = time.perf_counter() - t0
        print(f"generated {gen.transactions:,} lines for {customers:,} customers in {t_gen:.1f} s")

        timings: dict[str, float] = {}
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            result = run_pipeline(
                Settings(workdir=str(workdir)), stream=io.StringIO(), timings=timings
            )
            total = time.perf_counter() - t0
        if not result.success:
            print(f"pipeline FAILED; logs in {workdir / 'logs' / 'last_run.log'}")
            return 1

        validation = sum(v for k, v in timings.items() if "_gx_" in k)
        dbt_tests = _dbt_test_seconds(workdir)
        report = {
            "rows": gen.transactions,
            "customers": customers,
            "stages_s": {k: round(v, 2) for k, v in timings.items()},
            "end_to_end_s": round(total, 2),
            "validation_s": round(validation, 2),
            "validation_share": round(validation / total, 3),
            "dbt_tests_s": round(dbt_tests, 2),
            "all_validation_share": round((validation + dbt_tests) / total, 3),
            "peak_rss_mb": round(mem.peak / 2**20),
            "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        }
        lines = [
            f"# End-to-end benchmark: {gen.transactions:,} transaction lines, {customers:,} customers",
            "",
            f"Machine: {report['machine']}",
            "",
            "| stage | seconds |",
            "|---|---:|",
            *[f"| {k} | {v:.1f} |" for k, v in timings.items()],
            f"| **end to end** (incl. Dagster start-up) | **{total:.1f}** |",
            "",
            f"Great Expectations checks together: {validation:.1f} s = "
            f"{100 * validation / total:.1f} % of the run; dbt tests (inside the dbt stages) "
            f"{dbt_tests:.1f} s; all validation {100 * (validation + dbt_tests) / total:.1f} %.",
            "",
            f"Peak memory (Python + dbt subprocess): {report['peak_rss_mb']:,} MB",
        ]
        md = "\n".join(lines) + "\n"
        print(md)
        RESULTS.mkdir(exist_ok=True)
        stem = RESULTS / f"e2e_{args.rows}"
        stem.with_suffix(".md").write_text(md, encoding="utf-8")
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        return 0
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
