"""Sample-and-assign clustering (ml/clustering/) vs scikit-learn fitted on all rows.

On the prepared customer matrix of a pipeline run, for each candidate algorithm:

1. ours with its own parameter search (k / eps / min_cluster_size), as in production;
2. ours again with the parameters it found fixed: stratified sample + assign everyone;
3. the scikit-learn estimator with the same parameters fitted on *all* rows, in a
   child process stopped after ``time_limit`` seconds or above ``mem_limit_gb`` of
   resident memory (Ward is not started when its condensed distance matrix alone,
   n(n-1)/2 doubles, would not fit), with the adjusted Rand index between its labels
   and ours.

The child mode (``--child``) is that scikit-learn fit; it is not for direct use.
"""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

ALGORITHMS = ("kmeans", "ward", "hdbscan", "dbscan")


def _sklearn(algorithm: str, params: dict):
    from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering, KMeans

    if algorithm == "kmeans":
        return KMeans(params["n_clusters"], n_init=4, random_state=0)
    if algorithm == "ward":
        return AgglomerativeClustering(params["n_clusters"], linkage="ward")
    if algorithm == "hdbscan":
        return HDBSCAN(
            min_cluster_size=params["min_cluster_size"], min_samples=params["min_samples"]
        )
    return DBSCAN(eps=params["eps"], min_samples=params["min_samples"])


def _child(algorithm: str, params: str, x_path: str, out_path: str) -> None:
    X = np.load(x_path)
    t0 = time.perf_counter()
    labels = _sklearn(algorithm, json.loads(params)).fit(X).labels_
    seconds = time.perf_counter() - t0
    np.save(out_path, labels)
    print(json.dumps({"seconds": seconds}))


def _limit_memory(limit_bytes: int) -> None:
    # safety net under the RSS watchdog: address space (not resident) cap
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def full_fit(algorithm: str, params: dict, X: np.ndarray, time_limit: float, mem_limit_gb: float):
    """(result dict, labels or None) of scikit-learn on all rows in a watched child."""
    mem_limit = int(mem_limit_gb * 2**30)
    n = X.shape[0]
    if algorithm == "ward" and n * (n - 1) / 2 * 8 > mem_limit:
        need = n * (n - 1) / 2 * 8 / 2**30
        return {"status": f"not run: the distance matrix alone needs {need:,.0f} GB"}, None
    with tempfile.TemporaryDirectory() as tmp:
        x_path, out_path = Path(tmp) / "X.npy", Path(tmp) / "labels.npy"
        np.save(x_path, X)
        cmd = [sys.executable, __file__, "--child", algorithm, json.dumps(params)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [*cmd, str(x_path), str(out_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: _limit_memory(mem_limit + 3 * 2**30),
        )
        child, peak, status = psutil.Process(proc.pid), 0, None
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                peak = max(peak, child.memory_info().rss)
            elapsed = time.perf_counter() - t0
            if elapsed > time_limit:
                status = f"did not finish in {time_limit:.0f} s"
            elif peak > mem_limit:
                status = f"stopped above {mem_limit_gb:g} GB after {elapsed:.0f} s"
            if status:
                proc.kill()
                proc.wait()
                return {"status": status, "peak_rss_mb": round(peak / 2**20)}, None
            time.sleep(0.1)
        out, err = proc.communicate()
        if proc.returncode != 0:
            return {"status": f"failed: {err.strip().splitlines()[-1][:200]}"}, None
        result = {
            "status": "finished",
            "seconds": round(json.loads(out.strip().splitlines()[-1])["seconds"], 2),
            "peak_rss_mb": round(peak / 2**20),
        }
        return result, np.load(out_path)


def run(
    features: pd.DataFrame,
    time_limit: float = 120.0,
    mem_limit_gb: float = 6.0,
    skip: dict[str, str] | None = None,
) -> dict:
    """Compare on ``features`` (features.customer_features); ``skip``: algorithm -> reason."""
    from sklearn.metrics import adjusted_rand_score

    from ml.segmentation import CustomerSegmenter, make_clusterer

    skip = skip or {}
    X = CustomerSegmenter()._fit_preprocessor(features)
    report = {"customers": int(X.shape[0]), "features": int(X.shape[1]), "algorithms": {}}
    for algorithm in ALGORITHMS:
        t0 = time.perf_counter()
        searched = make_clusterer(algorithm, random_state=0).fit(X)
        search_s = time.perf_counter() - t0
        params = {
            k: (v.item() if hasattr(v, "item") else v) for k, v in searched.fixed_params_.items()
        }
        t0 = time.perf_counter()
        plain = {"compute_scores": False} if algorithm in ("kmeans", "ward") else {}
        ours = make_clusterer(algorithm, random_state=0, **params, **plain).fit(X)
        fixed_s = time.perf_counter() - t0
        row = {
            "params": params,
            "ours_with_search_s": round(search_s, 2),
            "ours_fixed_s": round(fixed_s, 2),
            "ours_segments": int(ours.n_clusters_),
        }
        if algorithm in skip:
            row["full"] = {"status": skip[algorithm]}
        else:
            row["full"], labels = full_fit(algorithm, params, X, time_limit, mem_limit_gb)
            if labels is not None:
                row["full"]["ari_vs_ours"] = round(
                    float(adjusted_rand_score(labels, ours.labels_)), 3
                )
                row["full"]["segments"] = int(len(np.unique(labels[labels >= 0])))
        report["algorithms"][algorithm] = row
        print(f"  clustering {algorithm}: {row}", flush=True)
    return report


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        _child(*sys.argv[2:])
    else:
        raise SystemExit(__doc__)
