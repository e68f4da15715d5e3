"""Benchmark suite (`make bench`): end to end per size, scaling, comparisons.

For each generated size (transaction lines; customers = lines / 12.9, which the
generator turns into ~9.3 orders per customer) and for the real CDNOW and Online
Retail II files (``real``), the whole pipeline runs in this process with the wall
time, CPU time and peak memory (process tree, sampled every 50 ms) of every stage:
``results/e2e_<size>.{md,json}``. On the generated sizes the comparisons run on the
warehouse just built: RFM features (dbt vs its SQL in DuckDB, plain DuckDB, pandas,
Polars), clustering (sample-and-assign vs scikit-learn on all rows); then BG/NBD +
Gamma-Gamma vs lifetimes on simulated customers. ``results/scaling.md`` and
``results/comparisons.{md,json}`` gather them (report.py).

    .venv/bin/python benchmarks/bench.py [--sizes 100000 1000000 10000000 real]
        [--compare-python benchmarks/.venv-compare/bin/python] [--no-compare]

Timings are wall clock on whatever else the machine runs: every result records the
load average before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import report  # noqa: E402
from stages import StageMeter, stage_table  # noqa: E402

from orchestration.cli import run_pipeline  # noqa: E402
from orchestration.demo import generate  # noqa: E402
from orchestration.settings import Settings  # noqa: E402

LINES_PER_CUSTOMER = 12.9  # what the generator produces on average (measured)
RESULTS = HERE / "results"
DEFAULT_SIZES = ["100000", "1000000", "10000000", "real"]
REAL = {"cdnow": REPO / "examples" / "cdnow.yaml", "online_retail": REPO / "examples" / "online_retail.yaml"}  # fmt: skip


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def environment() -> dict:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}",
    }


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TEST_RESULT = re.compile(r"\[(?:PASS|FAIL \d+|WARN \d+) in ([0-9.]+)s\]")


def _dbt_test_seconds(workdir: Path) -> float:
    """Time dbt spent in data tests, from both stages' dbt.log (the last build in each).

    The pipeline's builds write no run_results.json (orchestration/assets/dbt.py); dbt's
    text log has a ``[PASS in 0.04s]`` line per test. A sum over tests that dbt runs on
    several threads at once: dbt's time in tests, not wall time.
    """
    total = 0.0
    for stage in ("features", "marts"):
        path = workdir / "dbt" / stage / "dbt.log"
        if not path.exists():
            continue
        text = _ANSI.sub("", path.read_text(encoding="utf-8", errors="replace"))
        last = text[text.rfind("Running with dbt") :]
        total += sum(float(m.group(1)) for m in _TEST_RESULT.finditer(last))
    return total


def end_to_end(label: str, settings: Settings, extra: dict) -> dict:
    """Run the pipeline once, measured; write results/e2e_<label>.{md,json}."""
    workdir = Path(settings.workdir)
    timings: dict[str, float] = {}
    env, load_before = environment(), load()  # the commit and date the run starts with
    with StageMeter(timings) as meter:
        t0 = time.perf_counter()
        result = run_pipeline(settings, stream=meter, timings=timings)
        total = time.perf_counter() - t0
    if not result.success:
        raise SystemExit(f"{label}: pipeline FAILED; logs in {workdir / 'logs' / 'last_run.log'}")
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        rows, customers = con.execute(
            "select (select count(*) from raw.transactions),"
            " (select count(*) from features.customer_features)"
        ).fetchone()
    res = {
        "label": label,
        **env,
        **extra,
        "rows": rows,
        "customers": customers,
        "end_to_end_s": round(total, 2),
        "cpu_s": round(sum(meter.cpu_s.values()), 2),
        "peak_rss_mb": round(meter.peak / 2**20),
        "dbt_tests_s": round(_dbt_test_seconds(workdir), 2),
        "load_average_before": load_before,
        "load_average_after": load(),
        "stages": stage_table(timings, meter.cpu_s, meter.peak_rss, total),
        "steps": {
            s: {
                "wall_s": round(t, 2),
                "cpu_s": round(meter.cpu_s.get(s, 0), 2),
                "peak_rss_mb": round(meter.peak_rss.get(s, 0) / 2**20),
            }
            for s, t in timings.items()
        },  # fmt: skip
    }
    RESULTS.mkdir(exist_ok=True)
    md = report.e2e_markdown(res)
    (RESULTS / f"e2e_{label}.md").write_text(md, encoding="utf-8")
    (RESULTS / f"e2e_{label}.json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    print(md, flush=True)
    return res


def e2e_subprocess(label: str, workdir: Path, config: Path | None, extra: dict) -> None:
    """end_to_end in a fresh Python, so memory left by earlier parts does not count."""
    cmd = [
        sys.executable,
        __file__,
        "--e2e",
        label,
        str(workdir),
        str(config or ""),
        json.dumps(extra),
    ]
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit(f"end-to-end run {label} failed")


def generated(size: int, root: Path, args, comparisons: dict, skip: dict) -> None:
    workdir = root / f"gen_{size}"
    customers = max(100, round(size / LINES_PER_CUSTOMER))
    t0 = time.perf_counter()
    gen = generate(workdir / "demo_data", customers=customers, seed=1)
    extra = {"generate_s": round(time.perf_counter() - t0, 2), "generated_lines": gen.transactions}
    print(f"== {size:,}: generated {gen.transactions:,} lines, {customers:,} customers", flush=True)
    e2e_subprocess(str(size), workdir, None, extra)
    if args.compare:
        import clustering_compare
        import rfm

        print(f"== {size:,}: RFM comparison (load {load()})", flush=True)
        repeat = args.repeat if size < 5_000_000 else 1  # keeps `make bench` near 20 min
        r = rfm.run(workdir / "warehouse.duckdb", workdir / "rfm", repeat, args.compare_python)
        comparisons["rfm"][str(size)] = {**r, "load_average_after": load()}
        print(json.dumps(r["seconds"]), flush=True)
        print(f"== {size:,}: clustering comparison (load {load()})", flush=True)
        with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
            features = con.sql("select * from features.customer_features order by customer_id").df()
        c = clustering_compare.run(features, args.cluster_time_limit, args.cluster_mem_gb, skip)
        comparisons["clustering"][str(size)] = {**c, "load_average_after": load()}
        for alg, row in c["algorithms"].items():
            if row["full"]["status"] != "finished" and alg not in skip:
                skip[alg] = f"not tried ({row['full']['status']} at {c['customers']:,} customers)"
    shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    if sys.argv[1:2] == ["--e2e"]:  # internal: one measured run (e2e_subprocess)
        label, workdir, config, extra = sys.argv[2:6]
        settings = Settings(workdir=workdir, config_path=config or None)
        end_to_end(label, settings, json.loads(extra))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", nargs="*", default=None,
                    help="transaction lines and/or 'real' (default: $BENCH_SIZES or all)")  # fmt: skip
    default_cp = HERE / ".venv-compare" / "bin" / "python"
    ap.add_argument("--compare-python", default=str(default_cp) if default_cp.exists() else "",
                    help="Python with lifetimes and polars ('' = skip those)")  # fmt: skip
    ap.add_argument("--no-compare", dest="compare", action="store_false")
    ap.add_argument("--repeat", type=int, default=2, help="RFM runs per implementation (best)")
    ap.add_argument("--cluster-time-limit", type=float, default=120.0)
    ap.add_argument("--cluster-mem-gb", type=float, default=6.0)
    ap.add_argument("--btyd-customers", type=int, default=1_000_000)
    ap.add_argument("--workdir", default=None, help="default: a temp dir, removed afterwards")
    args = ap.parse_args()
    sizes = (
        args.sizes
        if args.sizes is not None
        else (os.environ.get("BENCH_SIZES") or " ".join(DEFAULT_SIZES)).split()
    )

    root = Path(args.workdir or tempfile.mkdtemp(prefix="custseg-bench-"))
    comparisons: dict = {"rfm": {}, "clustering": {}, "run": {**environment(), "load_average_before": load()}}  # fmt: skip
    skip: dict[str, str] = {}
    t_all = time.perf_counter()
    try:
        for size in sorted((s for s in sizes if s != "real"), key=int):
            generated(int(size), root, args, comparisons, skip)
        if "real" in sizes:
            for name, config in REAL.items():
                print(f"== {name} (load {load()})", flush=True)
                e2e_subprocess(name, root / name, config, {"config": str(config.relative_to(REPO))})
                shutil.rmtree(root / name, ignore_errors=True)
        if args.compare and args.btyd_customers:
            import btyd_compare

            print(f"== BTYD comparison, {args.btyd_customers:,} customers (load {load()})")
            comparisons["btyd"] = {
                **btyd_compare.run(args.btyd_customers, args.compare_python),
                "load_average_after": load(),
            }
            print(json.dumps(comparisons["btyd"]), flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    comparisons["run"]["load_average_after"] = load()
    comparisons["run"]["bench_s"] = round(time.perf_counter() - t_all)
    if args.compare:
        report.write_comparisons(RESULTS, comparisons)
    report.write_scaling(RESULTS)
    print(f"benchmark done in {time.perf_counter() - t_all:.0f} s; results in {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
