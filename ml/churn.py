"""Supervised churn model: calibrated churn probabilities, evaluation and drivers.

Public API
----------
ChurnModel
    scikit-learn classifier: ColumnTransformer (numeric impute [+ scale], one-hot
    categoricals) -> HistGradientBoosting or logistic regression, calibrated.
evaluate_churn
    ROC AUC, PR AUC, Brier score and lift in the top decile of scores.
compare_with_baseline
    The model's metrics next to the probability-alive-only baseline.
churn_drivers
    Permutation importance of the input columns.
churn_labels, customer_features_at, add_btyd_features
    Transaction-based (non-contractual) data: label "no purchase within the
    horizon after the cut-off", a pandas stand-in for dbt's customer features,
    and the BG/NBD features (probability alive, expected purchases).
load_telco
    The IBM Telco customers table (contractual data with its own churn label).

Two kinds of data use the same model. Non-contractual (transactions): train on
features as of one cut-off with labels from the following horizon, and evaluate
on a later cut-off whose features are computed afresh -- the training label
window must end on or before the evaluation cut-off. Contractual (subscriptions):
a customers table with attributes and a churn label, no transactions.

This module is a pure library (numpy, pandas, scipy, scikit-learn).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ml.btyd import BetaGeoModel, summary_from_customer_features

__all__ = [
    "ChurnModel",
    "add_btyd_features",
    "churn_drivers",
    "churn_labels",
    "compare_with_baseline",
    "customer_features_at",
    "evaluate_churn",
    "load_telco",
]

#: Churn horizon (days after the cut-off without a purchase) used by default.
DEFAULT_HORIZON_DAYS = 90

#: Columns added by :func:`add_btyd_features` (``{h}`` is the horizon in days).
P_ALIVE_COLUMN = "p_alive"
EXPECTED_PURCHASES_COLUMN = "expected_purchases_{h}d"
P_NO_PURCHASE_COLUMN = "p_no_purchase_{h}d"


# --------------------------------------------------------------------------- #
# the model
# --------------------------------------------------------------------------- #
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
        return self.calibrated_.predict_proba(X)

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


# --------------------------------------------------------------------------- #
# evaluation and drivers
# --------------------------------------------------------------------------- #
def _churn_scores(proba: ArrayLike) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim == 2:
        p = p[:, 1]
    if not np.all(np.isfinite(p)):
        raise ValueError("scores contain NaN or infinite values")
    return p


def lift_top_decile(y_true: ArrayLike, score: ArrayLike) -> float:
    """Churn rate among the 10 % highest scores divided by the overall churn rate.

    Ties at the decile boundary are shared pro rata, so the result does not depend
    on the order of tied rows.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary label (1 = churned).
    score : array-like of shape (n,)
        Higher = more likely to churn.

    Returns
    -------
    lift : float
    """
    y = np.asarray(y_true, dtype=np.float64)
    s = _churn_scores(score)
    base = y.mean()
    if base == 0:
        raise ValueError("no positive labels: lift is undefined")
    k = 0.1 * y.shape[0]
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    cut = s_sorted[int(np.ceil(k)) - 1]
    above = s_sorted > cut
    tied = s_sorted == cut
    n_above = above.sum()
    share = (k - n_above) / tied.sum()  # fraction of the tied group inside the decile
    positives = y_sorted[above].sum() + share * y_sorted[tied].sum()
    return float(positives / k / base)


def evaluate_churn(y_true: ArrayLike, proba: ArrayLike) -> dict[str, float]:
    """Discrimination and calibration metrics of churn probabilities.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary label (1 = churned).
    proba : array-like of shape (n,) or (n, 2)
        Churn probability (column 1 of ``predict_proba``).

    Returns
    -------
    metrics : dict
        ``roc_auc``, ``pr_auc`` (average precision), ``brier`` (mean squared error
        of the probabilities), ``lift_top_decile``, ``churn_rate`` and ``n``.
    """
    y = np.asarray(y_true).astype(np.float64)
    p = _churn_scores(proba)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "lift_top_decile": lift_top_decile(y, p),
        "churn_rate": float(y.mean()),
        "n": int(y.shape[0]),
    }


def compare_with_baseline(
    model: ChurnModel,
    X: pd.DataFrame,
    y: ArrayLike,
    *,
    p_alive_column: str = P_ALIVE_COLUMN,
    p_no_purchase_column: str | None = None,
    proba: ArrayLike | None = None,
) -> pd.DataFrame:
    """The churn model's metrics next to the probability-alive-only baseline.

    The baseline scores each customer by ``1 - p_alive`` (BG/NBD). Note that the
    BG/NBD gives every one-time buyer ``p_alive = 1``, so on data where most
    one-timers never return this baseline ranks worse than chance; the optional
    second baseline, the BG/NBD probability of no purchase in the horizon
    (``p_no_purchase_<h>d`` from :func:`add_btyd_features`), does not have that
    artefact. Customers without a value (e.g. returns only) get the column mean.

    Parameters
    ----------
    model : ChurnModel
        Fitted model (on an earlier cut-off than ``X``).
    X : DataFrame
        Evaluation features, including ``p_alive_column``.
    y : array-like
        Evaluation labels.
    p_alive_column : str, default="p_alive"
        Column with the BG/NBD probability alive.
    p_no_purchase_column : str, default=None
        Column with the BG/NBD probability of no purchase in the horizon; adds the
        row ``"p_no_purchase_baseline"`` when given.
    proba : array-like, default=None
        ``model.predict_proba(X)[:, 1]`` when the caller has it already (predicting
        is most of the cost on large data); computed when omitted.

    Returns
    -------
    table : DataFrame
        Index ``["churn_model", "p_alive_baseline"(, "p_no_purchase_baseline")]``,
        columns of :func:`evaluate_churn`.
    """
    p_alive = X[p_alive_column].astype(float)
    rows = {
        "churn_model": evaluate_churn(y, model.predict_proba(X) if proba is None else proba),
        "p_alive_baseline": evaluate_churn(y, 1.0 - p_alive.fillna(p_alive.mean()).to_numpy()),
    }
    if p_no_purchase_column is not None:
        p_none = X[p_no_purchase_column].astype(float)
        rows["p_no_purchase_baseline"] = evaluate_churn(y, p_none.fillna(p_none.mean()).to_numpy())
    return pd.DataFrame.from_dict(rows, orient="index")


def churn_drivers(
    model: ChurnModel,
    X: pd.DataFrame,
    y: ArrayLike,
    *,
    scoring: str = "roc_auc",
    n_repeats: int = 5,
    max_samples: float | int = 1.0,
    random_state: Any = 0,
) -> pd.DataFrame:
    """Permutation importance of each input column (the churn drivers).

    Columns are permuted in the raw input, so a categorical attribute counts as one
    driver however many one-hot columns it becomes. Use held-out data.

    Parameters
    ----------
    model : ChurnModel
        Fitted model.
    X : DataFrame
        Held-out features.
    y : array-like
        Held-out labels.
    scoring : str, default="roc_auc"
        Metric whose drop measures importance.
    n_repeats : int, default=5
    max_samples : float or int, default=1.0
        Rows drawn per repeat (a fraction or a count) -- lower it on large data.
    random_state : int, RandomState or None, default=0

    Returns
    -------
    drivers : DataFrame
        Columns ``feature``, ``importance_mean``, ``importance_std``, sorted by
        decreasing importance.
    """
    result = permutation_importance(
        model,
        X,
        np.asarray(y),
        scoring=scoring,
        n_repeats=n_repeats,
        max_samples=max_samples,
        random_state=random_state,
    )
    table = pd.DataFrame(
        {
            "feature": [str(c) for c in X.columns],
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    )
    return table.sort_values("importance_mean", ascending=False, kind="stable").reset_index(
        drop=True
    )


# --------------------------------------------------------------------------- #
# non-contractual data: labels and features from transactions
# --------------------------------------------------------------------------- #
def _purchase_days(
    transactions: pd.DataFrame, customer_col: str, date_col: str, amount_col: str
) -> pd.DataFrame:
    days = transactions[[customer_col, date_col, amount_col]].copy()
    days["day"] = pd.to_datetime(days[date_col]).dt.normalize()
    return (
        days.groupby([customer_col, "day"], sort=True)[amount_col]
        .sum()
        .rename("amount")
        .reset_index()
    )


def churn_labels(
    transactions: pd.DataFrame,
    as_of_date: Any,
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    customer_col: str = "customer_id",
    date_col: str = "ordered_at",
) -> pd.Series:
    """Churn label: no purchase in ``[as_of_date, as_of_date + horizon_days)``.

    For every customer with a transaction before ``as_of_date`` (the customers of
    dbt's ``customer_features`` as of that date).

    Parameters
    ----------
    transactions : DataFrame
        One row per transaction line.
    as_of_date : date-like
        The cut-off (exclusive for the features, inclusive for the label window).
    horizon_days : int, default=90
        Length of the label window in days.
    customer_col, date_col : str
        Column names.

    Returns
    -------
    churned : Series of int (0/1) indexed by customer, named ``churned``
    """
    cutoff = pd.Timestamp(as_of_date).normalize()
    dates = pd.to_datetime(transactions[date_col]).dt.normalize()
    known = transactions.loc[dates < cutoff, customer_col].unique()
    window = (dates >= cutoff) & (dates < cutoff + pd.Timedelta(days=horizon_days))
    bought = transactions.loc[window, customer_col].unique()
    index = pd.Index(np.sort(known), name=customer_col)
    return pd.Series((~index.isin(bought)).astype(int), index=index, name="churned")


def customer_features_at(
    transactions: pd.DataFrame,
    as_of_date: Any,
    *,
    customer_col: str = "customer_id",
    date_col: str = "ordered_at",
    amount_col: str = "amount",
    window_days: int = 90,
) -> pd.DataFrame:
    """A pandas stand-in for dbt's ``features.customer_features`` (tests, benchmarks).

    Same names and meanings as the dbt columns it reproduces (purchase days as
    orders, no returns handling): ``recency_days``, ``frequency``,
    ``monetary_total``, ``monetary_avg``, ``tenure_days``, ``lt_frequency``,
    ``lt_recency_days``, ``lt_t_days``, ``lt_monetary_value``, ``spend_last_90d``,
    ``spend_prev_90d``, ``spend_trend_90d`` (90 = ``window_days``). Only
    transactions before ``as_of_date`` are used.

    Parameters
    ----------
    transactions : DataFrame
        One row per transaction line.
    as_of_date : date-like
        Features as of this date (exclusive).
    customer_col, date_col, amount_col : str
        Column names.
    window_days : int, default=90
        Length of the spend-trend windows.

    Returns
    -------
    features : DataFrame indexed by customer
    """
    cutoff = pd.Timestamp(as_of_date).normalize()
    days = _purchase_days(transactions, customer_col, date_col, amount_col)
    days = days[days["day"] < cutoff]
    g = days.groupby(customer_col, sort=True)
    first, last = g["day"].min(), g["day"].max()
    n_days = g.size()
    total = g["amount"].sum()
    first_amount = g["amount"].first()
    last_start = cutoff - pd.Timedelta(days=window_days)
    prev_start = cutoff - pd.Timedelta(days=2 * window_days)
    last_spend = days[days["day"] >= last_start].groupby(customer_col)["amount"].sum()
    prev_spend = (
        days[(days["day"] >= prev_start) & (days["day"] < last_start)]
        .groupby(customer_col)["amount"]
        .sum()
    )
    out = pd.DataFrame(
        {
            "recency_days": (cutoff - last).dt.days,
            "frequency": n_days,
            "monetary_total": total,
            "monetary_avg": total / n_days,
            "tenure_days": (cutoff - first).dt.days,
            "lt_frequency": n_days - 1,
            "lt_recency_days": (last - first).dt.days,
            "lt_t_days": (cutoff - first).dt.days,
            "lt_monetary_value": ((total - first_amount) / (n_days - 1).clip(lower=1)).where(
                n_days > 1, 0.0
            ),
        }
    )
    out["spend_last_90d"] = last_spend.reindex(out.index, fill_value=0.0)
    out["spend_prev_90d"] = prev_spend.reindex(out.index, fill_value=0.0)
    out["spend_trend_90d"] = out["spend_last_90d"] - out["spend_prev_90d"]
    return out


def add_btyd_features(
    features: pd.DataFrame,
    model: BetaGeoModel,
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
) -> pd.DataFrame:
    """``features`` plus BG/NBD probability alive, expected purchases and P(no purchase).

    Parameters
    ----------
    features : DataFrame
        dbt ``customer_features`` rows (``lt_frequency``, ``lt_recency_days``,
        ``lt_t_days``); returns-only customers (null lifetimes columns) get NaN.
    model : BetaGeoModel
        Fitted on the same cut-off's summary, in days (``time_unit="days"``).
    horizon_days : int, default=90
        Window of the expected purchases, in days.

    Returns
    -------
    features : DataFrame
        A copy with ``p_alive``, ``expected_purchases_<horizon_days>d`` and
        ``p_no_purchase_<horizon_days>d`` (probability of no purchase in the horizon).
    """
    if getattr(model, "time_unit", "days") != "days":
        raise ValueError(
            f"the dbt lifetimes columns are in days, the model is in {model.time_unit!r}"
        )
    summary = summary_from_customer_features(features)[["frequency", "recency", "T"]]
    out = features.copy()
    expected = EXPECTED_PURCHASES_COLUMN.format(h=horizon_days)
    none = P_NO_PURCHASE_COLUMN.format(h=horizon_days)
    for col in (P_ALIVE_COLUMN, expected, none):
        out[col] = np.nan
    if len(summary):
        out.loc[summary.index, P_ALIVE_COLUMN] = model.probability_alive(summary)
        out.loc[summary.index, expected] = model.conditional_expected_purchases(
            summary, horizon_days
        )
        out.loc[summary.index, none] = model.probability_no_purchase(summary, horizon_days)
    return out


# --------------------------------------------------------------------------- #
# contractual data
# --------------------------------------------------------------------------- #
def load_telco(path: str | Path) -> tuple[pd.DataFrame, pd.Series]:
    """The IBM Telco customer-churn table as features and label.

    ``TotalCharges`` is text with 11 blanks, all customers with ``tenure`` 0 who have
    not been billed yet: they become 0.0 (the true amount, rather than an imputed
    one). ``customerID`` becomes the index; ``SeniorCitizen`` stays 0/1 numeric.

    Parameters
    ----------
    path : str or Path
        ``telco_customer_churn.csv``.

    Returns
    -------
    X : DataFrame
        19 attribute columns, indexed by ``customerID``.
    y : Series of int
        1 when ``Churn`` is "Yes".
    """
    df = pd.read_csv(path)
    df = df.set_index("customerID")
    total = pd.to_numeric(df["TotalCharges"].astype(str).str.strip().replace("", np.nan))
    unbilled = total.isna() & (df["tenure"] == 0)
    if (total.isna() & ~unbilled).any():
        raise ValueError("TotalCharges has blanks for customers with tenure > 0")
    df["TotalCharges"] = total.where(~unbilled, 0.0)
    y = (df.pop("Churn").astype(str).str.strip() == "Yes").astype(int).rename("churned")
    return df, y
