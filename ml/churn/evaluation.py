"""Judging churn scores: discrimination, calibration, lift, drivers.

Every score (the model's probability or a one-line baseline) is judged with the same
metrics, so the evidence table can put them side by side.

Pure library (numpy, pandas, scikit-learn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline

from ml.churn.permutation import pipeline_permutation_importance

if TYPE_CHECKING:
    from ml.churn.model import ChurnModel

__all__ = [
    "P_ALIVE_COLUMN",
    "churn_drivers",
    "compare_with_baseline",
    "evaluate_churn",
    "expected_calibration_error",
    "lift_top_decile",
    "reliability_curve",
]

#: BG/NBD probability alive (a column of :func:`ml.churn.production.churn_frame`).
P_ALIVE_COLUMN = "p_alive"

#: Bins of the reliability curve and of the expected calibration error.
RELIABILITY_BINS = 10


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
    order = np.argsort(-s, kind="stable")
    return _lift_sorted(y[order], s[order], y.mean())


def _lift_sorted(y_sorted: np.ndarray, s_sorted: np.ndarray, base: float) -> float:
    """:func:`lift_top_decile` of labels and scores sorted by descending score."""
    if base == 0:
        raise ValueError("no positive labels: lift is undefined")
    k = 0.1 * y_sorted.shape[0]
    cut = s_sorted[int(np.ceil(k)) - 1]
    above = s_sorted > cut
    tied = s_sorted == cut
    n_above = above.sum()
    share = (k - n_above) / tied.sum()  # fraction of the tied group inside the decile
    positives = y_sorted[above].sum() + share * y_sorted[tied].sum()
    return float(positives / k / base)


def _roc_and_average_precision(y_sorted: np.ndarray, s_sorted: np.ndarray) -> tuple[float, float]:
    """ROC AUC and average precision of 0/1 labels sorted by descending score, both from
    the one curve of true and false positives at each distinct score (scikit-learn's
    ``_binary_clf_curve``), as ``roc_auc_score`` and ``average_precision_score`` give them."""
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(y_sorted)[last]
    fps = last + 1 - tps
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    roc_auc = float(np.trapezoid(tpr, fpr))
    average_precision = float(np.sum(np.diff(tpr) * (tps / (tps + fps))))
    return roc_auc, average_precision


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
        of the probabilities), ``ece`` (:func:`expected_calibration_error`),
        ``lift_top_decile``, ``churn_rate`` and ``n``.
    """
    y = np.asarray(y_true).astype(np.float64)
    p = _churn_scores(proba)
    if y.shape == p.shape and y.size and np.isin(y, (0.0, 1.0)).all() and 0 < y.sum() < y.size:
        # one sort for ROC AUC, average precision and lift (scikit-learn sorts for each)
        order = np.argsort(-p, kind="stable")
        y_sorted, p_sorted = y[order], p[order]
        roc_auc, pr_auc = _roc_and_average_precision(y_sorted, p_sorted)
        lift = _lift_sorted(y_sorted, p_sorted, y.mean())
    else:  # scikit-learn's checks say what is wrong, or answer for other labels
        roc_auc = float(roc_auc_score(y, p))
        pr_auc = float(average_precision_score(y, p))
        lift = lift_top_decile(y, p)
    return {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "lift_top_decile": lift,
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
    result = None
    if isinstance(model, Pipeline) and scoring == "roc_auc" and max_samples == 1.0:
        # the same importances with the preprocessing run once (ml/churn/permutation.py)
        result = pipeline_permutation_importance(
            model, X, np.asarray(y), n_repeats=n_repeats, random_state=random_state
        )
    if result is None:
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


def reliability_curve(
    y_true: ArrayLike, proba: ArrayLike, n_bins: int = RELIABILITY_BINS
) -> pd.DataFrame:
    """Mean predicted probability and observed churn rate per quantile bin of ``proba``.

    Bins hold about equally many customers; tied probabilities stay in one bin, so a
    score with few distinct values gives fewer bins.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Binary label (1 = churned).
    proba : array-like of shape (n,) or (n, 2)
        Churn probability.
    n_bins : int, default=10

    Returns
    -------
    curve : DataFrame
        ``mean_predicted``, ``observed_rate``, ``customers`` per bin, by increasing
        probability.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = _churn_scores(proba)
    edges = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    bins = np.searchsorted(edges, p, side="left")
    frame = pd.DataFrame({"bin": bins, "p": p, "y": y})
    curve = frame.groupby("bin", sort=True).agg(
        mean_predicted=("p", "mean"), observed_rate=("y", "mean"), customers=("y", "size")
    )
    return curve.reset_index(drop=True)


def expected_calibration_error(
    y_true: ArrayLike, proba: ArrayLike, n_bins: int = RELIABILITY_BINS
) -> float:
    """Customer-weighted mean gap between predicted and observed churn rate per bin.

    The bins of :func:`reliability_curve`; 0 for perfectly calibrated probabilities.
    """
    curve = reliability_curve(y_true, proba, n_bins)
    gap = (curve["mean_predicted"] - curve["observed_rate"]).abs()
    return float((gap * curve["customers"]).sum() / curve["customers"].sum())
