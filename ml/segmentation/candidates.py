"""Segmentation candidates and how each is judged on what happened next.

A candidate is an algorithm with its parameters on one feature set. It is fitted on
the features as of an earlier cut-off and judged by how well its segments separate
what those customers did in the horizon after it: the share of variance of
next-horizon churn (0/1) and of next-horizon revenue explained by the segments
(η², :func:`ml.evaluation.eta_squared`). Bootstrap stability and business
constraints (number of segments, largest segment) complete the picture; internal
indices (silhouette and friends) are diagnostics only, since on skewed RFM data they
favour the trivial one-timer / repeat split.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ml.evaluation import eta_squared
from ml.segmentation.segmenter import without_noise

#: The log-RFM feature set: log recency, frequency and monetary value, scaled.
RFM_FEATURES: tuple[str, ...] = ("recency_days", "frequency", "monetary_total")
#: The RFM grid's cell per customer (dbt's int_customer_rfm_segments): a yardstick.
RFM_GRID_COLUMN = "rfm_segment"
BASELINE_KMEANS_K = 5
#: The baseline K-Means sees every customer (up to this many) with 10 starts, as the
#: plain scikit-learn K-Means it stands for would.
BASELINE_KMEANS_PARAMS = {"n_init": 10, "sample_size": 200_000}
DENSITY = ("hdbscan", "dbscan")


@dataclass(frozen=True)
class Candidate:
    """One segmentation to judge: ``algorithm`` with ``params`` on ``feature_set``."""

    algorithm: str
    feature_set: str
    params: Mapping[str, Any] = field(default_factory=dict)
    baseline: bool = False

    @property
    def name(self) -> str:
        k = self.params.get("n_clusters")
        return f"{self.algorithm}{'' if k is None else f' k={k}'} ({self.feature_set})"


def candidate_grid(
    algorithms: Sequence[str],
    feature_sets: Sequence[str],
    k_range: tuple[int, int],
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Candidate]:
    """Every algorithm at every k of ``k_range`` (density methods: their own search) per
    feature set, plus the log-RFM K-Means baseline (k=5) whatever ``algorithms`` says."""
    params = params or {}
    grid = []
    for fs in feature_sets:
        for a in algorithms:
            extra = dict(params.get(a, {}))
            if a in DENSITY:
                grid.append(Candidate(a, fs, extra))
                continue
            for k in range(k_range[0], k_range[1] + 1):
                grid.append(Candidate(a, fs, {**extra, "n_clusters": k, "compute_scores": False}))
    baseline = Candidate(
        "kmeans",
        "rfm",
        {"n_clusters": BASELINE_KMEANS_K, "compute_scores": False, **BASELINE_KMEANS_PARAMS},
        True,
    )
    grid = [baseline if c.name == baseline.name else c for c in grid]
    if baseline not in grid:
        grid.append(baseline)
    return grid


@dataclass
class Judged:
    """A candidate fitted on the cut-off's prepared features, and its out-of-time figures."""

    candidate: Candidate
    clusterer: Any
    labels: np.ndarray  # noise already moved to the nearest cluster
    row: dict


def judge(
    candidate: Candidate,
    clusterer,
    Xt: np.ndarray,
    churned: np.ndarray,
    revenue: np.ndarray,
) -> Judged:
    """Fit ``clusterer`` on the cut-off's prepared matrix and compute the figures of the
    rule: η² of churn and revenue, segment shares, raw noise share, fit time."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate candidates are judged, not announced
        clusterer.fit(Xt)
    raw = np.asarray(clusterer.labels_, dtype=np.int64)
    labels = without_noise(clusterer, Xt, raw)
    fit_seconds = time.perf_counter() - start
    return Judged(candidate, clusterer, labels, _row(candidate, labels, churned, revenue) | {
        "noise_share": float(np.mean(raw < 0)),
        "fit_seconds": fit_seconds,
        "params": getattr(clusterer, "fixed_params_", {}),
    })  # fmt: skip


def grid_row(grid: pd.Series, churned: np.ndarray, revenue: np.ndarray) -> dict:
    """The RFM grid's figures: its cells judged like a candidate's segments."""
    labels = pd.factorize(grid.fillna("(none)"))[0]
    row = _row(Candidate("rfm_grid", "rfm_segment", baseline=True), labels, churned, revenue)
    return row | {"noise_share": 0.0, "fit_seconds": 0.0, "params": {}}


def _row(candidate: Candidate, labels: np.ndarray, churned, revenue) -> dict:
    sizes = np.bincount(labels - labels.min()) if labels.size else np.zeros(1)
    sizes = sizes[sizes > 0]
    churn_eta = eta_squared(labels, churned)
    revenue_eta = eta_squared(labels, revenue)
    return {
        "candidate": candidate.name,
        "algorithm": candidate.algorithm,
        "feature_set": candidate.feature_set,
        "is_baseline": candidate.baseline,
        "k": candidate.params.get("n_clusters"),
        "n_segments": int(sizes.size),
        "eta2_churn": churn_eta,
        "eta2_revenue": revenue_eta,
        "score": float(np.nanmean([churn_eta, revenue_eta])),
        "max_segment_share": float(sizes.max() / labels.size) if labels.size else 1.0,
        "min_segment_share": float(sizes.min() / labels.size) if labels.size else 0.0,
    }


#: Early stop of the bootstrap (see :func:`bootstrap_stability`): at least this many
#: resamples, and every ARI so far at least ``STABILITY_MARGIN`` away from the threshold.
MIN_RESAMPLES = 2
STABILITY_MARGIN = 0.10


def bootstrap_stability(
    clusterer,
    Xt: np.ndarray,
    eval_idx: np.ndarray,
    n_resamples: int,
    size: int,
    random_state: int,
    threshold: float | None = None,
) -> float:
    """Mean ARI between the fitted labels on ``eval_idx`` and refits on bootstrap resamples.

    Each refit uses the fitted hyper-parameters (``fixed_params_``: k, eps,
    ...) so it measures the algorithm's sensitivity to the data, not to its
    own parameter search. A resample is ``size`` rows drawn with replacement.
    The resamples (rows and refit seeds) come from ``random_state`` alone, so every
    candidate on the same feature matrix is judged on the same resamples (a paired
    comparison; a Ward tree of a resample is built once for all k).

    Early stop: with a ``threshold`` (the rule's ``min_stability``), the bootstrap
    stops once the verdict is clear: after at least :data:`MIN_RESAMPLES` resamples,
    when every ARI so far is at least :data:`STABILITY_MARGIN` above the threshold,
    or every one at least that far below it. The mean is then over the resamples
    run; otherwise over all ``n_resamples``.
    """
    if n_resamples < 1:
        return np.nan
    rng = check_random_state(random_state)
    fixed = clone(clusterer).set_params(**clusterer.fixed_params_)
    if "compute_scores" in fixed.get_params():
        fixed.set_params(compute_scores=False)  # only the model is needed
    reference = clusterer.labels_[eval_idx]
    E = Xt[eval_idx]
    aris = []
    for _ in range(n_resamples):
        rows = rng.randint(0, Xt.shape[0], min(size, Xt.shape[0]))
        fixed.set_params(random_state=int(rng.randint(np.iinfo(np.int32).max)))
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")  # degenerate resamples are allowed to be bad
            refit = fixed.fit(Xt[rows])
            aris.append(adjusted_rand_score(reference, refit.predict(E)))
        if threshold is not None and len(aris) >= MIN_RESAMPLES:
            if min(aris) >= threshold + STABILITY_MARGIN:
                break
            if max(aris) <= threshold - STABILITY_MARGIN:
                break
    return float(np.mean(aris))
