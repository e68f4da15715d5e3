"""Clustering algorithms on the prepared feature matrix, with sample-and-assign.

The estimators here take the *preprocessed* numeric matrix (see
:mod:`ml.features`); :class:`ml.segmentation.CustomerSegmenter` puts them
behind the feature preparation and turns their labels into named segments.

=====================  ============================================================
:class:`SampledKMeans`  k over ``k_range`` chosen on a sample by silhouette,
                        Calinski-Harabasz and Davies-Bouldin (and bootstrap
                        stability), then Lloyd iterations on every row.
:class:`SampledWard`    Ward agglomerative clustering of a sample (k chosen like
                        k-means); other rows go to the nearest cluster centroid.
:class:`SampledDBSCAN`  DBSCAN of a sample with ``eps`` at the knee of the sorted
                        k-distance curve; other rows go to the nearest core
                        sample within ``eps``, else noise.
:class:`SampledHDBSCAN` scikit-learn's HDBSCAN of a sample; other rows go to the
                        nearest clustered sample point within that point's core
                        distance, else noise.
=====================  ============================================================

Why samples: Ward, DBSCAN, HDBSCAN and the silhouette are super-linear in rows,
so they see a stratified sample of ``sample_size`` rows (:func:`stratified_sample`)
and every other row is *assigned*, which is linear. Rows of the sample keep the
label the algorithm gave them. Noise (label ``-1``) is a label like any other
here; the segmenter reports it as its own segment.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.cluster.hierarchy import ward as ward_linkage
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import DBSCAN, HDBSCAN, KMeans
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
    pairwise_distances_argmin,
)
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

__all__ = [
    "K_SELECTION_RULES",
    "DegenerateDataWarning",
    "SampledDBSCAN",
    "SampledHDBSCAN",
    "SampledKMeans",
    "SampledWard",
    "cluster_scores",
    "knee_index",
    "stratified_sample",
]

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


# Size (in float64 elements) of one block of the distance matrix in
# _silhouette_scores: 8e6 * 8 bytes = 64 MB.
_SILHOUETTE_BLOCK_ELEMENTS = 8_000_000
# Rows per block when assigning rows to density-method components.
_ASSIGN_BLOCK_ROWS = 200_000


class DegenerateDataWarning(UserWarning):
    """The data cannot support the requested clustering; a fallback was used."""


# --------------------------------------------------------------------------- #
# metrics, sampling, knee
# --------------------------------------------------------------------------- #
def _silhouette_scores(X: np.ndarray, labelings: Sequence[np.ndarray]) -> list[float]:
    """Mean silhouette coefficient (Euclidean) of several labelings of ``X``.

    Equivalent to ``sklearn.metrics.silhouette_score(X, labels)`` for each
    labeling, but the O(n^2) pairwise distances are computed once, block by
    block, and shared by all labelings: for a block of rows the distances to
    every point are multiplied by the stacked one-hot label matrices, which
    gives the sum of distances to each cluster for every labeling at once.

    Each labeling must have 2 <= n_labels <= n_samples - 1.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    codes, counts, offsets = [], [], [0]
    for labels in labelings:
        _, code, count = np.unique(labels, return_inverse=True, return_counts=True)
        codes.append(code.ravel())
        counts.append(count.astype(np.float64))
        offsets.append(offsets[-1] + len(count))
    onehot = np.zeros((n, offsets[-1]))
    for j, code in enumerate(codes):
        onehot[np.arange(n), offsets[j] + code] = 1.0

    sq_norms = np.einsum("ij,ij->i", X, X)
    block = max(1, _SILHOUETTE_BLOCK_ELEMENTS // max(n, 1))
    totals = np.zeros(len(codes))
    for start in range(0, n, block):
        stop = min(n, start + block)
        rows = np.arange(start, stop)
        d2 = sq_norms[start:stop, None] - 2.0 * (X[start:stop] @ X.T) + sq_norms[None, :]
        np.maximum(d2, 0.0, out=d2)
        d2[rows - start, rows] = 0.0  # exact zero self-distance
        dist_sums = np.sqrt(d2, out=d2) @ onehot  # (block, total number of clusters)
        for j, (code, count) in enumerate(zip(codes, counts, strict=True)):
            sums = dist_sums[:, offsets[j] : offsets[j + 1]]
            own = code[start:stop]
            own_size = count[own]
            a = sums[rows - start, own] / np.maximum(own_size - 1.0, 1.0)
            means = sums / count[None, :]
            means[rows - start, own] = np.inf
            b = means.min(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                s = (b - a) / np.maximum(a, b)
            s = np.where(own_size > 1, np.nan_to_num(s), 0.0)  # singleton cluster -> 0
            totals[j] += s.sum()
    return list(totals / n)


def cluster_scores(X: np.ndarray, labelings: Sequence[np.ndarray]) -> list[dict[str, float]]:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin of labelings of ``X``.

    Every distinct label (noise ``-1`` included) counts as a cluster. A
    labeling with fewer than 2 or more than ``n - 1`` clusters gets NaN.
    The silhouettes of all labelings share one O(n^2) pass.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    valid = [2 <= len(np.unique(lab)) <= n - 1 for lab in labelings]
    if not any(valid):
        nan = {"silhouette": np.nan, "calinski_harabasz": np.nan, "davies_bouldin": np.nan}
        return [dict(nan) for _ in labelings]
    sils = iter(
        _silhouette_scores(X, [lab for lab, ok in zip(labelings, valid, strict=True) if ok])
    )
    out = []
    for lab, ok in zip(labelings, valid, strict=True):
        if not ok:
            out.append(
                {"silhouette": np.nan, "calinski_harabasz": np.nan, "davies_bouldin": np.nan}
            )
            continue
        out.append(
            {
                "silhouette": float(next(sils)),
                "calinski_harabasz": float(calinski_harabasz_score(X, lab)),
                "davies_bouldin": float(davies_bouldin_score(X, lab)),
            }
        )
    return out


def stratified_sample(
    X: np.ndarray, size: int, random_state: Any = None, n_bins: int = 10
) -> np.ndarray:
    """Sorted row indices of a stratified random sample of ``size`` rows.

    Strata are the cells of an ``n_bins`` x ``n_bins`` grid of quantiles
    (deciles by default) of the first two principal components of ``X``, so
    the sample covers the whole shape of the data (dense core, sparse tails
    and small groups) in exact proportion rather than up to sampling noise.
    Allocation is proportional (largest remainder, ties to the lower stratum),
    rows within a stratum are drawn uniformly. With ``size >= len(X)`` every
    row is returned.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if size >= n:
        return np.arange(n)
    rng = check_random_state(random_state)
    centred = X - X.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    strata = np.zeros(n, dtype=np.int64)
    for j in range(min(2, X.shape[1])):
        proj = centred @ vectors[:, -1 - j]
        edges = np.quantile(proj, np.linspace(0, 1, n_bins + 1)[1:-1])
        strata = strata * n_bins + np.searchsorted(edges, proj, side="right")
    counts = np.bincount(strata)
    quota = counts * (size / n)
    alloc = np.floor(quota).astype(np.int64)
    short = size - alloc.sum()
    alloc[np.lexsort((np.arange(len(quota)), -(quota - alloc)))[:short]] += 1
    order = np.lexsort((rng.random_sample(n), strata))  # random order within stratum
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[strata[order]]
    return np.flatnonzero(rank < alloc[strata])


def knee_index(y: ArrayLike) -> int:
    """Index of the knee of an increasing, convex curve (e.g. sorted k-distances).

    The curve is scaled to the unit square; the knee is the point farthest
    below the chord from the first to the last point (Kneedle). A flat curve
    gives the last index.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[0]
    span = y[-1] - y[0] if n else 0.0
    if n < 3 or span <= 0:
        return max(n - 1, 0)
    x = np.linspace(0.0, 1.0, n)
    return int(np.argmax(x - (y - y[0]) / span))


def _count_distinct_rows(X: np.ndarray) -> int:
    """Number of distinct rows of a 2-D array."""
    if X.shape[0] == 0:
        return 0
    return int(np.unique(X, axis=0).shape[0])


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _stability(
    fit_predict: Callable[[np.ndarray], list[np.ndarray]],
    pool: np.ndarray,
    S: np.ndarray,
    references: list[np.ndarray],
    n_resamples: int,
    rng: np.random.RandomState,
) -> list[float]:
    """Mean ARI between each reference labeling of ``S`` and refits on bootstraps.

    Each resample has ``len(S)`` rows drawn with replacement from ``pool``
    (all rows, so a resample is not mostly the sample itself);
    ``fit_predict(R)`` fits on resample ``R`` and returns one labeling of
    ``S`` per reference.
    """
    if n_resamples < 1:
        return [np.nan] * len(references)
    aris = np.zeros((n_resamples, len(references)))
    for b in range(n_resamples):
        R = pool[rng.randint(0, pool.shape[0], S.shape[0])]
        for j, labels in enumerate(fit_predict(R)):
            aris[b, j] = adjusted_rand_score(references[j], labels)
    return list(aris.mean(axis=0))


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


# --------------------------------------------------------------------------- #
# shared base
# --------------------------------------------------------------------------- #
class _SampleAssignClusterer(ClusterMixin, BaseEstimator):
    """Fit on a stratified sample, assign every row; subclasses fill the gaps.

    Subclasses implement ``_fit_sample(S, X, rng) -> labels of S`` (setting
    their own fitted attributes; ``X`` = all rows, e.g. to draw resamples), ``_assign(X) -> labels`` and
    ``_fit_single(S)`` for data with a single distinct row; algorithms that
    are linear in rows may refine on all rows in ``_fit_all_rows``. ``fit``
    sets ``sample_indices_``, ``labels_`` (sample rows keep their fitted
    label, the others are assigned), ``n_clusters_`` (clusters other than
    noise) and ``noise_share_``.
    """

    def _check_params(self) -> None:
        if not (_is_int(self.sample_size) and self.sample_size >= 3):
            raise ValueError(f"sample_size must be an int >= 3, got {self.sample_size!r}")

    def fit(self, X: ArrayLike, y: None = None):
        """Fit on a stratified sample of ``X`` and label every row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Preprocessed features (no missing values).
        y : None
            Ignored.

        Returns
        -------
        self
            The fitted estimator.
        """
        self._check_params()
        X = validate_data(self, X, dtype=np.float64)
        rng = check_random_state(self.random_state)
        idx = stratified_sample(X, self.sample_size, rng)
        S = X[idx]
        self.sample_indices_ = idx
        self._single = _count_distinct_rows(S) < 2
        if self._single:
            warnings.warn(
                "all sampled rows have identical features; using a single cluster",
                DegenerateDataWarning,
                stacklevel=2,
            )
            self._fit_single(S)
            self.labels_ = np.zeros(X.shape[0], dtype=np.int64)
        else:
            # Work on the sample is small: one thread is as fast and, unlike
            # OpenMP/BLAS thread pools, does not collapse when other processes
            # share the cores (measured 17x slower with 2 threads under load).
            with threadpool_limits(limits=1):
                sample_labels = self._fit_sample(S, X, rng)
            sample_labels = self._fit_all_rows(X, S, sample_labels)
            labels = np.empty(X.shape[0], dtype=np.int64)
            rest = np.ones(X.shape[0], dtype=bool)
            rest[idx] = False
            if rest.any():
                labels[rest] = self._assign(X[rest])
            labels[idx] = sample_labels
            self.labels_ = labels
        self.n_clusters_ = int(len(np.unique(self.labels_[self.labels_ >= 0])))
        self.noise_share_ = float(np.mean(self.labels_ < 0))
        return self

    def _fit_all_rows(self, X: np.ndarray, S: np.ndarray, sample_labels: np.ndarray):
        """Hook for algorithms that refine on all rows; returns the sample labels."""
        return sample_labels

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Assign rows to the fitted clusters (``-1`` = noise for density methods).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Preprocessed features.

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype int64
            Cluster of each row.
        """
        check_is_fitted(self, "labels_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        if self._single:
            return np.zeros(X.shape[0], dtype=np.int64)
        return self._assign(X)


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


# --------------------------------------------------------------------------- #
# k-means
# --------------------------------------------------------------------------- #
class SampledKMeans(_CentroidClusterer):
    """K-means with k chosen on a stratified sample.

    For each k in ``k_range`` k-means is fitted on the sample and scored there:
    silhouette, Calinski-Harabasz, Davies-Bouldin, inertia (the elbow curve)
    and bootstrap stability (mean adjusted Rand index, on the sample, between
    the sample labels and k-means refitted on ``n_resamples`` bootstrap
    resamples: sample-sized draws with replacement from all rows). k is
    chosen by :func:`select_k`. The chosen model is then refined
    with Lloyd iterations on *all* rows, warm-started from the sample
    centroids (k-means is linear in rows), and every row gets its nearest
    final centroid.

    Parameters
    ----------
    n_clusters : int, default=None
        Fixed k; skips the choice (the scores are still computed for it).
    k_range : tuple of (int, int), default=(2, 8)
        Smallest and largest k tried (inclusive).
    k_selection : {"vote", "silhouette", "calinski_harabasz", "davies_bouldin"}, default="vote"
        Rule of :func:`select_k`.
    min_stability : float, default=0.75
        k values less stable than this are not chosen (unless none is).
    n_resamples : int, default=5
        Bootstrap resamples per k for the stability (0 = not computed).
    sample_size : int, default=10000
        Rows of the stratified sample on which k is chosen.
    n_init : int, default=4
        k-means++ initialisations per fit on the sample.
    compute_scores : bool, default=True
        With a fixed ``n_clusters``, False skips the scores (``k_scores_`` is
        empty): a plain fit, as used for bootstrap refits.
    random_state : int, RandomState instance or None, default=0
        Seed for the sample, the resamples and k-means.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        Final centroids.
    labels_ : ndarray of shape (n_samples,)
        Index of the nearest centroid of each row.
    n_clusters_ : int
        Number of clusters.
    inertia_ : float
        Sum of squared distances of all rows to their centroid.
    k_scores_ : DataFrame
        One row per evaluated k (columns ``k``, ``silhouette``,
        ``calinski_harabasz``, ``davies_bouldin``, ``inertia``, ``stability``),
        all computed on the sample; ``inertia`` is the elbow curve.
    sample_indices_ : ndarray
        Rows of the sample.
    noise_share_ : float
        Always 0.0.
    fixed_params_ : dict
        ``{"n_clusters": k}``: refits the chosen model without choosing k.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    """

    def __init__(
        self,
        n_clusters: int | None = None,
        k_range: tuple[int, int] = (2, 8),
        k_selection: str = "vote",
        min_stability: float = 0.75,
        n_resamples: int = 5,
        sample_size: int = 10_000,
        n_init: int = 4,
        compute_scores: bool = True,
        random_state: int | np.random.RandomState | None = 0,
    ):
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.k_selection = k_selection
        self.min_stability = min_stability
        self.n_resamples = n_resamples
        self.sample_size = sample_size
        self.n_init = n_init
        self.compute_scores = compute_scores
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        if not (_is_int(self.n_init) and self.n_init >= 1):
            raise ValueError(f"n_init must be an int >= 1, got {self.n_init!r}")

    def fit(self, X: ArrayLike, y: None = None) -> SampledKMeans:
        """Choose k on a sample, then fit k-means on all rows (see the class docstring)."""
        super().fit(X)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        self.inertia_ = float(((X - self.cluster_centers_[self.labels_]) ** 2).sum())
        return self

    def _fit_sample(self, S: np.ndarray, X: np.ndarray, rng) -> np.ndarray:
        ks = self._candidate_ks(S)
        seed = int(rng.randint(np.iinfo(np.int32).max))

        def kmeans(k: int) -> KMeans:
            return KMeans(k, n_init=self.n_init, random_state=seed)

        fits = [kmeans(k).fit(S) for k in ks]

        def refit(R: np.ndarray) -> list[np.ndarray]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # fewer distinct rows than k in a resample
                return [kmeans(k).fit(R).predict(S) for k in ks]

        labelings = [f.labels_ for f in fits]
        inertias = [f.inertia_ for f in fits]
        best = fits[self._choose(X, S, ks, labelings, inertias, refit, rng)]
        self.cluster_centers_ = np.asarray(best.cluster_centers_, dtype=np.float64)
        self.fixed_params_ = {"n_clusters": int(best.n_clusters)}
        return best.labels_

    def _fit_all_rows(self, X: np.ndarray, S: np.ndarray, sample_labels: np.ndarray):
        if S.shape[0] < X.shape[0]:
            # Lloyd refinement on all rows, warm-started from the sample centroids
            k = self.cluster_centers_.shape[0]
            final = KMeans(k, init=self.cluster_centers_, n_init=1).fit(X)
            self.cluster_centers_ = np.asarray(final.cluster_centers_, dtype=np.float64)
        # every row (sample rows included) is labelled by its nearest final centroid
        return self._assign(S)


# --------------------------------------------------------------------------- #
# Ward
# --------------------------------------------------------------------------- #
def _cut_tree(Z: np.ndarray, ks: Sequence[int]) -> list[np.ndarray]:
    """Flat labels (0..k-1) of the leaves of linkage ``Z`` cut into exactly k clusters.

    Exact even with tied merge heights (unlike ``fcluster(..., "maxclust")``).
    """
    m = Z.shape[0] + 1
    parent = np.full(2 * m - 1, 2 * m, dtype=np.int64)
    children = Z[:, :2].astype(np.int64)
    parent[children[:, 0]] = np.arange(m, 2 * m - 1)
    parent[children[:, 1]] = np.arange(m, 2 * m - 1)
    parent_list = parent.tolist()
    out = []
    for k in ks:
        limit = 2 * m - k  # nodes created by the first m - k merges have ids < limit
        root = list(range(2 * m - 1))
        for node in range(limit - 1, -1, -1):  # parents before children
            p = parent_list[node]
            if p < limit:
                root[node] = root[p]
        _, labels = np.unique(np.asarray(root[:m]), return_inverse=True)
        out.append(labels.astype(np.int64))
    return out


class SampledWard(_CentroidClusterer):
    """Ward agglomerative clustering of a stratified sample, centroid assignment.

    The Ward tree of the sample is cut at every k of ``k_range``; each cut is
    scored on the sample (as in :class:`SampledKMeans`; the bootstrap
    stability builds the tree of each resample and assigns the sample to that
    tree's centroids) and k is chosen by :func:`select_k`. Rows of the
    sample keep their tree label; every other row goes to the nearest cluster
    centroid (Ward minimises within-cluster variance, so centroids summarise
    its clusters).

    Parameters
    ----------
    n_clusters : int, default=None
        Fixed k; skips the choice.
    k_range : tuple of (int, int), default=(2, 8)
        Smallest and largest k tried (inclusive).
    k_selection : {"vote", "silhouette", "calinski_harabasz", "davies_bouldin"}, default="vote"
        Rule of :func:`select_k`.
    min_stability : float, default=0.75
        k values less stable than this are not chosen (unless none is).
    n_resamples : int, default=5
        Bootstrap resamples for the stability (0 = not computed).
    sample_size : int, default=5000
        Rows of the sample (the tree needs O(sample_size^2) time and memory).
    compute_scores : bool, default=True
        With a fixed ``n_clusters``, False skips the scores (``k_scores_`` is
        empty): a plain fit, as used for bootstrap refits.
    random_state : int, RandomState instance or None, default=0
        Seed for the sample and the resamples.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters_, n_features)
        Mean of each cluster's sample rows.
    labels_ : ndarray of shape (n_samples,)
        Tree label for sample rows, nearest centroid for the others.
    n_clusters_ : int
        Number of clusters.
    k_scores_ : DataFrame
        As in :class:`SampledKMeans` (``inertia`` = within-cluster sum of squares).
    sample_indices_ : ndarray
        Rows of the sample.
    noise_share_ : float
        Always 0.0.
    fixed_params_ : dict
        ``{"n_clusters": k}``.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    """

    def __init__(
        self,
        n_clusters: int | None = None,
        k_range: tuple[int, int] = (2, 8),
        k_selection: str = "vote",
        min_stability: float = 0.75,
        n_resamples: int = 5,
        sample_size: int = 5_000,
        compute_scores: bool = True,
        random_state: int | np.random.RandomState | None = 0,
    ):
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.k_selection = k_selection
        self.min_stability = min_stability
        self.n_resamples = n_resamples
        self.sample_size = sample_size
        self.compute_scores = compute_scores
        self.random_state = random_state

    @staticmethod
    def _centroids(S: np.ndarray, labels: np.ndarray) -> np.ndarray:
        k = int(labels.max()) + 1
        sums = np.zeros((k, S.shape[1]))
        np.add.at(sums, labels, S)
        return sums / np.bincount(labels, minlength=k)[:, None]

    def _fit_sample(self, S: np.ndarray, X: np.ndarray, rng) -> np.ndarray:
        ks = self._candidate_ks(S)
        cuts = _cut_tree(ward_linkage(S), ks)
        inertias = [float(((S - self._centroids(S, lab)[lab]) ** 2).sum()) for lab in cuts]

        def refit(R: np.ndarray) -> list[np.ndarray]:
            return [
                pairwise_distances_argmin(S, self._centroids(R, lab))
                for lab in _cut_tree(ward_linkage(R), ks)
            ]

        labels = cuts[self._choose(X, S, ks, cuts, inertias, refit, rng)]
        self.cluster_centers_ = self._centroids(S, labels)
        self.fixed_params_ = {"n_clusters": int(labels.max()) + 1}
        return labels


# --------------------------------------------------------------------------- #
# density methods
# --------------------------------------------------------------------------- #
class _DensityClusterer(_SampleAssignClusterer):
    """Rows outside the sample go to a nearby clustered sample point, else noise.

    A row joins the cluster of the nearest of its ``_n_query`` nearest
    ``components_`` whose distance is at most that component's radius
    (``component_radius_``); with none in reach it is noise (-1).
    """

    _n_query = 1

    def _set_components(self, S: np.ndarray, keep: np.ndarray, labels, radius) -> None:
        self.components_ = S[keep]
        self.component_labels_ = np.asarray(labels, dtype=np.int64)[keep]
        self.component_radius_ = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(S),))[
            keep
        ].copy()
        self._nn = NearestNeighbors(n_neighbors=1).fit(self.components_) if keep.any() else None

    def _assign(self, X: np.ndarray) -> np.ndarray:
        labels = np.full(X.shape[0], -1, dtype=np.int64)
        if self._nn is None:
            return labels
        n_query = min(self._n_query, self.components_.shape[0])
        for start in range(0, X.shape[0], _ASSIGN_BLOCK_ROWS):
            block = X[start : start + _ASSIGN_BLOCK_ROWS]
            dist, ind = self._nn.kneighbors(block, n_neighbors=n_query)
            reach = dist <= self.component_radius_[ind]
            hit = reach.any(axis=1)
            first = reach.argmax(axis=1)
            out = labels[start : start + _ASSIGN_BLOCK_ROWS]
            out[hit] = self.component_labels_[ind[hit, first[hit]]]
        return labels

    def nearest_cluster(self, X: ArrayLike) -> np.ndarray:
        """Cluster of the nearest clustered sample point of each row, however far (no noise).

        All noise (no cluster found) gives one group, 0.
        """
        check_is_fitted(self, "components_")
        X = np.asarray(X, dtype=np.float64)
        if self._nn is None or X.shape[0] == 0:
            return np.zeros(X.shape[0], dtype=np.int64)
        _, ind = self._nn.kneighbors(X, n_neighbors=1)
        return self.component_labels_[ind[:, 0]]

    def _fit_single(self, S: np.ndarray) -> None:
        self.components_ = S[:1].copy()
        self.component_labels_ = np.zeros(1, dtype=np.int64)
        self.component_radius_ = np.full(1, np.inf)
        self._nn = NearestNeighbors(n_neighbors=1).fit(self.components_)
        self.fixed_params_ = {}

    def _min_samples(self, S: np.ndarray, default: int) -> int:
        ms = default if self.min_samples is None else self.min_samples
        if not (_is_int(ms) and ms >= 1):
            raise ValueError(f"min_samples must be None or an int >= 1, got {self.min_samples!r}")
        return int(min(ms, S.shape[0]))


class SampledDBSCAN(_DensityClusterer):
    """DBSCAN of a stratified sample with ``eps`` from the k-distance knee.

    ``min_samples`` defaults to twice the number of features (the usual rule
    of thumb). For every sample row the distance to its ``min_samples``-th
    nearest neighbour (itself included, as in DBSCAN's core-point test) is
    computed; sorted, these k-distances form a convex curve whose knee
    (:func:`knee_index`) is ``eps``. Rows outside the sample join the cluster
    of the nearest core sample within ``eps``, else they are noise (-1),
    which is exactly how DBSCAN treats border points.

    Parameters
    ----------
    eps : float, default=None
        Neighbourhood radius; ``None`` = the knee of the k-distance curve.
    min_samples : int, default=None
        Core-point threshold; ``None`` = 2 * n_features.
    sample_size : int, default=10000
        Rows of the stratified sample.
    random_state : int, RandomState instance or None, default=0
        Seed for the sample.

    Attributes
    ----------
    eps_ : float
        Radius used.
    min_samples_ : int
        Core-point threshold used.
    k_distances_ : ndarray
        Sorted k-distances of the sample (the curve the knee is read from).
    components_ : ndarray of shape (n_core, n_features)
        Core samples.
    component_labels_ : ndarray of shape (n_core,)
        Cluster of each core sample.
    component_radius_ : ndarray of shape (n_core,)
        ``eps_`` for every core sample.
    labels_ : ndarray of shape (n_samples,)
        Cluster of each row, -1 for noise.
    n_clusters_ : int
        Number of clusters (noise excluded).
    noise_share_ : float
        Share of rows labelled -1.
    sample_indices_ : ndarray
        Rows of the sample.
    fixed_params_ : dict
        ``{"eps": eps_, "min_samples": min_samples_}``.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    """

    def __init__(
        self,
        eps: float | None = None,
        min_samples: int | None = None,
        sample_size: int = 10_000,
        random_state: int | np.random.RandomState | None = 0,
    ):
        self.eps = eps
        self.min_samples = min_samples
        self.sample_size = sample_size
        self.random_state = random_state

    def _fit_sample(self, S: np.ndarray, X: np.ndarray, rng) -> np.ndarray:
        ms = self._min_samples(S, 2 * S.shape[1])
        dist, _ = NearestNeighbors(n_neighbors=ms).fit(S).kneighbors(S)
        self.k_distances_ = np.sort(dist[:, -1])
        if self.eps is not None:
            if not (isinstance(self.eps, numbers.Real) and self.eps > 0):
                raise ValueError(f"eps must be None or a float > 0, got {self.eps!r}")
            eps = float(self.eps)
        else:
            eps = float(self.k_distances_[knee_index(self.k_distances_)])
            if eps <= 0:  # many duplicate rows: use the smallest positive distance
                positive = self.k_distances_[self.k_distances_ > 0]
                eps = float(positive[0]) if positive.size else 1.0
        self.eps_, self.min_samples_ = eps, ms
        db = DBSCAN(eps=eps, min_samples=ms).fit(S)
        core = np.zeros(S.shape[0], dtype=bool)
        core[db.core_sample_indices_] = True
        self._set_components(S, core, db.labels_, eps)
        self.fixed_params_ = {"eps": eps, "min_samples": ms}
        return db.labels_.astype(np.int64)


class SampledHDBSCAN(_DensityClusterer):
    """scikit-learn's HDBSCAN on a stratified sample, core-distance assignment.

    Rows outside the sample join the cluster of the nearest clustered sample
    point whose core distance (distance to its ``min_samples``-th nearest
    sample neighbour) reaches them, i.e. whose mutual-reachability ball
    contains them; otherwise they are noise (-1).

    Parameters
    ----------
    min_cluster_size : int, default=None
        ``None`` = 2 % of the sample (at least 5): smaller groups are not
        useful segments.
    min_samples : int, default=None
        ``None`` = n_features + 1.
    sample_size : int, default=10000
        Rows of the stratified sample.
    random_state : int, RandomState instance or None, default=0
        Seed for the sample.

    Attributes
    ----------
    min_cluster_size_ : int
        Minimum cluster size used.
    min_samples_ : int
        ``min_samples`` used.
    components_ : ndarray of shape (n_clustered, n_features)
        Sample rows that belong to a cluster.
    component_labels_ : ndarray of shape (n_clustered,)
        Their clusters.
    component_radius_ : ndarray of shape (n_clustered,)
        Their core distances.
    labels_ : ndarray of shape (n_samples,)
        Cluster of each row, -1 for noise.
    n_clusters_ : int
        Number of clusters (noise excluded).
    noise_share_ : float
        Share of rows labelled -1.
    sample_indices_ : ndarray
        Rows of the sample.
    fixed_params_ : dict
        ``{"min_cluster_size": ..., "min_samples": ...}``.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    """

    _n_query = 10

    def __init__(
        self,
        min_cluster_size: int | None = None,
        min_samples: int | None = None,
        sample_size: int = 10_000,
        random_state: int | np.random.RandomState | None = 0,
    ):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.sample_size = sample_size
        self.random_state = random_state

    def _fit_sample(self, S: np.ndarray, X: np.ndarray, rng) -> np.ndarray:
        m = S.shape[0]
        mcs = self.min_cluster_size
        if mcs is None:
            mcs = max(5, int(np.ceil(0.02 * m)))
        elif not (_is_int(mcs) and mcs >= 2):
            raise ValueError(f"min_cluster_size must be None or an int >= 2, got {mcs!r}")
        mcs = int(min(mcs, m))
        ms = self._min_samples(S, S.shape[1] + 1)
        self.min_cluster_size_, self.min_samples_ = mcs, ms
        self.fixed_params_ = {"min_cluster_size": mcs, "min_samples": ms}
        if mcs < 2 or m < 2:
            labels = np.zeros(m, dtype=np.int64)
            self._set_components(S, np.ones(m, dtype=bool), labels, np.inf)
            return labels
        labels = HDBSCAN(min_cluster_size=mcs, min_samples=ms, copy=True).fit(S).labels_
        core_dist = NearestNeighbors(n_neighbors=ms).fit(S).kneighbors(S)[0][:, -1]
        self._set_components(S, labels >= 0, labels, core_dist)
        return labels.astype(np.int64)
