"""Customer segmentation: fit, compare, choose, persist, score, migrate.

Public API
----------
CustomerSegmenter
    scikit-learn clusterer: feature preparation (:mod:`ml.features`) + one of
    the algorithms of :mod:`ml.clustering` + segment ids ordered by value +
    names and profiles (:mod:`ml.naming`).
segment_customers
    One algorithm, features in -> (assignments, model, profile) out.
fit_candidates
    Fits all candidate algorithms on the same prepared features, writes the
    comparison table and picks the production segmentation by
    :class:`SelectionRule` (or the configured algorithm).
save_model / load_model / score_customers
    Persistence (joblib + JSON metadata) and scoring without refitting.
segment_migration
    Customers moving between segments from one assignment table to the next.

Segment ids are ``0..n-1`` ordered by descending mean ``monetary_total``
(ties by size), so they are stable for the same data. Customers a density
method leaves as noise form one more segment (``is_noise`` in the profile)
that takes part in that order: every customer has a segment.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.metrics import adjusted_rand_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from ml.clustering import (
    K_SCORE_COLUMNS,
    SampledDBSCAN,
    SampledHDBSCAN,
    SampledKMeans,
    SampledWard,
    cluster_scores,
    stratified_sample,
)
from ml.features import (
    DEFAULT_FEATURE_GROUPS,
    DEFAULT_LOG_FEATURES,
    build_preprocessor,
    select_features,
)
from ml.naming import NAMING_FEATURES, name_segments, profile_segments

__all__ = [
    "ALGORITHMS",
    "CustomerSegmenter",
    "SegmentationResult",
    "SelectionRule",
    "fit_candidates",
    "load_model",
    "make_clusterer",
    "save_model",
    "score_customers",
    "segment_customers",
    "segment_migration",
]

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


# --------------------------------------------------------------------------- #
# the estimator
# --------------------------------------------------------------------------- #
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
    ):
        self.clusterer = clusterer
        self.features = features
        self.feature_groups = feature_groups
        self.log_features = log_features
        self.value_column = value_column

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
        return self._finish(X, clusterer)

    def _fit_preprocessor(self, X) -> np.ndarray:
        X_in, value = self._prepare(X, fitting=True)
        if X_in.shape[0] == 0:
            raise ValueError(
                "cannot segment zero rows: X has no customers (is customer_features empty?)"
            )
        self.log_features_ = self._resolve_log_features()
        self.preprocessor_ = build_preprocessor(
            self.features_, self.log_features_, categorical=self.categorical_features_
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

    def _finish(self, X, clusterer) -> CustomerSegmenter:
        """Order the clusterer's groups by value and build ids, names and profile."""
        self.clusterer_ = clusterer
        raw = np.asarray(clusterer.labels_, dtype=np.int64)
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
            _, nearest = self.clusterer_._nn.kneighbors(Xt[unseen], n_neighbors=1)
            raw[unseen] = self.clusterer_.component_labels_[nearest[:, 0]]
        lookup = np.zeros(int(self.raw_labels_.max()) + 2, dtype=np.int64)  # raw -1 at 0
        lookup[self.raw_labels_ + 1] = np.arange(self.n_clusters_)
        return lookup[raw + 1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN is imputed with the median
        return tags


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


_SEGMENTER_PARAMS = ("features", "feature_groups", "log_features", "value_column")


def _split_params(params: Mapping[str, Any]) -> tuple[dict, dict]:
    seg = {k: v for k, v in params.items() if k in _SEGMENTER_PARAMS}
    clu = {k: v for k, v in params.items() if k not in _SEGMENTER_PARAMS}
    return seg, clu


def segment_customers(
    features_df: pd.DataFrame, *, algorithm: str = "kmeans", **params: Any
) -> tuple[pd.DataFrame, CustomerSegmenter, pd.DataFrame]:
    """Segment customers with one algorithm (no comparison).

    Parameters
    ----------
    features_df : DataFrame
        ``features.customer_features``: one row per customer with a
        ``customer_id`` column and the feature columns.
    algorithm : {"kmeans", "ward", "hdbscan", "dbscan"}, default="kmeans"
        Clusterer (see :data:`ALGORITHMS`).
    **params
        ``features``, ``feature_groups``, ``log_features``, ``value_column``
        go to :class:`CustomerSegmenter`; the rest (``k_range``,
        ``n_clusters``, ``sample_size``, ``random_state``, ...) to the clusterer.

    Returns
    -------
    assignments : DataFrame
        ``customer_id`` (unchanged), ``cluster_id`` (int32) and
        ``cluster_label``; one row per input row, in input order. This is
        the ``ml.customer_clusters`` table.
    model : CustomerSegmenter
        The fitted segmenter (``n_clusters_``, ``k_scores_``, ``profile_``, ...).
    profile : DataFrame
        One row per segment (:func:`ml.naming.profile_segments`).
    """
    _check_frame(features_df)
    seg_params, clu_params = _split_params(params)
    model = CustomerSegmenter(make_clusterer(algorithm, **clu_params), **seg_params)
    model.fit(features_df)
    assignments = _assignments(features_df[ID_COLUMN], model.labels_, model.segment_names_)
    return assignments, model, model.profile_.copy()


# --------------------------------------------------------------------------- #
# comparing candidates and choosing the production segmentation
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class SelectionRule:
    """How the production segmentation is chosen among the candidates.

    1. A candidate is *eligible* if it has at least 2 segments besides noise,
       a noise share <= ``max_noise_share``, bootstrap stability >=
       ``min_stability`` and every non-noise segment holds at least
       ``min_segment_share`` of the customers.
    2. Among eligible candidates the best silhouette (on the evaluation
       sample, noise counted as a group) sets the bar; the first candidate in
       ``preference`` order whose silhouette is within
       ``silhouette_tolerance`` of it is chosen, so a simpler model wins
       unless a more complex one is clearly better separated.
    3. If no candidate is eligible, the most stable one with at least 2
       segments is chosen (ties: ``preference`` order), and the reason says so.
    """

    min_stability: float = 0.75
    max_noise_share: float = 0.10
    min_segment_share: float = 0.01
    silhouette_tolerance: float = 0.02
    preference: tuple[str, ...] = tuple(ALGORITHMS)

    def describe(self) -> str:
        """The rule in one paragraph (for metadata and the UI)."""
        return (
            f"eligible: >= 2 segments besides noise, noise share <= {self.max_noise_share:g}, "
            f"bootstrap stability (mean ARI) >= {self.min_stability:g}, every segment >= "
            f"{self.min_segment_share:g} of customers; choose the first of "
            f"{list(self.preference)} whose silhouette is within "
            f"{self.silhouette_tolerance:g} of the best eligible silhouette; if none is "
            "eligible, the most stable candidate with >= 2 segments"
        )


CANDIDATE_COLUMNS = [
    "algorithm",
    "params",
    "k",
    "n_segments",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "noise_share",
    "min_segment_share",
    "stability",
    "fit_seconds",
    "ari_vs_ground_truth",
    "eligible",
    "chosen",
    "note",
]


@dataclass
class SegmentationResult:
    """Everything :func:`fit_candidates` produces.

    Attributes
    ----------
    model : CustomerSegmenter
        The production segmentation.
    chosen : str
        Its algorithm.
    reason : str
        Why it was chosen (rule outcome or "configured").
    candidates : DataFrame
        One row per candidate, columns :data:`CANDIDATE_COLUMNS`.
    assignments : DataFrame
        ``customer_id, cluster_id, cluster_label`` of the production model.
    profile : DataFrame
        Its segment profiles.
    elbow : DataFrame
        K-means per-k scores (``k``, ``inertia``, metrics) for display.
    models : dict
        Fitted :class:`CustomerSegmenter` of every candidate.
    rule : SelectionRule
        The rule applied.
    preprocess_seconds : float
        Time to fit the shared feature preparation.
    """

    model: CustomerSegmenter
    chosen: str
    reason: str
    candidates: pd.DataFrame
    assignments: pd.DataFrame
    profile: pd.DataFrame
    elbow: pd.DataFrame
    models: dict[str, CustomerSegmenter] = field(repr=False)
    rule: SelectionRule
    preprocess_seconds: float


def _bootstrap_stability(
    clusterer, Xt: np.ndarray, eval_idx: np.ndarray, n_resamples: int, size: int, rng
) -> float:
    """Mean ARI between the fitted labels on ``eval_idx`` and refits on bootstrap resamples.

    Each refit uses the fitted hyper-parameters (``fixed_params_``: k, eps,
    ...) so it measures the algorithm's sensitivity to the data, not to its
    own parameter search. A resample is ``size`` rows drawn with replacement.
    """
    if n_resamples < 1:
        return np.nan
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
    return float(np.mean(aris))


def _choose(table: pd.DataFrame, rule: SelectionRule) -> tuple[str, str]:
    order = {a: i for i, a in enumerate(rule.preference)}
    table = table.assign(_pref=table["algorithm"].map(order).fillna(len(order)))
    table = table.sort_values(["_pref", "algorithm"])
    eligible = table[table["eligible"]]
    if not eligible.empty:
        best = eligible["silhouette"].max()
        winner = eligible[eligible["silhouette"] >= best - rule.silhouette_tolerance].iloc[0]
        top = eligible.loc[eligible["silhouette"].idxmax(), "algorithm"]
        return winner["algorithm"], (
            f"rule: {len(eligible)} eligible; best silhouette {best:.3f} ({top}); "
            f"{winner['algorithm']} is the first in preference order within "
            f"{rule.silhouette_tolerance:g} (silhouette {winner['silhouette']:.3f})"
        )
    usable = table[table["k"] >= 2]
    if usable.empty:
        usable = table
    winner = usable.sort_values(["stability", "_pref"], ascending=[False, True]).iloc[0]
    return winner["algorithm"], (
        f"rule: no candidate eligible; {winner['algorithm']} is the most stable "
        f"(stability {winner['stability']:.3f})"
    )


def fit_candidates(
    features_df: pd.DataFrame,
    *,
    algorithms: Sequence[str] = tuple(ALGORITHMS),
    production: str = "auto",
    params: Mapping[str, Mapping[str, Any]] | None = None,
    features: Sequence[str] | None = None,
    feature_groups: Sequence[str] = DEFAULT_FEATURE_GROUPS,
    log_features: Sequence[str] | None = None,
    eval_size: int = 10_000,
    n_resamples: int = 5,
    resample_size: int = 10_000,
    rule: SelectionRule | None = None,
    random_state: int = 0,
    ground_truth: pd.Series | None = None,
) -> SegmentationResult:
    """Fit every candidate algorithm, compare them and choose the production one.

    The feature preparation is fitted once and shared. For each candidate the
    table records its parameters (after its own search: k, eps, ...), the
    number of segments, silhouette, Calinski-Harabasz and Davies-Bouldin on
    one stratified evaluation sample of ``eval_size`` customers (the same for
    all candidates; noise counted as a group), the noise share, the smallest
    segment share, bootstrap stability (mean ARI on the evaluation sample
    between the fitted labels and refits with the same parameters on
    ``n_resamples`` bootstrap resamples of ``resample_size`` customers) and
    the fit time (clustering and assigning every customer).

    Parameters
    ----------
    features_df : DataFrame
        ``features.customer_features`` (needs ``customer_id``).
    algorithms : sequence of str, default=all of :data:`ALGORITHMS`
        Candidates to fit.
    production : str, default="auto"
        ``"auto"`` = choose by ``rule``; an algorithm name = use that one
        (it must be among ``algorithms``).
    params : mapping, default=None
        Extra clusterer parameters per algorithm, e.g.
        ``{"kmeans": {"k_range": (3, 10)}, "ward": {"sample_size": 8000}}``.
    features, feature_groups, log_features
        Feature selection, as in :class:`CustomerSegmenter`.
    eval_size : int, default=10000
        Rows of the evaluation sample.
    n_resamples : int, default=5
        Bootstrap resamples for the stability column.
    resample_size : int, default=10000
        Rows per bootstrap resample.
    rule : SelectionRule, default=None
        ``None`` = ``SelectionRule()``.
    random_state : int, default=0
        Seed of the clusterers, the evaluation sample and the resamples.
    ground_truth : Series, default=None
        Known segment of each customer (index = ``customer_id``), for
        evaluation only: the ``ari_vs_ground_truth`` column is the adjusted
        Rand index of each candidate's assignment of every customer present in
        both (NaN without it). It never influences the choice.

    Returns
    -------
    result : SegmentationResult
    """
    _check_frame(features_df)
    rule = SelectionRule() if rule is None else rule
    algorithms = list(algorithms)
    if not algorithms:
        raise ValueError("algorithms must name at least one candidate")
    for a in algorithms:
        make_clusterer(a)  # validates the name
    if production != "auto" and production not in algorithms:
        raise ValueError(f"production={production!r} is not among the candidates {algorithms}")
    params = dict(params or {})

    t0 = time.perf_counter()
    base = CustomerSegmenter(
        features=features, feature_groups=feature_groups, log_features=log_features
    )
    Xt = base._fit_preprocessor(features_df)
    value = base._value
    preprocess_seconds = time.perf_counter() - t0

    rng = check_random_state(random_state)
    eval_idx = stratified_sample(Xt, eval_size, rng)
    rows, models, eval_labels = [], {}, []
    for a in algorithms:
        settings = {"random_state": random_state, **params.get(a, {})}
        clusterer = make_clusterer(a, **settings)
        start = time.perf_counter()
        clusterer.fit(Xt)
        fit_seconds = time.perf_counter() - start
        # the candidate shares the fitted preparation: copy it, then finish with its clusterer
        model = clone(base).set_params(clusterer=make_clusterer(a, **settings))
        shared = ["features_", "categorical_features_", "log_features_", "preprocessor_"]
        shared += ["_fitted_on_frame", "n_features_in_", "feature_names_in_"]
        for attr in shared:
            if hasattr(base, attr):
                setattr(model, attr, getattr(base, attr))
        model._value = value
        model._finish(features_df, clusterer)
        models[a] = model
        eval_labels.append(clusterer.labels_[eval_idx])
        sizes = np.bincount(model.labels_, minlength=model.n_clusters_)
        if model.noise_cluster_ is not None:
            sizes = np.delete(sizes, model.noise_cluster_)
        rows.append(
            {
                "algorithm": a,
                "params": json.dumps(
                    {k: _jsonable(v) for k, v in clusterer.fixed_params_.items()}, sort_keys=True
                ),
                "k": int(clusterer.n_clusters_),
                "n_segments": int(model.n_clusters_),
                "noise_share": float(clusterer.noise_share_),
                "min_segment_share": float(sizes.min() / len(Xt)) if sizes.size else 0.0,
                "stability": _bootstrap_stability(
                    clusterer, Xt, eval_idx, n_resamples, resample_size, rng
                ),
                "fit_seconds": fit_seconds,
            }
        )
    with threadpool_limits(limits=1):  # see ml.clustering: small work, shared cores
        eval_scores = cluster_scores(Xt[eval_idx], eval_labels)
    for row, scores in zip(rows, eval_scores, strict=True):
        row.update(scores)
    table = pd.DataFrame(rows)
    table["ari_vs_ground_truth"] = [
        _ari_vs_truth(features_df[ID_COLUMN], models[a].labels_, ground_truth) for a in algorithms
    ]
    notes = []
    for _, r in table.iterrows():
        why = []
        if r["k"] < 2:
            why.append("fewer than 2 segments")
        if r["noise_share"] > rule.max_noise_share:
            why.append(f"noise share {r['noise_share']:.3f} > {rule.max_noise_share:g}")
        if not r["stability"] >= rule.min_stability:
            why.append(f"stability {r['stability']:.3f} < {rule.min_stability:g}")
        if r["min_segment_share"] < rule.min_segment_share:
            why.append(f"a segment below {rule.min_segment_share:g} of customers")
        notes.append("; ".join(why))
    table["note"] = notes
    table["eligible"] = table["note"] == ""
    if production == "auto":
        chosen, reason = _choose(table, rule)
    else:
        chosen, reason = production, f"configured: production={production!r}"
    table["chosen"] = table["algorithm"] == chosen
    table = table[CANDIDATE_COLUMNS]
    model = models[chosen]
    model.selection_reason_ = reason
    model.candidates_ = table
    elbow = models["kmeans"].k_scores_ if "kmeans" in models else pd.DataFrame()
    return SegmentationResult(
        model=model,
        chosen=chosen,
        reason=reason,
        candidates=table,
        assignments=_assignments(features_df[ID_COLUMN], model.labels_, model.segment_names_),
        profile=model.profile_.copy(),
        elbow=elbow,
        models=models,
        rule=rule,
        preprocess_seconds=preprocess_seconds,
    )


def _ari_vs_truth(ids: pd.Series, labels: np.ndarray, truth: pd.Series | None) -> float:
    if truth is None:
        return np.nan
    truth = truth.copy()
    truth.index = truth.index.astype(str)
    if truth.index.duplicated().any():
        raise ValueError("ground_truth has duplicate customer ids")
    known = truth.reindex(ids.astype(str).to_numpy())
    mask = known.notna().to_numpy()
    if not mask.any():
        return np.nan
    return float(adjusted_rand_score(known.to_numpy()[mask], labels[mask]))


def _jsonable(v: Any) -> Any:
    """``v`` as a JSON value (numpy scalars unwrapped, estimators and the like as text)."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if v is None or isinstance(v, str | int | float | bool):
        return v
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return repr(v)


# --------------------------------------------------------------------------- #
# persistence and scoring
# --------------------------------------------------------------------------- #
MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
LATEST_FILE = "LATEST"


def _training_window(features_df: pd.DataFrame | None) -> dict[str, str | None]:
    window: dict[str, str | None] = {"as_of_date": None, "first_order_date": None}
    if features_df is None:
        return window
    for column, how in (("as_of_date", "max"), ("first_order_date", "min")):
        if column in features_df.columns and len(features_df):
            value = getattr(pd.to_datetime(features_df[column]), how)()
            window[column] = None if pd.isna(value) else value.date().isoformat()
    return window


def save_model(
    model: CustomerSegmenter,
    directory: str | os.PathLike,
    *,
    features_df: pd.DataFrame | None = None,
    version: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save a fitted segmenter and its metadata under ``directory/<version>/``.

    Writes ``model.joblib`` and ``metadata.json`` (features, log features,
    algorithm and parameters, segment names, training window read from
    ``features_df`` - ``as_of_date`` and first order date -, number of
    training customers, library versions, ``extra``), then points
    ``directory/LATEST`` at the version. ``directory`` gets a ``.gitignore``
    of ``*`` so a model is never committed by accident.

    Parameters
    ----------
    model : CustomerSegmenter
        Fitted model.
    directory : path
        Model store (e.g. ``<workdir>/models/segmentation``), created if needed.
    features_df : DataFrame, default=None
        The training features, for the training window.
    version : str, default=None
        Version name; ``None`` = UTC timestamp ``YYYYMMDDTHHMMSSffffffZ``.
    extra : mapping, default=None
        More JSON-serialisable metadata (e.g. the selection reason).

    Returns
    -------
    path : Path
        The version directory.
    """
    check_is_fitted(model, ("clusterer_", "preprocessor_"))
    root = Path(directory)
    target = new_version_dir(root, version)
    version = target.name
    metadata = {
        "version": version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "algorithm": next(
            (a for a, c in ALGORITHMS.items() if type(model.clusterer_) is c),
            type(model.clusterer_).__name__,
        ),
        "clusterer_params": {k: _jsonable(v) for k, v in model.clusterer_.get_params().items()},
        "fitted_params": {k: _jsonable(v) for k, v in model.clusterer_.fixed_params_.items()},
        "features": list(model.features_),
        "categorical_features": list(model.categorical_features_),
        "log_features": list(model.log_features_),
        "value_column": model.value_column,
        "n_segments": int(model.n_clusters_),
        "segment_names": list(model.segment_names_),
        "noise_cluster": model.noise_cluster_,
        "n_training_customers": int(len(model.labels_)),
        "training_window": _training_window(features_df),
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        **dict(extra or {}),
    }
    atomic_write(target / MODEL_FILE, lambda p: joblib.dump(model, p, compress=3))
    atomic_write(
        target / METADATA_FILE, lambda p: Path(p).write_text(json.dumps(metadata, indent=2))
    )
    point_latest(root, version)
    return target


def new_version_dir(root: Path, version: str | None = None) -> Path:
    """``root/<version>/`` created (default version: UTC timestamp), with a ``.gitignore``
    of ``*`` in ``root`` so a model is never committed by accident."""
    version = version or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    if not version or any(ch in version for ch in "/\\") or version.startswith("."):
        raise ValueError(f"invalid model version {version!r}")
    target = root / version
    target.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# fitted models are artefacts, never committed\n*\n")
    return target


def point_latest(root: Path, version: str) -> None:
    """Make ``version`` the one ``root/LATEST`` names (atomically)."""
    atomic_write(root / LATEST_FILE, lambda p: Path(p).write_text(version + "\n"))


def version_dir(root: Path, version: str | None, what: str) -> Path:
    """``root/<version>/``, by default the one ``LATEST`` names; ``what`` is for the error."""
    if version is None:
        latest = root / LATEST_FILE
        if not latest.exists():
            raise FileNotFoundError(f"no saved {what} under {root}")
        version = latest.read_text().strip()
    return root / version


def warn_if_other_sklearn(metadata: Mapping[str, Any], what: str) -> None:
    """Pickles are only reliable within one scikit-learn version: warn when it differs."""
    saved = metadata.get("versions", {}).get("scikit-learn")
    if saved != sklearn.__version__:
        warnings.warn(
            f"{what} saved with scikit-learn {saved}, running {sklearn.__version__}",
            UserWarning,
            stacklevel=3,
        )


def atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def load_model(
    directory: str | os.PathLike, version: str | None = None
) -> tuple[CustomerSegmenter, dict[str, Any]]:
    """Load ``(model, metadata)`` saved by :func:`save_model` (``LATEST`` by default).

    Warns if the model was saved with another scikit-learn version (pickles
    are only reliable within one version).
    """
    target = version_dir(Path(directory), version, "segmentation model")
    metadata = json.loads((target / METADATA_FILE).read_text())
    warn_if_other_sklearn(metadata, "model")
    model = joblib.load(target / MODEL_FILE)
    return model, metadata


def score_customers(model: CustomerSegmenter, features_df: pd.DataFrame) -> pd.DataFrame:
    """Assign customers (new or changed ones, or all) to the model's existing segments.

    Uses the fitted preparation and clusterer only; nothing is refitted.
    Returns ``customer_id, cluster_id, cluster_label`` in input order.
    """
    _check_frame(features_df)
    check_is_fitted(model, ("clusterer_", "preprocessor_"))
    if len(features_df) == 0:
        return _assignments(features_df[ID_COLUMN], np.zeros(0, dtype=np.int64), [])
    labels = model.predict(features_df)
    return _assignments(features_df[ID_COLUMN], labels, model.segment_names_)


# --------------------------------------------------------------------------- #
# migration
# --------------------------------------------------------------------------- #
MIGRATION_COLUMNS = [
    "from_cluster_id",
    "from_label",
    "to_cluster_id",
    "to_label",
    "customers",
    "share_of_from",
]
NEW_LABEL = "(new customer)"
GONE_LABEL = "(no longer present)"


def segment_migration(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """How many customers moved from each segment to each other segment.

    Parameters
    ----------
    previous, current : DataFrame
        Assignment tables with ``customer_id``, ``cluster_id``, ``cluster_label``.

    Returns
    -------
    migration : DataFrame
        One row per (from, to) pair with at least one customer, columns
        :data:`MIGRATION_COLUMNS`. Customers only in ``current`` come from
        ``(new customer)``, customers only in ``previous`` go to ``(no longer
        present)``; those rows have a null cluster id. ``share_of_from`` is
        the share of the from-segment's customers. Staying customers are the
        rows with equal ids. Sorted by from id, then to id (nulls last).
    """
    for name, table in (("previous", previous), ("current", current)):
        missing = [c for c in ASSIGNMENT_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"{name} assignments lack column(s) {missing!r}")
        if table[ID_COLUMN].duplicated().any():
            raise ValueError(f"{name} assignments have duplicate customer ids")
    prev = previous[ASSIGNMENT_COLUMNS].rename(
        columns={"cluster_id": "from_cluster_id", "cluster_label": "from_label"}
    )
    curr = current[ASSIGNMENT_COLUMNS].rename(
        columns={"cluster_id": "to_cluster_id", "cluster_label": "to_label"}
    )
    prev[ID_COLUMN] = prev[ID_COLUMN].astype(str)
    curr[ID_COLUMN] = curr[ID_COLUMN].astype(str)
    both = prev.merge(curr, on=ID_COLUMN, how="outer")
    both["from_cluster_id"] = both["from_cluster_id"].astype("Int64")
    both["to_cluster_id"] = both["to_cluster_id"].astype("Int64")
    both["from_label"] = (
        both["from_label"].astype(object).where(both["from_label"].notna(), NEW_LABEL)
    )
    both["to_label"] = both["to_label"].astype(object).where(both["to_label"].notna(), GONE_LABEL)
    keys = ["from_cluster_id", "from_label", "to_cluster_id", "to_label"]
    out = both.groupby(keys, dropna=False, sort=False).size().rename("customers").reset_index()
    out["customers"] = out["customers"].astype(np.int64)
    from_total = out.groupby(["from_cluster_id", "from_label"], dropna=False)[
        "customers"
    ].transform("sum")
    out["share_of_from"] = out["customers"] / from_total
    out = out.sort_values(["from_cluster_id", "to_cluster_id"], na_position="last", kind="stable")
    return out[MIGRATION_COLUMNS].reset_index(drop=True)
