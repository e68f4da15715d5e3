"""K-Means with k chosen on a stratified sample and Lloyd refinement on all rows."""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike
from sklearn.cluster import KMeans
from sklearn.utils.validation import validate_data

from ml.clustering.base import _is_int
from ml.clustering.centroid import _CentroidClusterer


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
