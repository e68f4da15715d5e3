"""Incremental load benchmark: 1 % new transactions into a ~1,000,000-line warehouse.

Generates the demo data (~1M transaction lines), runs ``full_pipeline`` once, drops 1 %
new lines as one file into the inbox and times the run the inbox sensor asks for
(``incremental_scoring``: append the file, dbt features, scores with the saved models,
marts, export, report). Then, for comparison, ``scoring_pipeline`` (the daily job: a
full reload of every file, including the new one, without refits). Writes
benchmarks/results/incremental.{md,json} with every stage of the three runs.

    .venv/bin/python benchmarks/bench_incremental.py [--customers 77500] [--workdir DIR]

``--dbt-only`` times the dbt features build alone (no Dagster, no ML; prints Markdown,
writes nothing to results/): a full build, the same 1 % appended through the inbox
and an incremental build (the transaction models are incremental,
dbt_project/macros/incremental.sql), then a full build (--full-refresh) of the same
data for comparison. ``--data DIR`` reuses generated demo data (read only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import psutil
from stages import StageMeter  # benchmarks/, this script's folder

from orchestration.assets.ingest import ingest_run_config
from orchestration.cli import run_pipeline
from orchestration.demo import generate
from orchestration.settings import Settings

RESULTS = Path(__file__).parent / "results"
TARGET = 0.15  # issue 20: the incremental run takes at most this share of a full run
DELTA = "delta_0001.csv"


def _run(workdir: Path, job: str, run_config: dict | None = None) -> tuple[float, dict, float]:
    """The job's time, each step's, and the time some step ran (steps may overlap)."""
    timings: dict[str, float] = {}
    with StageMeter(timings) as meter:
        t0 = time.perf_counter()
        result = run_pipeline(
            Settings(workdir=str(workdir)),
            stream=meter,
            timings=timings,
            job_name=job,
            run_config=run_config,
        )
        took = time.perf_counter() - t0
    if not result.success:
        raise SystemExit(f"{job} FAILED; logs in {workdir / 'logs' / 'last_run.log'}")
    print(f"{job}: {took:.1f} s")
    return took, timings, meter.busy_s()


def _write_delta(data: Path, share: float, seed: int) -> int:
    """About ``share`` of the lines (whole orders, sampled over the history, new order ids),
    dated the day after the last one: a daily delivery. Returns its number of lines."""
    inbox = data / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    src = str(data / "transactions.csv").replace("'", "''")
    out = str(inbox / DELTA).replace("'", "''")
    with duckdb.connect() as con:
        con.execute(f"create view t as select * from read_csv('{src}', all_varchar = true)")
        (last,) = con.execute("select max(cast(order_date as date)) from t").fetchone()
        con.execute(
            f"""
            create table delta as
            select 'N' || order_id as order_id, customer_id,
                   strftime(date '{last}' + interval 1 day
                            + (cast(order_date as timestamp) - cast(order_date as date)),
                            '%Y-%m-%d %H:%M:%S') as order_date,
                   product_id, category, quantity, unit_price, channel, country
            from t
            where order_id in (
                select order_id from (select distinct order_id from t)
                using sample {100 * share:.4f} percent (bernoulli, {seed})
            )
            """
        )
        con.execute(f"copy delta to '{out}' (header, delimiter ',')")
        return con.execute("select count(*) from delta").fetchone()[0]


def _machine() -> str:
    return (
        f"{platform.machine()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB"
    )


REFITS = ("churn_training_features", "segmentation_model", "value_models")
# Stages that recompute every customer from all of raw.transactions, whatever is new.
WHOLE_TABLE = ("dbt_features", "customer_clusters", "customer_scores", "dbt_marts")
RUNS = ("full_pipeline", "incremental_scoring", "scoring_pipeline")


def _stage_table(report: dict) -> list[str]:
    runs = report["stages_s"]
    steps: list[str] = []
    for timings in runs.values():
        steps += [s for s in timings if s not in steps]
    lines = ["| stage | " + " | ".join(RUNS) + " |", "|---|" + "---:|" * len(RUNS)]
    for step in steps:
        cells = [f"{runs[n][step]:.1f}" if step in runs[n] else "—" for n in RUNS]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    busy = report.get("busy_s") or {n: sum(runs[n].values()) for n in RUNS}
    overhead = [report[f"{n}_s"] - busy[n] for n in RUNS]
    lines.append(
        "| Dagster start-up and between steps | " + " | ".join(f"{x:.1f}" for x in overhead) + " |"
    )
    lines.append(
        "| **end to end** | " + " | ".join(f"**{report[f'{n}_s']:.1f}**" for n in RUNS) + " |"
    )
    return lines


def render(report: dict) -> str:
    """The note (benchmarks/results/incremental.md) for a measured ``report``."""
    full, inc, daily = (report[f"{n}_s"] for n in RUNS)
    stages = report["stages_s"]["incremental_scoring"]
    refit = sum(v for k, v in report["stages_s"]["full_pipeline"].items() if k in REFITS)
    whole = sum(v for k, v in stages.items() if k in WHOLE_TABLE)
    checks = sum(v for k, v in stages.items() if "_gx_" in k)
    top = sorted(stages.items(), key=lambda kv: kv[1], reverse=True)[:3]
    ratio = inc / full
    verdict = "meets" if ratio <= TARGET else "does NOT meet"
    lines = [
        f"# Incremental load: {report['new_lines']:,} new lines into "
        f"{report['transactions']:,} ({report['customers']:,} customers)",
        "",
        f"Machine: {report['machine']}; 1-minute load average before / between / after the "
        f"runs: {' / '.join(f'{x:.1f}' for x in report['load_average_1m'])} (other work was "
        "running: above 2 means steps waited for a core).",
        "",
        f"* `full_pipeline` (full load, refits, everything): **{full:.1f} s**",
        f"* `incremental_scoring` (the inbox sensor's run: append one file of "
        f"{report['new_lines']:,} lines, then features, scores, marts, export, report): "
        f"**{inc:.1f} s = {100 * ratio:.0f} %** of the full run: it {verdict} the "
        f"<= {100 * TARGET:.0f} % target.",
        f"* `scoring_pipeline` (the daily job: full reload of every file, no refits): "
        f"{daily:.1f} s; the incremental run is **{100 * inc / daily:.0f} %** of it.",
        f"* After the runs raw.transactions holds {report['raw_rows_after']:,} rows = "
        f"{report['transactions']:,} + {report['new_lines']:,}: the new file once.",
        "",
        *_stage_table(report),
        "",
        "## Where the incremental run's time goes",
        "",
        f"The append itself (ingest_sources) takes {stages.get('ingest_sources', 0):.1f} s "
        f"against {report['stages_s']['full_pipeline'].get('ingest_sources', 0):.1f} s for a "
        f"full reload. Largest stages: {', '.join(f'{k} {v:.1f} s' for k, v in top)}. The "
        f"stages that recompute every customer from all of raw.transactions ("
        f"{', '.join(WHOLE_TABLE)}) take {whole:.1f} s of step time against the run's "
        f"{inc:.1f} s, the Great Expectations checks {checks:.1f} s. The refits "
        f"({', '.join(REFITS)}) take {refit:.1f} s of step time against the full run's "
        f"{full:.1f} s (step times add up to more than the run where the model fits run side "
        "by side, orchestration/executor.py), which is why the "
        "incremental run is a small share of it while it saves little against the daily "
        "`scoring_pipeline`: apart from ingest_sources the two run the same steps on the same "
        "data (+1 %), so other differences between their columns are run-to-run noise of a "
        "busy machine.",
        "",
        "The transaction-grain dbt models (int_transactions_deduped, int_orders, "
        "int_customer_order_totals) are incremental (dbt_project/macros/incremental.sql): "
        "after an append they process the new lines and the orders and customers these "
        "touch (`--dbt-only` times that alone). The incremental job runs only what an "
        "append to raw.transactions can change (no seeds, no customers or events staging, "
        "no check of raw_customers), and its Great Expectations row rules see the appended "
        "rows rather than a sample of the whole table. What still grows with all the data: "
        "the as-of projection over one row per customer (recency, T, spend windows, RFM "
        "scores, customer_features), dbt's tests, the marts (fct_orders copies int_orders "
        "with the as-of flag) and scoring every customer. Scoring only the changed "
        "customers is possible only with a fixed as-of date: when it moves, every "
        "customer's recency and T change and so do their scores (BG/NBD, churn). About 3 s "
        "of each dbt step is dbt starting (imports, partial parse) whatever the data.",
    ]
    return "\n".join(lines) + "\n"


def _dbt_build(workdir: Path, variables: dict, *extra: str) -> tuple[float, dict[str, float]]:
    """``dbt build`` of the pre-ML models in this process: (wall seconds, seconds per model)."""
    from orchestration.dbt import DBT_PROJECT_DIR, invoke_dbt

    target = workdir / "dbt_target"
    args = ["build", "--exclude", "tag:post_ml", *extra, "--quiet",
            "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target-path", str(target), "--log-path", str(workdir / "dbt_logs"),
            "--vars", json.dumps(variables)]  # fmt: skip
    t0 = time.perf_counter()
    result = invoke_dbt(args)
    took = time.perf_counter() - t0
    if not result.success:
        raise SystemExit(f"dbt build {' '.join(extra)} failed: {result.error}")
    models = {
        r.node.name: r.execution_time
        for r in result.result.results
        if r.node.resource_type == "model"
    }
    tests = sum(r.execution_time for r in result.result.results if r.node.resource_type != "model")
    return took, {**models, "(dbt tests)": tests}


def dbt_only(args) -> int:
    """Full dbt build, 1 % appended, incremental build, full build of the same data."""
    from orchestration.ingest.load import ingest, ingest_incremental
    from orchestration.io.config import demo_config

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="custseg-bench-inc-dbt-"))
    data = workdir / "demo_data"
    try:
        if args.data:
            data.mkdir(parents=True, exist_ok=True)
            for name in ("transactions.csv", "customers.csv", "events.csv"):
                (data / name).unlink(missing_ok=True)
                (data / name).symlink_to(Path(args.data).resolve() / name)
        else:
            generate(data, customers=args.customers, seed=args.seed)
        config = demo_config(data)
        wh = workdir / "warehouse.duckdb"
        variables = {"warehouse_path": str(wh.resolve())}
        with duckdb.connect(str(wh)) as con:
            ingest(con, config, "full", log=lambda *_: None)
            (lines,) = con.execute("select count(*) from raw.transactions").fetchone()
        load = [os.getloadavg()[0]]
        runs = {"full": _dbt_build(workdir, variables, "--full-refresh")}
        new_lines = _write_delta(data, args.share, args.seed)
        with duckdb.connect(str(wh)) as con:
            ingest_incremental(con, config, "delta", [DELTA], log=lambda *_: None)
        load.append(os.getloadavg()[0])
        runs["incremental"] = _dbt_build(workdir, variables)
        load.append(os.getloadavg()[0])
        runs["full, same data"] = _dbt_build(workdir, variables, "--full-refresh")
        load.append(os.getloadavg()[0])
        names = list(runs)
        models = sorted(
            {m for _, per in runs.values() for m in per},
            key=lambda m: -max(per.get(m, 0) for _, per in runs.values()),
        )
        print(f"dbt features build, {lines:,} lines + {new_lines:,} appended; {_machine()}; "
              f"1-minute load {' / '.join(f'{x:.1f}' for x in load)}\n")  # fmt: skip
        print("| model | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names))
        for m in models[: args.top]:
            print(f"| {m} | " + " | ".join(f"{runs[n][1].get(m, 0):.2f}" for n in names) + " |")
        print(
            "| **dbt build (wall)** | " + " | ".join(f"**{runs[n][0]:.1f}**" for n in names) + " |"
        )
        return 0
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--customers", type=int, default=77_500, help="≈ 12.9 lines per customer")
    ap.add_argument("--share", type=float, default=0.01, help="new lines / existing lines")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", default=None, help="default: a temp dir, removed afterwards")
    ap.add_argument(
        "--render-only", action="store_true", help="rewrite the .md from the saved .json"
    )
    ap.add_argument("--dbt-only", action="store_true", help="time the dbt features build only")
    ap.add_argument("--data", default=None, help="--dbt-only: reuse this demo data folder")
    ap.add_argument("--top", type=int, default=12, help="--dbt-only: models to list")
    args = ap.parse_args()
    if args.dbt_only:
        return dbt_only(args)
    if args.render_only:
        report = json.loads((RESULTS / "incremental.json").read_text(encoding="utf-8"))
        (RESULTS / "incremental.md").write_text(render(report), encoding="utf-8")
        return 0

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="custseg-bench-inc-"))
    try:
        gen = generate(workdir / "demo_data", customers=args.customers, seed=args.seed)
        print(f"generated {gen.transactions:,} lines for {args.customers:,} customers")
        load = [os.getloadavg()[0]]
        full_s, full, full_busy = _run(workdir, "full_pipeline")
        new_lines = _write_delta(workdir / "demo_data", args.share, args.seed)
        print(f"inbox file: {new_lines:,} new lines ({100 * new_lines / gen.transactions:.2f} %)")
        load.append(os.getloadavg()[0])
        inc_s, inc, inc_busy = _run(
            workdir, "incremental_scoring", ingest_run_config("incremental", [DELTA])
        )
        load.append(os.getloadavg()[0])
        daily_s, daily, daily_busy = _run(workdir, "scoring_pipeline")
        load.append(os.getloadavg()[0])
        wh = workdir / "warehouse.duckdb"
        with duckdb.connect(str(wh), read_only=True) as con:
            (rows,) = con.execute("select count(*) from raw.transactions").fetchone()

        report = {
            "transactions": gen.transactions,
            "customers": args.customers,
            "new_lines": new_lines,
            "raw_rows_after": rows,
            "full_pipeline_s": round(full_s, 2),
            "incremental_scoring_s": round(inc_s, 2),
            "scoring_pipeline_s": round(daily_s, 2),
            "ratio_incremental_to_full": round(inc_s / full_s, 3),
            "ratio_incremental_to_scoring": round(inc_s / daily_s, 3),
            "target_ratio": TARGET,
            "meets_target": inc_s / full_s <= TARGET,
            "stages_s": {
                n: {k: round(v, 2) for k, v in t.items()}
                for n, t in zip(RUNS, (full, inc, daily), strict=True)
            },
            "busy_s": {
                n: round(b, 2) for n, b in zip(RUNS, (full_busy, inc_busy, daily_busy), strict=True)
            },
            "load_average_1m": [round(x, 2) for x in load],
            "machine": _machine(),
        }
        md = render(report)
        print(md)
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "incremental.md").write_text(md, encoding="utf-8")
        (RESULTS / "incremental.json").write_text(
            json.dumps(report, indent=2) + "\n", encoding="utf-8"
        )
        return 0
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
