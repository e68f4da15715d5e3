"""The centroid methods' shared base: k chosen on the sample, rows to the nearest centroid.

K-Means and Ward score every k of ``k_range`` on the sample (silhouette,
Calinski-Harabasz, Davies-Bouldin, inertia, bootstrap stability) and choose one by
:func:`select_k`; rows outside the sample go to the nearest of ``cluster_centers_``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.metrics import pairwise_distances_argmin

from ml.clustering.base import (
    DegenerateDataWarning,
    _count_distinct_rows,
    _is_int,
    _SampleAssignClusterer,
)
from ml.clustering.metrics import _stability, cluster_scores

#: Rules for choosing k from the per-k scores (see :func:`select_k`).
K_SELECTION_RULES = ("vote", "silhouette", "calinski_harabasz", "davies_bouldin")
K_SCORE_COLUMNS = [
    "k",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "inertia",
    "stability",
]

_K_SCORE_DTYPES = {"k": np.int64, **{c: np.float64 for c in K_SCORE_COLUMNS[1:]}}


def _empty_k_scores() -> pd.DataFrame:
    return pd.DataFrame(columns=K_SCORE_COLUMNS).astype(_K_SCORE_DTYPES)


def select_k(scores: pd.DataFrame, rule: str = "vote", min_stability: float = 0.0) -> int:
    """The k chosen from per-k scores (one row per k, columns of ``K_SCORE_COLUMNS``).

    Rows whose bootstrap ``stability`` is below ``min_stability`` are dropped
    first (if none is left, the most stable k is used). Then ``rule``:

    * ``"silhouette"`` / ``"calinski_harabasz"``: the highest score;
    * ``"davies_bouldin"``: the lowest score;
    * ``"vote"``: the lowest sum of the three ranks (1 = best) among the kept
      rows, ties to the higher silhouette.

    Remaining ties go to the smaller k.
    """
    kept = scores
    stab = scores["stability"]
    if stab.notna().any():
        kept = scores[~(stab < min_stability)]
        if kept.empty:
            kept = scores[stab == stab.max()]
    sil = kept["silhouette"].fillna(-np.inf)
    ch = kept["calinski_harabasz"].fillna(-np.inf)
    db = kept["davies_bouldin"].fillna(np.inf)
    if rule == "silhouette":
        primary = -sil
    elif rule == "calinski_harabasz":
        primary = -ch
    elif rule == "davies_bouldin":
        primary = db
    else:
        primary = (-sil).rank(method="min") + (-ch).rank(method="min") + db.rank(method="min")
    order = np.lexsort((kept["k"].to_numpy(), -sil.to_numpy(), primary.to_numpy()))
    return int(kept["k"].to_numpy()[order[0]])


class _CentroidClusterer(_SampleAssignClusterer):
    """Rows outside the sample go to the nearest of ``cluster_centers_``."""

    def _assign(self, X: np.ndarray) -> np.ndarray:
        if self.cluster_centers_.shape[0] == 1:
            return np.zeros(X.shape[0], dtype=np.int64)
        return pairwise_distances_argmin(X, self.cluster_centers_).astype(np.int64)

    def _fit_single(self, S: np.ndarray) -> None:
        self.cluster_centers_ = S[:1].copy()
        self.k_scores_ = _empty_k_scores()
        self.fixed_params_ = {"n_clusters": 1}

    def _check_params(self) -> None:
        super()._check_params()
        k_range = tuple(self.k_range)
        if len(k_range) != 2 or not all(_is_int(k) for k in k_range):
            raise ValueError(f"k_range must be a pair of ints, got {self.k_range!r}")
        k_min, k_max = int(k_range[0]), int(k_range[1])
        if not 2 <= k_min <= k_max:
            raise ValueError(f"k_range must satisfy 2 <= min <= max, got {self.k_range!r}")
        if self.n_clusters is not None and not (_is_int(self.n_clusters) and self.n_clusters >= 1):
            raise ValueError(f"n_clusters must be None or an int >= 1, got {self.n_clusters!r}")
        if self.k_selection not in K_SELECTION_RULES:
            raise ValueError(
                f"k_selection must be one of {K_SELECTION_RULES}, got {self.k_selection!r}"
            )
        if not (_is_int(self.n_resamples) and self.n_resamples >= 0):
            raise ValueError(f"n_resamples must be an int >= 0, got {self.n_resamples!r}")
        self._k_bounds = (k_min, k_max)

    def _candidate_ks(self, S: np.ndarray) -> list[int]:
        """The k values to evaluate on the sample ``S`` (capped by its distinct rows)."""
        k_min, k_max = self._k_bounds
        n_distinct = _count_distinct_rows(S)
        if self.n_clusters is not None:
            k = int(self.n_clusters)
            if n_distinct < k:
                warnings.warn(
                    f"n_clusters={k} but the data has only {n_distinct} distinct rows; "
                    f"using {n_distinct} clusters",
                    DegenerateDataWarning,
                    stacklevel=4,
                )
            return [min(k, n_distinct)]
        cap = min(n_distinct, k_max)
        ks = list(range(min(k_min, cap), cap + 1))
        if cap < k_max:
            warnings.warn(
                f"k_range={self.k_range!r} reduced to {ks[0]}..{cap}: the sample has "
                f"{S.shape[0]} rows, {n_distinct} distinct",
                DegenerateDataWarning,
                stacklevel=4,
            )
        return ks

    def _choose(self, X, S: np.ndarray, ks: list[int], labelings, inertias, refit, rng) -> int:
        """Score every k on ``S``, store ``k_scores_`` and return the chosen position."""
        if not self.compute_scores and len(ks) == 1:
            self.k_scores_ = _empty_k_scores()
            return 0
        scored = [i for i, k in enumerate(ks) if 2 <= k <= S.shape[0] - 1]

        def refit_scored(R: np.ndarray) -> list[np.ndarray]:
            labelings_b = refit(R)
            return [labelings_b[i] for i in scored]

        stab = _stability(
            refit_scored,
            X,
            S,
            [labelings[i] for i in scored],
            self.n_resamples if scored else 0,
            rng,
        )
        scores = cluster_scores(S, [labelings[i] for i in scored])
        rows = [
            {"k": ks[i], **s, "inertia": inertias[i], "stability": st}
            for i, s, st in zip(scored, scores, stab, strict=True)
        ]
        self.k_scores_ = pd.DataFrame(rows, columns=K_SCORE_COLUMNS).astype(_K_SCORE_DTYPES)
        if len(ks) == 1 or self.k_scores_.empty:
            return 0
        return ks.index(select_k(self.k_scores_, self.k_selection, self.min_stability))
