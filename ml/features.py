"""Feature preparation for customer segmentation.

The behavioural features come from ``features.customer_features`` (see
``docs/data_contract.md``). Each feature gets its own small pipeline

    median imputation -> [log1p(max(x, 0))] -> winsorisation -> StandardScaler

and the pipelines are combined in a :class:`~sklearn.compose.ColumnTransformer`
whose output columns are in the same order as ``features``. The log step is
only applied to the skewed money/count features (``log_features``).
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_LOG_FEATURES",
    "Winsorizer",
    "build_preprocessor",
    "clip_log1p",
    "inverse_transform_features",
]

#: Behavioural columns of ``customer_features`` used for clustering by default.
DEFAULT_FEATURES: tuple[str, ...] = (
    "recency_days",
    "frequency",
    "monetary_total",
    "monetary_avg",
    "tenure_days",
)

#: Skewed money/count features that are transformed with ``log1p(max(x, 0))``.
DEFAULT_LOG_FEATURES: tuple[str, ...] = ("frequency", "monetary_total", "monetary_avg")

#: Quantiles at which :class:`Winsorizer` clips by default.
DEFAULT_WINSOR_QUANTILES: tuple[float, float] = (0.01, 0.99)


def clip_log1p(X: np.ndarray) -> np.ndarray:
    """Return ``log1p(max(X, 0))`` element-wise; NaN stays NaN.

    Net spend can be zero or negative for customers with only returns; those
    values are clipped to 0 before the log so that the transform is defined.
    """
    return np.log1p(np.maximum(X, 0.0))


class Winsorizer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Clip each column to quantiles learned in ``fit``.

    Parameters
    ----------
    quantile_range : tuple of (float, float), default=(0.01, 0.99)
        Lower and upper quantile, each in ``[0, 1]``, learned per column on the
        training data. Values outside ``[lower_, upper_]`` are clipped.

    Attributes
    ----------
    lower_ : ndarray of shape (n_features,)
        Learned lower bound per column (``-inf`` for an all-NaN column).
    upper_ : ndarray of shape (n_features,)
        Learned upper bound per column (``+inf`` for an all-NaN column).
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names seen in ``fit``, if ``X`` had string column names.
    """

    def __init__(self, quantile_range: tuple[float, float] = DEFAULT_WINSOR_QUANTILES):
        self.quantile_range = quantile_range

    def fit(self, X: ArrayLike, y: None = None) -> Winsorizer:
        """Learn the per-column clipping bounds.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; NaN is ignored when computing the quantiles.
        y : None
            Ignored.

        Returns
        -------
        self : Winsorizer
            The fitted transformer.
        """
        lo, hi = self.quantile_range
        if not (0.0 <= lo <= hi <= 1.0):
            raise ValueError(
                f"quantile_range must satisfy 0 <= lower <= upper <= 1, got {self.quantile_range!r}"
            )
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        with warnings.catch_warnings():
            # all-NaN columns give NaN bounds (and a RuntimeWarning); handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            if np.isnan(X).any():
                bounds = np.nanquantile(X, [lo, hi], axis=0)
            else:
                bounds = np.quantile(X, [lo, hi], axis=0)
        self.lower_ = np.where(np.isnan(bounds[0]), -np.inf, bounds[0])
        self.upper_ = np.where(np.isnan(bounds[1]), np.inf, bounds[1])
        return self

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Clip ``X`` to ``[lower_, upper_]`` column-wise (NaN passes through).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to clip.

        Returns
        -------
        X_clipped : ndarray of shape (n_samples, n_features)
            Clipped copy of ``X``.
        """
        check_is_fitted(self, ("lower_", "upper_"))
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return np.clip(X, self.lower_, self.upper_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _transformer_name(column: Hashable, position: int, taken: set[str]) -> str:
    """A ColumnTransformer step name for ``column``: readable, unique, no ``__``."""
    name = str(column)
    if not name or "__" in name or name in taken or name == "remainder":
        name = f"feature_{position}"
    taken.add(name)
    return name


def build_preprocessor(
    features: Sequence[Hashable],
    log_features: Sequence[Hashable] = (),
    *,
    winsor_quantiles: tuple[float, float] = DEFAULT_WINSOR_QUANTILES,
) -> ColumnTransformer:
    """Build the (unfitted) preprocessing transformer for the clustering features.

    Every feature gets its own pipeline: median imputation, then
    ``log1p(max(x, 0))`` if it is in ``log_features``, then winsorisation at
    ``winsor_quantiles`` (bounds learned in ``fit``), then standard scaling.
    Output column ``i`` corresponds to ``features[i]``; other input columns are
    dropped.

    Parameters
    ----------
    features : sequence of str or int
        Columns to use: names when the transformer will see a DataFrame,
        integer positions when it will see an ndarray.
    log_features : sequence of str or int, default=()
        Subset of ``features`` that is log-transformed.
    winsor_quantiles : tuple of (float, float), default=(0.01, 0.99)
        Quantiles at which each (log-transformed) feature is clipped.

    Returns
    -------
    preprocessor : ColumnTransformer
        Unfitted transformer producing a dense float array of shape
        ``(n_samples, len(features))``.

    Raises
    ------
    ValueError
        If ``features`` is empty or has duplicates, or ``log_features`` is not a
        subset of ``features``.
    """
    features = list(features)
    log_features = list(log_features)
    if not features:
        raise ValueError("features must name at least one column")
    if len(set(features)) != len(features):
        raise ValueError(f"features contains duplicates: {features!r}")
    unknown = [f for f in log_features if f not in features]
    if unknown:
        raise ValueError(f"log_features {unknown!r} are not in features {features!r}")

    log_set = set(log_features)
    taken: set[str] = set()
    transformers = []
    for position, column in enumerate(features):
        # keep_empty_features: an all-NaN column becomes 0 instead of vanishing,
        # so the output always has exactly len(features) columns.
        steps: list[tuple[str, object]] = [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
        ]
        if column in log_set:
            steps.append(("log1p", FunctionTransformer(clip_log1p, feature_names_out="one-to-one")))
        steps.append(("winsorize", Winsorizer(quantile_range=winsor_quantiles)))
        steps.append(("scale", StandardScaler()))
        transformers.append((_transformer_name(column, position, taken), Pipeline(steps), [column]))
    return ColumnTransformer(
        transformers, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False
    )


def inverse_transform_features(preprocessor: ColumnTransformer, Z: ArrayLike) -> np.ndarray:
    """Map points from the scaled space back to feature units.

    Undoes the scaling and the log transform of a fitted preprocessor built by
    :func:`build_preprocessor`. Winsorisation and the clip at 0 are not
    invertible, so the round trip ``transform(inverse(Z)) == Z`` holds for
    points inside the winsorisation bounds (e.g. k-means centroids).

    Parameters
    ----------
    preprocessor : ColumnTransformer
        Fitted transformer returned by :func:`build_preprocessor`.
    Z : array-like of shape (n_points, n_features)
        Points in the scaled space.

    Returns
    -------
    X : ndarray of shape (n_points, n_features)
        Points in the original feature units, columns in ``features`` order.
    """
    check_is_fitted(preprocessor, "transformers_")
    Z = np.atleast_2d(np.asarray(Z, dtype=np.float64))
    pipes = [pipe for _, pipe, _ in preprocessor.transformers_ if isinstance(pipe, Pipeline)]
    if Z.shape[1] != len(pipes):
        raise ValueError(f"Z has {Z.shape[1]} columns, the preprocessor produces {len(pipes)}")
    out = np.empty_like(Z)
    for i, pipe in enumerate(pipes):
        scaler = pipe.named_steps["scale"]
        x = Z[:, i] * scaler.scale_[0] + scaler.mean_[0]
        if "log1p" in pipe.named_steps:
            x = np.expm1(x)
        out[:, i] = x
    return out
