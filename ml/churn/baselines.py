"""One-line churn baselines the model must beat, and their calibrated probabilities.

A baseline is a single column of :func:`ml.churn.production.churn_frame` read as a
churn score (higher = more likely to churn): days since the last purchase, minus
the number of purchases, and the BTYD probability of no purchase in the horizon.
:class:`CalibratedBaseline` turns one into a probability with isotonic regression, so
it can ship in the model's place.

Pure library (numpy, pandas, scikit-learn).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted

__all__ = ["CalibratedBaseline", "baseline_score", "baselines"]


def baselines(horizon_days: int) -> dict[str, tuple[str, float]]:
    """Name -> (column, sign): the score is ``sign * column``."""
    return {
        "recency_days": ("recency_days", 1.0),
        "neg_frequency": ("frequency", -1.0),
        "p_no_purchase": (f"p_no_purchase_{horizon_days}d", 1.0),
    }


def baseline_score(X: pd.DataFrame, column: str, sign: float) -> np.ndarray:
    """``sign * X[column]``; missing values (e.g. returns-only customers) get the mean."""
    values = pd.to_numeric(X[column]).astype("float64")
    return sign * values.fillna(values.mean()).to_numpy()


class CalibratedBaseline(ClassifierMixin, BaseEstimator):
    """A one-column churn score made a probability by isotonic regression.

    Parameters
    ----------
    column : str, default="recency_days"
        The column of ``X`` read as the score.
    sign : float, default=1.0
        ``-1.0`` when a smaller value means more churn (e.g. frequency).

    Attributes
    ----------
    isotonic_ : IsotonicRegression
        Score -> observed churn rate, clipped outside the training range.
    classes_ : ndarray of shape (2,)
    """

    def __init__(self, *, column: str = "recency_days", sign: float = 1.0) -> None:
        self.column = column
        self.sign = sign

    def fit(self, X: pd.DataFrame, y: ArrayLike) -> CalibratedBaseline:
        """Fit the isotonic map from the score to the churn label (0/1)."""
        y = np.asarray(y).astype(np.float64)
        self.classes_ = np.array([0, 1])
        self.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            baseline_score(X, self.column, self.sign), y
        )
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Columns: P(no churn), P(churn)."""
        check_is_fitted(self, "isotonic_")
        p = self.isotonic_.predict(baseline_score(X, self.column, self.sign))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Churn (1) when its probability is >= 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
