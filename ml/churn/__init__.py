"""Churn: the supervised model, how churn scores are judged, the baselines it must
beat, and the score that ships.

* :mod:`ml.churn.model` - :class:`ChurnModel`, the calibrated classifier.
* :mod:`ml.churn.evaluation` - metrics (ROC AUC, Brier, ECE, lift), the reliability
  curve and permutation-importance drivers.
* :mod:`ml.churn.baselines` - the one-line baselines and their calibrated form.
* :mod:`ml.churn.production` - :func:`churn_frame`, :func:`fit_churn`,
  :class:`ChurnResult`.

Pure library, no Dagster.
"""

from ml.churn.baselines import CalibratedBaseline
from ml.churn.evaluation import (
    P_ALIVE_COLUMN,
    churn_drivers,
    compare_with_baseline,
    evaluate_churn,
    expected_calibration_error,
    lift_top_decile,
    reliability_curve,
)
from ml.churn.model import ChurnModel
from ml.churn.production import (
    CHURN_INPUT_COLUMNS,
    EXPECTED_PURCHASES_COLUMN,
    MIN_AUC_GAIN,
    P_NO_PURCHASE_COLUMN,
    ChurnResult,
    add_btyd_features,
    churn_evidence,
    churn_frame,
    fit_churn,
)

__all__ = [
    "CHURN_INPUT_COLUMNS",
    "EXPECTED_PURCHASES_COLUMN",
    "P_ALIVE_COLUMN",
    "P_NO_PURCHASE_COLUMN",
    "CalibratedBaseline",
    "ChurnModel",
    "ChurnResult",
    "add_btyd_features",
    "MIN_AUC_GAIN",
    "churn_drivers",
    "churn_evidence",
    "churn_frame",
    "compare_with_baseline",
    "evaluate_churn",
    "expected_calibration_error",
    "fit_churn",
    "lift_top_decile",
    "reliability_curve",
]
