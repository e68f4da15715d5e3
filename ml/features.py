"""Feature preparation for customer segmentation.

Owns *which* columns of ``features.customer_features`` enter the clustering and
*how* they are prepared. The columns are described in
``dbt_project/models/features/_features__models.yml``.

Which features (:func:`select_features`)
    By default the behavioural group (:data:`BEHAVIOURAL_FEATURES`: recency,
    frequency, money, tenure, purchase cadence, spend trend and product
    breadth). The ``engagement`` and ``demographics`` groups are opt-in and
    use only those of their columns that are present and not entirely null;
    ``gender`` and ``region`` are categorical and one-hot encoded.

How (:func:`build_preprocessor`)
    One :class:`~sklearn.compose.ColumnTransformer`. Each numeric feature gets
    its own pipeline

        median imputation -> [log1p(max(x, 0))] -> winsorisation -> StandardScaler

    where the log step is applied to the skewed money, count and day features
    (:data:`DEFAULT_LOG_FEATURES`). ``spend_trend_90d`` is signed and stays
    linear (winsorised, then scaled): a signed log would blow the many exact
    zeros (no spend in either window) apart from small trends, which was
    measured to split the loyal customers into spurious segments. Categorical
    features get ``most frequent`` imputation and a one-hot encoding (unknown
    categories at scoring time encode as all zeros). The transformer is fitted
    once on the training customers and reused unchanged for scoring.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data

from ml.columns import categorical_columns, group_columns, skewed_columns

__all__ = [
    "BEHAVIOURAL_FEATURES",
    "CATEGORICAL_FEATURES",
    "DEFAULT_FEATURES",
    "DEFAULT_FEATURE_GROUPS",
    "DEFAULT_LOG_FEATURES",
    "FEATURE_GROUPS",
    "Winsorizer",
    "build_preprocessor",
    "clip_log1p",
    "inverse_transform_features",
    "select_features",
]

#: Behavioural columns used by default: RFM (+ tenure and purchase cadence),
#: spend trend and product breadth (the groups are those of ml/columns.py).
BEHAVIOURAL_FEATURES: tuple[str, ...] = group_columns("behavioural")
DEFAULT_FEATURES = BEHAVIOURAL_FEATURES

#: Feature groups of ``customer_features``. ``behavioural`` columns are
#: required when the group is selected; the other groups are used where present.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    g: group_columns(g) for g in ("behavioural", "engagement", "demographics")
}
DEFAULT_FEATURE_GROUPS: tuple[str, ...] = ("behavioural",)

#: Columns that are always one-hot encoded (other non-numeric columns are too).
CATEGORICAL_FEATURES: tuple[str, ...] = categorical_columns()

#: Skewed, non-negative money/count/day features transformed with ``log1p(max(x, 0))``.
DEFAULT_LOG_FEATURES: tuple[str, ...] = skewed_columns()

#: Quantiles at which :class:`Winsorizer` clips by default.
DEFAULT_WINSOR_QUANTILES: tuple[float, float] = (0.01, 0.99)


def clip_log1p(X: np.ndarray) -> np.ndarray:
    """Return ``log1p(max(X, 0))`` element-wise; NaN stays NaN.

    Net spend can be zero or negative for customers with only returns; those
    values are clipped to 0 before the log so that the transform is defined.
    """
    return np.log1p(np.maximum(X, 0.0))


def _is_categorical(series: pd.Series) -> bool:
    return series.name in CATEGORICAL_FEATURES or not (
        pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    )


def select_features(
    frame: pd.DataFrame,
    features: Sequence[str] | None = None,
    groups: Sequence[str] = DEFAULT_FEATURE_GROUPS,
) -> tuple[list[str], list[str]]:
    """Choose the clustering columns of ``frame``.

    Parameters
    ----------
    frame : DataFrame
        Customer features (one row per customer).
    features : sequence of str, default=None
        Explicit column list; every column must exist. Overrides ``groups``.
    groups : sequence of str, default=("behavioural",)
        Names from :data:`FEATURE_GROUPS`. ``behavioural`` columns must exist;
        columns of the other groups are used only if present and not all null.

    Returns
    -------
    numeric, categorical : list of str
        Numeric features and categorical features (one-hot encoded), each in
        the order given.

    Raises
    ------
    ValueError
        For an unknown group, a missing required column or an empty selection.
    """
    if features is not None:
        chosen = list(dict.fromkeys(features))
        missing = [f for f in chosen if f not in frame.columns]
        if missing:
            raise ValueError(
                f"X is missing feature column(s) {missing!r}; it has {list(frame.columns)!r}"
            )
    else:
        unknown = [g for g in groups if g not in FEATURE_GROUPS]
        if unknown:
            raise ValueError(f"unknown feature group(s) {unknown!r}; known: {list(FEATURE_GROUPS)}")
        chosen = []
        for group in groups:
            columns = FEATURE_GROUPS[group]
            if group == "behavioural":
                missing = [f for f in columns if f not in frame.columns]
                if missing:
                    raise ValueError(
                        f"X is missing feature column(s) {missing!r} of the behavioural group"
                    )
                chosen += list(columns)
            else:
                chosen += [c for c in columns if c in frame.columns and frame[c].notna().any()]
        chosen = list(dict.fromkeys(chosen))
    if not chosen:
        raise ValueError("no feature columns selected")
    categorical = [c for c in chosen if _is_categorical(frame[c])]
    numeric = [c for c in chosen if c not in categorical]
    return numeric, categorical


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


def _to_object(X):
    """Categorical input as an object array with ``None`` for missing values.

    pandas string/categorical dtypes mark missing values with ``pd.NA``/NaN,
    which the imputer and encoder treat differently; one representation keeps
    "missing" a single category.
    """
    frame = pd.DataFrame(X)
    return frame.astype(object).where(frame.notna(), None).to_numpy()


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
    categorical: Sequence[Hashable] = (),
    winsor_quantiles: tuple[float, float] = DEFAULT_WINSOR_QUANTILES,
) -> ColumnTransformer:
    """Build the (unfitted) preprocessing transformer for the clustering features.

    Every numeric feature gets its own pipeline: median imputation, then
    ``log1p(max(x, 0))`` if it is in ``log_features``, then winsorisation at
    ``winsor_quantiles`` (bounds learned in ``fit``), then standard scaling.
    Output column ``i`` corresponds to ``features[i]``; the one-hot columns of
    the ``categorical`` features follow. Other input columns are dropped.

    Parameters
    ----------
    features : sequence of str or int
        Numeric columns: names when the transformer will see a DataFrame,
        integer positions when it will see an ndarray. May be empty if
        ``categorical`` is not.
    log_features : sequence of str or int, default=()
        Subset of ``features`` that is log-transformed.
    categorical : sequence of str, default=()
        Columns imputed with their most frequent value and one-hot encoded
        (categories unseen in ``fit`` encode as all zeros).
    winsor_quantiles : tuple of (float, float), default=(0.01, 0.99)
        Quantiles at which each (log-transformed) feature is clipped.

    Returns
    -------
    preprocessor : ColumnTransformer
        Unfitted transformer producing a dense float array.

    Raises
    ------
    ValueError
        If no column is given, a column is repeated, or ``log_features`` is
        not a subset of ``features``.
    """
    features = list(features)
    log_features = list(log_features)
    categorical = list(categorical)
    if not features and not categorical:
        raise ValueError("features must name at least one column")
    if len(set(features + categorical)) != len(features + categorical):
        raise ValueError(f"features contains duplicates: {features + categorical!r}")
    unknown = [f for f in log_features if f not in features]
    if unknown:
        raise ValueError(f"log_features {unknown!r} are not in features {features!r}")

    log_set = set(log_features)
    taken: set[str] = set()
    transformers = []
    for position, column in enumerate(features):
        # keep_empty_features: an all-NaN column becomes 0 instead of vanishing,
        # so the output always has exactly len(features) numeric columns.
        steps: list[tuple[str, object]] = [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
        ]
        if column in log_set:
            steps.append(("log1p", FunctionTransformer(clip_log1p, feature_names_out="one-to-one")))
        steps.append(("winsorize", Winsorizer(quantile_range=winsor_quantiles)))
        steps.append(("scale", StandardScaler()))
        transformers.append((_transformer_name(column, position, taken), Pipeline(steps), [column]))
    if categorical:
        onehot = Pipeline(
            [
                ("as_object", FunctionTransformer(_to_object, feature_names_out="one-to-one")),
                (
                    "impute",
                    SimpleImputer(
                        strategy="most_frequent", missing_values=None, keep_empty_features=True
                    ),
                ),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        transformers.append(("categorical", onehot, categorical))
    return ColumnTransformer(
        transformers, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False
    )


def inverse_transform_features(preprocessor: ColumnTransformer, Z: ArrayLike) -> np.ndarray:
    """Map points from the scaled space back to numeric feature units.

    Undoes the scaling and the log transform of a fitted preprocessor built by
    :func:`build_preprocessor`. Winsorisation and the clip at 0 are not
    invertible, so the round trip ``transform(inverse(Z)) == Z`` holds for
    points inside the winsorisation bounds (e.g. k-means centroids). One-hot
    columns (which follow the numeric ones) are ignored.

    Parameters
    ----------
    preprocessor : ColumnTransformer
        Fitted transformer returned by :func:`build_preprocessor`.
    Z : array-like of shape (n_points, n_output_columns)
        Points in the scaled space.

    Returns
    -------
    X : ndarray of shape (n_points, n_numeric_features)
        Points in the original units of the numeric features, in order.
    """
    check_is_fitted(preprocessor, "transformers_")
    Z = np.atleast_2d(np.asarray(Z, dtype=np.float64))
    pipes = [
        pipe
        for _, pipe, _ in preprocessor.transformers_
        if isinstance(pipe, Pipeline) and "scale" in pipe.named_steps
    ]
    n_out = len(preprocessor.get_feature_names_out())
    if Z.shape[1] != n_out:
        raise ValueError(f"Z has {Z.shape[1]} columns, the preprocessor produces {n_out}")
    out = np.empty((Z.shape[0], len(pipes)))
    for i, pipe in enumerate(pipes):
        scaler = pipe.named_steps["scale"]
        x = Z[:, i] * scaler.scale_[0] + scaler.mean_[0]
        if "log1p" in pipe.named_steps:
            x = np.expm1(x)
        out[:, i] = x
    return out
