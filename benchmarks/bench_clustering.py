"""Segmentation benchmark: all four candidates with selection, then K-Means scoring.

Reads ``features.customer_features`` from a warehouse built by the real
pipeline (``--warehouse``), or generates demo data with ``--customers``
customers and runs the pipeline first (that part is not timed here; 1,000,000
customers take ~16 min and ~7 GB). Then it times

* ``ml.segmentation.fit_candidates`` (feature preparation, K-Means, Ward,
  HDBSCAN, DBSCAN, evaluation sample, bootstrap stability, naming, profiles);
* saving and loading the K-Means model and scoring every customer with it
  (``score_customers``: fitted preparation + nearest centroid, no refit);

and reports the peak memory of the process (sampled every 50 ms), the
candidates table and, for demo data, the adjusted Rand index of every
candidate against the generator's planted personas. Results go to
``benchmarks/results/clustering_<label or customers>.{md,json}``.

    .venv/bin/python benchmarks/bench_clustering.py --warehouse DIR/warehouse.duckdb
    .venv/bin/python benchmarks/bench_clustering.py --customers 1000000 [--workdir DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd
import psutil
from peak_rss import PeakRSS
from sklearn.metrics import adjusted_rand_score

from ml.segmentation import fit_candidates, load_model, save_model, score_customers

RESULTS = Path(__file__).parent / "results"


def _build_warehouse(workdir: Path, customers: int, seed: int) -> Path:
    from orchestration.cli import run_pipeline
    from orchestration.demo import generate
    from orchestration.settings import Settings

    t0 = time.perf_counter()
    generate(workdir / "demo_data", customers=customers, seed=seed)
    result = run_pipeline(Settings(workdir=str(workdir)), stream=io.StringIO())
    if not result.success:
        raise SystemExit(f"pipeline failed; logs in {workdir / 'logs' / 'last_run.log'}")
    print(
        f"built customer_features for {customers:,} customers in {time.perf_counter() - t0:.0f} s"
    )
    return workdir / "warehouse.duckdb"


def _personas(warehouse: Path, ids: pd.Series) -> pd.Series | None:
    path = warehouse.parent / "demo_data" / "ground_truth" / "personas.csv"
    if not path.exists():
        return None
    truth = pd.read_csv(path, dtype=str).set_index("customer_id")["persona"]
    return truth.reindex(ids.astype(str)).reset_index(drop=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--warehouse", type=Path, help="DuckDB file with features.customer_features")
    ap.add_argument(
        "--customers", type=int, default=1_000_000, help="demo size without --warehouse"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", default=None, help="for the generated data; default a temp dir")
    ap.add_argument("--label", default=None, help="results file name part; default the row count")
    args = ap.parse_args()

    tmp = None
    warehouse = args.warehouse
    if warehouse is None:
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="custseg-bench-seg-"))
        tmp = None if args.workdir else workdir
        warehouse = _build_warehouse(workdir, args.customers, args.seed)
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            features = con.sql("select * from features.customer_features order by customer_id").df()
        n = len(features)
        load_avg = os.getloadavg()[0]
        rss_before = psutil.Process().memory_info().rss
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            result = fit_candidates(features)
            t_select = time.perf_counter() - t0

            kmeans = result.models["kmeans"]
            store = Path(tempfile.mkdtemp(prefix="custseg-models-"))
            t0 = time.perf_counter()
            save_model(kmeans, store, features_df=features, version="bench")
            t_save = time.perf_counter() - t0
            t0 = time.perf_counter()
            loaded, _ = load_model(store)
            t_load = time.perf_counter() - t0
            t0 = time.perf_counter()
            scored = score_customers(loaded, features)
            t_score = time.perf_counter() - t0
            model_mb = (store / "bench" / "model.joblib").stat().st_size / 2**20
            shutil.rmtree(store, ignore_errors=True)
        assert len(scored) == n and (scored["cluster_id"].to_numpy() == kmeans.labels_).all()

        table = result.candidates.copy()
        truth = _personas(warehouse, features["customer_id"])
        if truth is not None:
            table["ari_vs_personas"] = [
                adjusted_rand_score(truth, result.models[a].labels_) for a in table["algorithm"]
            ]
        report = {
            "customers": n,
            "selection_s": round(t_select, 2),
            "preprocess_s": round(result.preprocess_seconds, 2),
            "kmeans_scoring_s": round(t_score, 2),
            "model_save_s": round(t_save, 2),
            "model_load_s": round(t_load, 2),
            "model_file_mb": round(model_mb, 1),
            "peak_rss_mb": round(mem.peak / 2**20),
            "rss_before_mb": round(rss_before / 2**20),
            "production": result.chosen,
            "reason": result.reason,
            "candidates": json.loads(table.to_json(orient="records")),
            "load_average_1min_at_start": round(load_avg, 2),
            "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        }
        shown = table.drop(columns=["note"]).round(3)
        lines = [
            f"# Segmentation benchmark: {n:,} customers ({args.label or warehouse.parent.name})",
            "",
            f"Machine: {report['machine']} (1-min load average at start: {load_avg:.2f})",
            "",
            "| step | seconds |",
            "|---|---:|",
            f"| feature preparation (fit + transform) | {result.preprocess_seconds:.1f} |",
            f"| **all four candidates with selection** | **{t_select:.1f}** |",
            f"| save K-Means model ({model_mb:.1f} MB) | {t_save:.1f} |",
            f"| load K-Means model | {t_load:.1f} |",
            f"| **K-Means scoring of every customer** | **{t_score:.1f}** |",
            "",
            f"Peak memory of the process: {report['peak_rss_mb']:,} MB "
            f"({report['rss_before_mb']:,} MB before, with the feature table loaded)",
            "",
            f"Production: **{result.chosen}** - {result.reason}",
            "",
            shown.to_markdown(index=False),
        ]
        md = "\n".join(lines) + "\n"
        print(md)
        RESULTS.mkdir(exist_ok=True)
        stem = RESULTS / f"clustering_{args.label or n}"
        stem.with_suffix(".md").write_text(md, encoding="utf-8")
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        return 0
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
