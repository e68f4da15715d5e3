"""The supervised churn classifier: preprocessing, gradient boosting or logistic
regression, calibrated probabilities (a scikit-learn estimator).

Pure library (numpy, pandas, scikit-learn).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ml.threads import threads_for_call

__all__ = ["ChurnModel"]

#: Input cells (rows x columns) per block of :meth:`ChurnModel.predict_proba`.
PREDICT_BLOCK_CELLS = 2**21


def _categorical_columns(X: pd.DataFrame, given: Sequence[Hashable] | None) -> list[Hashable]:
    if given is not None:
        missing = [c for c in given if c not in X.columns]
        if missing:
            raise ValueError(f"categorical_features {missing} are not columns of X")
        return list(given)
    # strings, categories and booleans; pandas 3 reads text as the "str" dtype
    return [
        c
        for c in X.columns
        if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])
    ]


def _rows(X, start: int, stop: int):
    return X.iloc[start:stop] if isinstance(X, pd.DataFrame) else X[start:stop]


class ChurnModel(ClassifierMixin, BaseEstimator):
    """Calibrated churn classifier on a customers DataFrame.

    Pipeline: a :class:`~sklearn.compose.ColumnTransformer` (numeric columns:
    median imputation, plus standard scaling for the logistic model; categorical
    columns: most-frequent imputation and ``OneHotEncoder(handle_unknown="ignore")``)
    followed by the estimator; the whole pipeline is wrapped in
    :class:`~sklearn.calibration.CalibratedClassifierCV`, so every preprocessing step
    is fitted on training folds only.

    Parameters
    ----------
    estimator : {"hgb", "logit"}, default="hgb"
        ``"hgb"``: :class:`~sklearn.ensemble.HistGradientBoostingClassifier`
        (non-linear, handles interactions, fast on millions of rows);
        ``"logit"``: :class:`~sklearn.linear_model.LogisticRegression` on scaled
        numerics and one-hot categoricals.
    categorical_features : sequence of str, default=None
        Columns to one-hot encode; by default every non-numeric or boolean column.
    calibration : {"isotonic", "sigmoid"}, default="isotonic"
        Calibration method of ``CalibratedClassifierCV``.
    calibration_cv : int, default=3
        Folds of ``CalibratedClassifierCV``.
    learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization
        HistGradientBoosting parameters (``estimator="hgb"``). Early stopping on a
        10 % validation split is on for more than 10,000 rows (scikit-learn's default).
    C : float, default=1.0
        Inverse regularisation strength (``estimator="logit"``).
    random_state : int, RandomState or None, default=None
        Seed for the boosting (validation split) and the calibration folds.

    Attributes
    ----------
    calibrated_ : CalibratedClassifierCV
        The fitted, calibrated pipeline.
    classes_ : ndarray of shape (2,)
        Class labels; ``predict_proba[:, 1]`` is the probability of ``classes_[1]``
        (churn, for 0/1 or False/True labels).
    numeric_features_, categorical_features_ : list
        Columns used by the two preprocessing branches.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    """

    def __init__(
        self,
        *,
        estimator: str = "hgb",
        categorical_features: Sequence[Hashable] | None = None,
        calibration: str = "isotonic",
        calibration_cv: int = 3,
        learning_rate: float = 0.05,
        max_iter: int = 200,
        max_leaf_nodes: int = 8,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        C: float = 1.0,
        random_state: Any = None,
    ) -> None:
        self.estimator = estimator
        self.categorical_features = categorical_features
        self.calibration = calibration
        self.calibration_cv = calibration_cv
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.C = C
        self.random_state = random_state

    def _pipeline(self, numeric: list, categorical: list, seed: int) -> Pipeline:
        if self.estimator == "hgb":
            numeric_steps: list = [("impute", SimpleImputer(strategy="median"))]
            clf: Any = HistGradientBoostingClassifier(
                learning_rate=self.learning_rate,
                max_iter=self.max_iter,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization,
                random_state=seed,
            )
        elif self.estimator == "logit":
            numeric_steps = [
                ("impute", SimpleImputer(strategy="median")),
                ("scale", StandardScaler()),
            ]
            clf = LogisticRegression(C=self.C, max_iter=5000)
        else:
            raise ValueError(f"estimator must be 'hgb' or 'logit', got {self.estimator!r}")
        categorical_steps = [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
        transformers = []
        if numeric:
            transformers.append(("numeric", Pipeline(numeric_steps), numeric))
        if categorical:
            transformers.append(("categorical", Pipeline(categorical_steps), categorical))
        pre = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
        return Pipeline([("preprocess", pre), ("classifier", clf)])

    def fit(self, X: pd.DataFrame, y: ArrayLike) -> ChurnModel:
        """Fit the calibrated pipeline.

        Parameters
        ----------
        X : DataFrame of shape (n_customers, n_columns)
            One row per customer; numeric and categorical columns.
        y : array-like of shape (n_customers,)
            Binary churn label (1/True = churned).

        Returns
        -------
        self : ChurnModel
        """
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a pandas DataFrame (columns are selected by name)")
        if self.calibration not in ("isotonic", "sigmoid"):
            raise ValueError(
                f"calibration must be 'isotonic' or 'sigmoid', got {self.calibration!r}"
            )
        y = np.asarray(y)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        classes = np.unique(y)
        if classes.shape[0] != 2:
            raise ValueError(f"y must have exactly two classes, got {classes.tolist()}")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        categorical = _categorical_columns(X, self.categorical_features)
        numeric = [c for c in X.columns if c not in categorical]
        cv = StratifiedKFold(n_splits=self.calibration_cv, shuffle=True, random_state=seed)
        self.calibrated_ = CalibratedClassifierCV(
            self._pipeline(numeric, categorical, seed), method=self.calibration, cv=cv
        )
        # No sample_weight: CalibratedClassifierCV cannot pass it through a Pipeline
        # (scikit-learn issue 21134), so weights would reach the calibrator only.
        self.calibrated_.fit(X, y)
        self.classes_ = self.calibrated_.classes_
        self.numeric_features_ = numeric
        self.categorical_features_ = categorical
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated class probabilities.

        Parameters
        ----------
        X : DataFrame
            Same columns as in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_customers, 2)
            Column 1 is the churn probability.
        """
        check_is_fitted(self, "calibrated_")
        # In blocks of rows: each row is scored on its own, so the result is the same, and
        # a block's arrays (the preprocessed matrix of each calibration fold) stay small
        # enough for the allocator to reuse, where the whole input's would be fresh
        # memory from the operating system three times over.
        # Each block asks for its cores as it starts (ml.threads.threads_for_call): the
        # step's share while another model fit of the run overlaps it, every core once
        # that fit has ended.
        rows = max(1_000, PREDICT_BLOCK_CELLS // max(1, X.shape[1]))
        if X.shape[0] <= rows:
            return self.calibrated_.predict_proba(X)
        blocks = []
        for start in range(0, X.shape[0], rows):
            block = _rows(X, start, start + rows)
            with threads_for_call(X.shape[0]):
                blocks.append(self.calibrated_.predict_proba(block))
        return np.concatenate(blocks)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Most probable class (churn when its probability is >= 0.5).

        Parameters
        ----------
        X : DataFrame
            Same columns as in ``fit``.

        Returns
        -------
        labels : ndarray of shape (n_customers,)
        """
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]
