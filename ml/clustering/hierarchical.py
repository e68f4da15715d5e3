"""Ward agglomerative clustering of a stratified sample, other rows to the nearest centroid."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
from scipy.cluster.hierarchy import ward as ward_linkage
from sklearn.metrics import pairwise_distances_argmin

from ml.clustering.centroid import _CentroidClusterer

# The Ward tree of a sample does not depend on k, and the candidates k = 4..8 of one
# feature set (and their bootstrap refits, whose resamples are shared across k) see
# the same samples: the last few trees are kept, keyed by the sample's exact bytes.
_TREES: OrderedDict[tuple, np.ndarray] = OrderedDict()
_TREES_KEPT = 16
_TREES_LOCK = threading.Lock()


def _ward_tree(S: np.ndarray) -> np.ndarray:
    """``scipy.cluster.hierarchy.ward(S)``, computed once per distinct sample (read-only)."""
    S = np.ascontiguousarray(S, dtype=np.float64)
    key = (S.shape, hashlib.blake2b(S.tobytes(), digest_size=20).digest())
    with _TREES_LOCK:
        Z = _TREES.get(key)
        if Z is not None:
            _TREES.move_to_end(key)
            return Z
    Z = ward_linkage(S)
    Z.flags.writeable = False
    with _TREES_LOCK:
        _TREES[key] = Z
        while len(_TREES) > _TREES_KEPT:
            _TREES.popitem(last=False)
    return Z


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
        cuts = _cut_tree(_ward_tree(S), ks)
        inertias = [float(((S - self._centroids(S, lab)[lab]) ** 2).sum()) for lab in cuts]

        def refit(R: np.ndarray) -> list[np.ndarray]:
            return [
                pairwise_distances_argmin(S, self._centroids(R, lab))
                for lab in _cut_tree(_ward_tree(R), ks)
            ]

        labels = cuts[self._choose(X, S, ks, cuts, inertias, refit, rng)]
        self.cluster_centers_ = self._centroids(S, labels)
        self.fixed_params_ = {"n_clusters": int(labels.max()) + 1}
        return labels
