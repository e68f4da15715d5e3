"""The customer segmenter: feature preparation, clustering, segment ids ordered by value, names.

Segment ids are ``0..n-1`` ordered by descending mean ``monetary_total`` (ties by
size), so they are stable for the same data. Customers a density method leaves as
noise form one more segment (``is_noise`` in the profile) unless ``assign_noise``
puts them in the nearest cluster: either way every customer has a segment.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.utils.validation import check_is_fitted, validate_data

from ml.clustering import (
    K_SCORE_COLUMNS,
    SampledDBSCAN,
    SampledHDBSCAN,
    SampledKMeans,
    SampledWard,
)
from ml.features import (
    DEFAULT_FEATURE_GROUPS,
    DEFAULT_LOG_FEATURES,
    DEFAULT_WINSOR_QUANTILES,
    build_preprocessor,
    select_features,
)
from ml.naming import NAMING_FEATURES, name_segments, profile_segments

ID_COLUMN = "customer_id"
VALUE_COLUMN = "monetary_total"
ASSIGNMENT_COLUMNS = [ID_COLUMN, "cluster_id", "cluster_label"]

#: Candidate algorithms, in the rule's order of preference (simplest to score
#: and explain first).
ALGORITHMS: dict[str, type] = {
    "kmeans": SampledKMeans,
    "ward": SampledWard,
    "hdbscan": SampledHDBSCAN,
    "dbscan": SampledDBSCAN,
}


def make_clusterer(algorithm: str, **params: Any) -> BaseEstimator:
    """Unfitted clusterer of :mod:`ml.clustering` for an :data:`ALGORITHMS` name."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {list(ALGORITHMS)}, got {algorithm!r}")
    return ALGORITHMS[algorithm](**params)


