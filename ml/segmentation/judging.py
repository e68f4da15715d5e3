"""Judging the segmentation candidates out of time: each fitted on the evaluation
cut-off's features, its segments scored on the horizon that followed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score
from sklearn.utils import check_random_state

from ml.clustering import cluster_scores, proportional_size, stratified_sample
from ml.segmentation.candidates import RFM_GRID_COLUMN, grid_row, judge
from ml.segmentation.segmenter import ID_COLUMN, CustomerSegmenter, make_clusterer
from ml.store import jsonable
from ml.threads import in_parallel, one_native_thread

#: Columns of the judge frame besides the cut-off's features.
CHURN_OUTCOME, REVENUE_OUTCOME = "churned", "spend_in_horizon"
MIN_JUDGED_CUSTOMERS = 100
#: Judged customers from which the candidates are fitted in parallel.
PARALLEL_ROWS = 20_000


def why_not_judged(frame: pd.DataFrame | None) -> str:
    if frame is None:
        return "no evaluation cut-off with a complete horizon"
    if len(frame) < MIN_JUDGED_CUSTOMERS:
        return f"{len(frame)} customers at the evaluation cut-off (< {MIN_JUDGED_CUSTOMERS})"
    if frame[CHURN_OUTCOME].astype(bool).nunique() < 2:
        return "every customer at the evaluation cut-off had the same churn outcome"
    return ""


def judge_all(grid, sets, set_args, segmenter_args, frame, eval_size, random_state, truth):
    """Fit and judge every candidate on the cut-off's features; figures, fits, elbow.

    The candidates are independent fits: from :data:`PARALLEL_ROWS` customers on they
    run on one thread per core (:func:`ml.threads.in_parallel`).
    """
    churned = frame[CHURN_OUTCOME].astype(float).to_numpy()
    revenue = frame[REVENUE_OUTCOME].astype(float).to_numpy()
    cutoff = pd.Timestamp(frame["as_of_date"].max()).date() if "as_of_date" in frame else None
    rows, judged, prepared = [], {}, {}
    if RFM_GRID_COLUMN in frame.columns:
        rows.append(grid_row(frame[RFM_GRID_COLUMN], churned, revenue))
    for fs, columns in sets.items():
        Xt = CustomerSegmenter(features=columns, **set_args[fs], **segmenter_args).prepare(frame)
        size = proportional_size(len(Xt), eval_size)
        prepared[fs] = (Xt, stratified_sample(Xt, size, check_random_state(random_state)))

    def fit(c):
        clusterer = make_clusterer(c.algorithm, **{"random_state": random_state, **c.params})
        return judge(c, clusterer, prepared[c.feature_set][0], churned, revenue)

    ours = [c for fs in sets for c in grid if c.feature_set == fs]
    codes = truth_codes(frame[ID_COLUMN], truth)
    fitted = in_parallel(fit, ours, n_rows=len(frame), min_rows=PARALLEL_ROWS)
    for c, j in zip(ours, fitted, strict=True):
        Xt, eval_idx = prepared[c.feature_set]
        j.row["ari_vs_ground_truth"] = ari_vs_truth(codes, j.labels)
        j.row["inertia"] = getattr(j.clusterer, "inertia_", np.nan)
        judged[c.name] = {"judged": j, "Xt": Xt, "eval_idx": eval_idx}
        rows.append(j.row)
    for fs, (Xt, eval_idx) in prepared.items():
        in_set = [c for c in ours if c.feature_set == fs]
        with one_native_thread():  # small work, shared cores (see ml.clustering.base)
            diagnostics = cluster_scores(
                Xt[eval_idx], [judged[c.name]["judged"].labels[eval_idx] for c in in_set]
            )
        for c, d in zip(in_set, diagnostics, strict=True):
            judged[c.name]["judged"].row.update(d)
    table = pd.DataFrame(rows)
    table["params"] = [json.dumps(jsonable(p), sort_keys=True) for p in table["params"]]
    return table, judged, cutoff


def truth_codes(ids: pd.Series, truth: pd.Series | None) -> np.ndarray | None:
    """The ground-truth segment of each id as an integer code (-1: unknown), or None.

    Aligned once per frame: every candidate's agreement is then a comparison of
    integer arrays (:func:`ari_vs_truth`).
    """
    if truth is None:
        return None
    truth = truth.copy()
    truth.index = truth.index.astype(str)
    if truth.index.duplicated().any():
        raise ValueError("ground_truth has duplicate customer ids")
    known = truth.reindex(ids.astype(str).to_numpy())
    return pd.factorize(known, use_na_sentinel=True)[0]


def ari_vs_truth(codes: np.ndarray | None, labels: np.ndarray) -> float:
    """Adjusted Rand index of ``labels`` against :func:`truth_codes` (NaN without truth)."""
    if codes is None:
        return np.nan
    mask = codes >= 0
    if not mask.any():
        return np.nan
    return float(adjusted_rand_score(codes[mask], labels[mask]))
