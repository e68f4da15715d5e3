"""Sample-and-assign: the stratified sample and the base class every clusterer here shares.

An algorithm that is super-linear in rows is fitted on a stratified sample of
``sample_size`` rows (:func:`stratified_sample`); every other row is then *assigned*,
which is linear. Rows of the sample keep the label the algorithm gave them.

How many rows a sample holds grows with the data (:func:`proportional_size`): every
row up to :data:`SAMPLE_FLOOR`, then :data:`SAMPLE_SHARE` of the rows, never more
than the caller's cap.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

#: The sample-size rule (docs/pipeline.md): all rows up to SAMPLE_FLOOR, then a
#: quarter of them, up to a cap. Work on the sample then grows with the data
#: instead of jumping to the cap as soon as the data passes it.
SAMPLE_FLOOR = 5_000
SAMPLE_SHARE = 0.25


def proportional_size(n_rows: int, cap: int) -> int:
    """Rows of a sample of ``n_rows`` under the rule: ``min(n, cap, max(5000, n / 4))``."""
    return int(min(n_rows, cap, max(SAMPLE_FLOOR, math.ceil(n_rows * SAMPLE_SHARE))))


class DegenerateDataWarning(UserWarning):
    """The data cannot support the requested clustering; a fallback was used."""


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
    strata, counts, order = _STRATA.ordered(X, n_bins, rng)
    quota = counts * (size / n)
    alloc = np.floor(quota).astype(np.int64)
    short = size - alloc.sum()
    alloc[np.lexsort((np.arange(len(quota)), -(quota - alloc)))[:short]] += 1
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[strata[order]]
    return np.flatnonzero(rank < alloc[strata])


@contextlib.contextmanager
def shared_strata() -> Iterator[None]:
    """Within this context, samples of the same array share their strata and order.

    Every candidate of a segmentation samples the same features with a generator in
    the same state; the strata and the random order within them (a sort of all rows)
    are then the same, and are computed once. The arrays are held until the context
    ends.
    """
    _STRATA.enter()
    try:
        yield
    finally:
        _STRATA.leave()


class _StrataCache:
    """The strata of the last few arrays sampled, and their random orders.

    A hit is decided on the array's values and the generator's state before the
    draw, and leaves the generator as the draw would have: the sample is exactly
    what it would be without the cache. Only used inside :func:`shared_strata`.
    """

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self.users = 0
        self._entries: list[dict] = []
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.users += 1

    def leave(self) -> None:
        with self._lock:
            self.users -= 1
            if not self.users:
                self._entries.clear()

    def ordered(self, X: np.ndarray, n_bins: int, rng: np.random.RandomState):
        """``(strata, counts, order)`` of ``X``: ``order`` sorts by stratum, then by a
        uniform draw of ``rng`` per row (which ``rng`` then has consumed)."""
        state = rng.get_state()
        with self._lock:
            entry = self._find(X, n_bins)
            hit = entry is not None and _same_state(entry["state"], state)
        if hit:
            rng.set_state(entry["after"])
            return entry["strata"], entry["counts"], entry["order"]
        strata = entry["strata"] if entry is not None else _strata(X, n_bins)
        order = np.lexsort((rng.random_sample(X.shape[0]), strata))  # random order within stratum
        counts = np.bincount(strata)
        if not self.users:
            return strata, counts, order
        new = {"X": X.copy(), "n_bins": n_bins, "strata": strata, "counts": counts,
               "order": order, "state": state, "after": rng.get_state()}  # fmt: skip
        with self._lock:
            kept = [e for e in self._entries if e is not entry]
            self._entries = [new, *kept][: self.size]
        return strata, counts, order

    def _find(self, X: np.ndarray, n_bins: int) -> dict | None:
        for entry in self._entries:
            if entry["n_bins"] == n_bins and np.array_equal(entry["X"], X):
                return entry
        return None


def _same_state(a: tuple, b: tuple) -> bool:
    """Equal ``RandomState.get_state()`` tuples: (name, key array, pos, has_gauss, gauss)."""
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


def _strata(X: np.ndarray, n_bins: int) -> np.ndarray:
    """Each row's cell of the quantile grid of the first two principal components."""
    centred = X - X.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    strata = np.zeros(X.shape[0], dtype=np.int64)
    for j in range(min(2, X.shape[1])):
        proj = centred @ vectors[:, -1 - j]
        edges = np.quantile(proj, np.linspace(0, 1, n_bins + 1)[1:-1])
        strata = strata * n_bins + np.searchsorted(edges, proj, side="right")
    return strata


_STRATA = _StrataCache()


def _count_distinct_rows(X: np.ndarray) -> int:
    """Number of distinct rows of a 2-D array."""
    if X.shape[0] == 0:
        return 0
    return int(np.unique(X, axis=0).shape[0])


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


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

    #: True: ``sample_size`` caps :func:`proportional_size`; False: it is the sample's size.
    _proportional_sample = False

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
        size = (
            proportional_size(X.shape[0], self.sample_size)
            if self._proportional_sample
            else self.sample_size
        )
        idx = stratified_sample(X, size, rng)
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
            # share the cores.
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