class CustomerSegmenter(ClusterMixin, BaseEstimator):
    """Segment customers: prepare features, cluster, order and name the segments.

    Parameters
    ----------
    clusterer : estimator, default=None
        Unfitted clusterer working on the prepared matrix, e.g. one of
        :data:`ALGORITHMS`; ``None`` means ``SampledKMeans()``. It is cloned.
    features : sequence of str or int, default=None
        Explicit feature columns (positions for array input). ``None`` means
        :func:`ml.features.select_features` with ``feature_groups`` for a
        DataFrame and all columns for an array.
    feature_groups : sequence of str, default=("behavioural",)
        Feature groups used when ``features`` is None.
    log_features : sequence of str or int, default=None
        Numeric features transformed with ``log1p(max(x, 0))``. ``None`` means
        those of :data:`ml.features.DEFAULT_LOG_FEATURES` that are used (none
        for array input).
    value_column : str or int, default="monetary_total"
        Column (need not be a feature) whose mean per segment orders the
        segment ids, highest first; the first feature if ``X`` lacks it.
    winsorize : bool, default=True
        Clip each prepared feature at its 1st and 99th percentile before scaling;
        False keeps plain standardised (log) features.
    assign_noise : bool, default=False
        Put the customers a density method leaves as noise into the cluster of
        the nearest clustered point, so nobody sits in a bucket without an
        action. Without it, noise is one more segment.

    Attributes
    ----------
    features_ : list
        Numeric feature columns, in order.
    categorical_features_ : list of str
        One-hot encoded columns.
    log_features_ : list
        Log-transformed features.
    preprocessor_ : ColumnTransformer
        Fitted feature preparation.
    clusterer_ : estimator
        Fitted clusterer (raw labels, ``-1`` = noise).
    labels_ : ndarray of shape (n_samples,), dtype int64
        Segment id of each training row, ``0..n_clusters_-1``.
    n_clusters_ : int
        Number of segments (the noise group included).
    noise_cluster_ : int or None
        Segment id of the noise group, if there is one.
    raw_labels_ : ndarray of shape (n_clusters_,)
        Clusterer label (``-1`` = noise) of each segment id.
    k_scores_ : DataFrame
        Per-k scores of the clusterer (empty for density methods).
    segment_names_ : list of str
        Name of segment i at position i (unique).
    profile_ : DataFrame
        :func:`ml.naming.profile_segments` of the training data.
    n_features_in_ : int
        Number of input features consumed.
    feature_names_in_ : ndarray
        Input feature names (DataFrame input with string names only).

    Examples
    --------
    >>> seg = CustomerSegmenter(SampledWard()).fit(customer_features)  # doctest: +SKIP
    >>> seg.predict(new_customers)  # doctest: +SKIP
    """

    def __init__(
        self,
        clusterer: BaseEstimator | None = None,
        features: Sequence[Hashable] | None = None,
        feature_groups: Sequence[str] = DEFAULT_FEATURE_GROUPS,
        log_features: Sequence[Hashable] | None = None,
        value_column: Hashable = VALUE_COLUMN,
        winsorize: bool = True,
        assign_noise: bool = False,
    ):
        self.clusterer = clusterer
        self.features = features
        self.feature_groups = feature_groups
        self.log_features = log_features
        self.value_column = value_column
        self.winsorize = winsorize
        self.assign_noise = assign_noise

    # -- input ------------------------------------------------------------ #
    def _prepare(self, X, *, fitting: bool):
        """(input for preprocessor_, values of value_column or None)."""
        if isinstance(X, pd.DataFrame):
            if fitting:
                numeric, categorical = select_features(X, self.features, self.feature_groups)
                self._fitted_on_frame = True
                self.features_, self.categorical_features_ = numeric, categorical
                columns = numeric + categorical
                self.n_features_in_ = len(columns)
                if all(isinstance(c, str) for c in columns):
                    self.feature_names_in_ = np.asarray(columns, dtype=object)
                elif hasattr(self, "feature_names_in_"):
                    del self.feature_names_in_
            else:
                if not self._fitted_on_frame:
                    raise ValueError(
                        f"{type(self).__name__} was fitted on an array; predict on an "
                        "array with the same columns"
                    )
                columns = self.features_ + self.categorical_features_
                missing = [c for c in columns if c not in X.columns]
                if missing:
                    raise ValueError(f"X is missing feature column(s) {missing!r}")
            try:
                numeric_values = X.loc[:, self.features_].to_numpy(
                    dtype=np.float64, na_value=np.nan
                )
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"feature columns {self.features_!r} must be numeric: {exc}"
                ) from exc
            if np.isinf(numeric_values).any():
                raise ValueError("feature columns contain infinite values")
            X_in = pd.DataFrame(numeric_values, columns=self.features_, copy=False)
            for c in self.categorical_features_:
                X_in[c] = X[c].to_numpy()
            value = None
            if fitting:
                if self.value_column in X.columns:
                    value = pd.to_numeric(X[self.value_column], errors="coerce").to_numpy(
                        dtype=np.float64, na_value=np.nan
                    )
                else:
                    warnings.warn(
                        f"value column {self.value_column!r} not in X; segment ids are "
                        f"ordered by the mean of {self.features_[0]!r} instead",
                        UserWarning,
                        stacklevel=3,
                    )
            return X_in, value

        # array-like input: validated by scikit-learn, columns addressed by position
        if not fitting and self._fitted_on_frame:
            raise ValueError(
                f"{type(self).__name__} was fitted on a DataFrame; predict needs a "
                f"DataFrame with columns {self.features_ + self.categorical_features_!r}"
            )
        X = validate_data(
            self,
            X,
            reset=fitting,
            dtype=np.float64,
            ensure_all_finite="allow-nan",
            ensure_min_samples=0 if fitting else 1,
        )
        if not fitting:
            return X, None
        self._fitted_on_frame = False
        self.categorical_features_ = []
        n_columns = X.shape[1]
        features = list(range(n_columns)) if self.features is None else list(self.features)
        bad = [f for f in features if not (isinstance(f, int | np.integer) and 0 <= f < n_columns)]
        if bad:
            raise ValueError(
                f"with array input, features must be column positions in [0, {n_columns}); "
                f"got {bad!r}"
            )
        self.features_ = features
        vc = self.value_column
        value = X[:, vc] if isinstance(vc, int | np.integer) and 0 <= vc < n_columns else None
        return X, value

    def _resolve_log_features(self) -> list:
        if self.log_features is not None:
            return list(self.log_features)
        if not self._fitted_on_frame:
            return []
        return [f for f in self.features_ if f in DEFAULT_LOG_FEATURES]

    # -- fitting ------------------------------------------------------------ #
    def fit(self, X: pd.DataFrame | ArrayLike, y: None = None) -> CustomerSegmenter:
        """Prepare the features, cluster, then order, name and profile the segments.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_columns)
            Customer features; extra DataFrame columns are ignored (apart from
            ``value_column`` and the profile).
        y : None
            Ignored.

        Returns
        -------
        self : CustomerSegmenter
            The fitted estimator.

        Raises
        ------
        ValueError
            If ``X`` has no rows, lacks a feature column or has non-numeric or
            infinite numeric feature values.
        """
        Xt = self._fit_preprocessor(X)
        clusterer = SampledKMeans() if self.clusterer is None else clone(self.clusterer)
        clusterer.fit(Xt)
        labels = np.asarray(clusterer.labels_, dtype=np.int64)
        if self.assign_noise:
            labels = without_noise(clusterer, Xt, labels)
        return self._finish(X, clusterer, labels)

    def prepare(self, X: pd.DataFrame | ArrayLike) -> np.ndarray:
        """Fit only the feature preparation on ``X``; return the prepared matrix.

        Candidates that share a feature set are judged on one prepared matrix.
        """
        Xt = self._fit_preprocessor(X)
        del self._value
        return Xt

    def _fit_preprocessor(self, X) -> np.ndarray:
        X_in, value = self._prepare(X, fitting=True)
        if X_in.shape[0] == 0:
            raise ValueError(
                "cannot segment zero rows: X has no customers (is customer_features empty?)"
            )
        self.log_features_ = self._resolve_log_features()
        self.preprocessor_ = build_preprocessor(
            self.features_,
            self.log_features_,
            categorical=self.categorical_features_,
            winsor_quantiles=DEFAULT_WINSOR_QUANTILES if self.winsorize else (0.0, 1.0),
        )
        if value is None:
            first = self.features_[0] if self.features_ else None
            if first is None:
                value = np.zeros(X_in.shape[0])
            else:
                value = X_in[first] if self._fitted_on_frame else X_in[:, first]
                value = np.asarray(value, dtype=np.float64)
        self._value = value
        return np.ascontiguousarray(self.preprocessor_.fit_transform(X_in), dtype=np.float64)

    def _finish(self, X, clusterer, raw: np.ndarray) -> CustomerSegmenter:
        """Order the clusterer's groups (``raw`` labels) by value; build ids, names, profile."""
        self.clusterer_ = clusterer
        value = self._value
        del self._value
        groups, inverse, sizes = np.unique(raw, return_inverse=True, return_counts=True)
        ok = ~np.isnan(value)
        sums = np.bincount(inverse[ok], weights=value[ok], minlength=len(groups))
        counts = np.bincount(inverse[ok], minlength=len(groups))
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(counts > 0, sums / counts, -np.inf)
        order = np.lexsort((groups, -sizes, -means))  # value desc, then size desc, then raw id
        segment_of_group = np.empty(len(groups), dtype=np.int64)
        segment_of_group[order] = np.arange(len(groups))
        self.raw_labels_ = groups[order]  # clusterer label of segment i
        self.labels_ = segment_of_group[inverse.ravel()]
        self.n_clusters_ = len(groups)
        noise = np.flatnonzero(self.raw_labels_ == -1)
        self.noise_cluster_ = int(noise[0]) if noise.size else None
        scores = getattr(clusterer, "k_scores_", None)
        self.k_scores_ = (
            scores.copy() if scores is not None else pd.DataFrame(columns=K_SCORE_COLUMNS)
        )
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=float))
        names = name_segments(frame, self.labels_, self.noise_cluster_)
        self.segment_names_ = [names[i] for i in range(self.n_clusters_)]
        profile_features = [
            c
            for c in dict.fromkeys([*self.features_, *NAMING_FEATURES])
            if c in frame.columns and pd.api.types.is_numeric_dtype(frame[c])
        ]
        self.profile_ = profile_segments(
            frame,
            self.labels_,
            features=profile_features,
            names=names,
            noise=self.noise_cluster_,
            value_column=self.value_column if isinstance(self.value_column, str) else "",
        )
        return self

    # -- scoring ------------------------------------------------------------ #
    def transform_features(self, X: pd.DataFrame | ArrayLike) -> np.ndarray:
        """The prepared feature matrix of ``X`` (fitted preprocessing)."""
        check_is_fitted(self, ("preprocessor_", "clusterer_"))
        X_in, _ = self._prepare(X, fitting=False)
        return np.asarray(self.preprocessor_.transform(X_in), dtype=np.float64)

    def predict(self, X: pd.DataFrame | ArrayLike) -> np.ndarray:
        """Segment id of each row, without refitting.

        Parameters
        ----------
        X : DataFrame or array-like
            Same kind of input as in ``fit`` (a DataFrame needs the feature columns).

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype int64
            Segment ids in ``0 .. n_clusters_ - 1``. A row a density method
            finds too far from every cluster joins the noise segment; if the
            training data had none, it joins the nearest cluster instead.
        """
        Xt = self.transform_features(X)
        raw = self.clusterer_.predict(Xt)
        unseen = ~np.isin(raw, self.raw_labels_)
        if unseen.any():  # noise without a noise segment: nearest clustered point
            raw[unseen] = self.clusterer_.nearest_cluster(Xt[unseen])
        lookup = np.zeros(int(self.raw_labels_.max()) + 2, dtype=np.int64)  # raw -1 at 0
        lookup[self.raw_labels_ + 1] = np.arange(self.n_clusters_)
        return lookup[raw + 1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN is imputed with the median
        return tags


def without_noise(clusterer, Xt: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``labels`` with each noise row (-1) moved to the cluster of the nearest clustered point."""
    noise = labels < 0
    if not noise.any() or not hasattr(clusterer, "nearest_cluster"):
        return labels
    labels = labels.copy()
    labels[noise] = clusterer.nearest_cluster(Xt[noise])
    return labels


def _assignments(ids: pd.Series, labels: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """The ``ml.customer_clusters`` table: customer_id, cluster_id (int32), cluster_label."""
    return pd.DataFrame(
        {
            ID_COLUMN: ids.reset_index(drop=True),
            "cluster_id": labels.astype(np.int32),
            "cluster_label": np.asarray(names, dtype=object)[labels],
        }
    )


def _check_frame(features_df: pd.DataFrame) -> None:
    if not isinstance(features_df, pd.DataFrame):
        raise TypeError(f"features_df must be a pandas DataFrame, got {type(features_df)!r}")
    if ID_COLUMN not in features_df.columns:
        raise ValueError(f"features_df has no {ID_COLUMN!r} column")
