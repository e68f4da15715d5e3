"""Density methods: DBSCAN and HDBSCAN of a stratified sample, other rows to a nearby core point.

A row outside the sample joins the cluster of a nearby clustered sample point when
it lies within that point's reach (``eps`` for DBSCAN, the core distance for
HDBSCAN), else it is noise (``-1``), as DBSCAN treats border points.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.typing import ArrayLike
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.validation import check_is_fitted

from ml.clustering.base import _is_int, _SampleAssignClusterer
from ml.threads import in_parallel

# Rows per block when assigning rows to density-method components; from two blocks on,
# the blocks are queried on one thread per core (the tree query releases the GIL).
_ASSIGN_BLOCK_ROWS = 100_000


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


class _DensityClusterer(_SampleAssignClusterer):
    """Rows outside the sample go to a nearby clustered sample point, else noise.

    A row joins the cluster of the nearest of its ``_n_query`` nearest
    ``components_`` whose distance is at most that component's radius
    (``component_radius_``); with none in reach it is noise (-1).
    """

    _n_query = 1
    _proportional_sample = True

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
        max_radius = self.component_radius_.max()

        def nearest_in_reach(block: np.ndarray, k: int) -> np.ndarray:
            dist, ind = self._nn.kneighbors(block, n_neighbors=k)
            reach = dist <= self.component_radius_[ind]
            first = ind[np.arange(len(block)), reach.argmax(axis=1)]
            return np.where(reach.any(axis=1), self.component_labels_[first], -1)

        def assign_block(start: int) -> None:
            block = X[start : start + _ASSIGN_BLOCK_ROWS]
            out = labels[start : start + _ASSIGN_BLOCK_ROWS]
            if n_query < 3:
                out[:] = nearest_in_reach(block, n_query)
                return
            # Most rows lie in reach of their nearest component: when it is strictly the
            # nearest (no tie), it is also first of the n_query nearest, so two
            # neighbours settle the row. A row not settled so whose second neighbour is
            # beyond the largest radius is noise: its nearest is out of reach (or tied
            # with the second) and every other component is at least that far. The
            # others take the full query.
            dist, ind = self._nn.kneighbors(block, n_neighbors=2)
            settled = (dist[:, 0] < dist[:, 1]) & (dist[:, 0] <= self.component_radius_[ind[:, 0]])
            out[settled] = self.component_labels_[ind[settled, 0]]
            rest = np.flatnonzero(~settled & (dist[:, 1] <= max_radius))
            if rest.size:
                out[rest] = nearest_in_reach(block[rest], n_query)

        # each block writes its own slice of labels: the result does not depend on order
        in_parallel(assign_block, range(0, X.shape[0], _ASSIGN_BLOCK_ROWS), X.shape[0], 0)
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
        Cap on the rows of the stratified sample: every row up to 5,000, then a
        quarter of the rows, at most ``sample_size`` (:func:`proportional_size`).
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
        Cap on the rows of the stratified sample: every row up to 5,000, then a
        quarter of the rows, at most ``sample_size`` (:func:`proportional_size`).
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
