"""The judge's metrics against hand-computed values."""

import datetime as dt

import numpy as np
import pytest

from ml.evaluation import (
    EVIDENCE_COLUMNS,
    eta_squared,
    evidence_rows,
    safe_roc_auc,
    top_share_captured,
)


def test_eta_squared_by_hand():
    # groups a: 1, 3 (mean 2); b: 5, 7 (mean 6); grand mean 4
    # total SS = 9 + 1 + 1 + 9 = 20; between = 2 * 4 + 2 * 4 = 16
    assert eta_squared(["a", "a", "b", "b"], [1, 3, 5, 7]) == pytest.approx(16 / 20)
    assert eta_squared([0, 1, 0, 1], [1, 1, 3, 3]) == pytest.approx(0.0)
    assert eta_squared([0, 0, 1, 1], [2, 2, 9, 9]) == pytest.approx(1.0)


def test_eta_squared_ignores_missing_values_and_constant_is_nan():
    assert eta_squared(["a", "a", "b", "b", "b"], [1, 3, 5, 7, np.nan]) == pytest.approx(0.8)
    assert np.isnan(eta_squared([0, 1, 1], [4, 4, 4]))


def test_top_share_captured_and_auc():
    actual = [0, 0, 0, 10, 90]
    assert top_share_captured(actual, [5, 4, 3, 2, 1], share=0.2) == 0.0
    assert top_share_captured(actual, [1, 2, 3, 4, 5], share=0.2) == pytest.approx(0.9)
    assert top_share_captured(actual, [1, 2, 3, 4, 5], share=0.4) == pytest.approx(1.0)
    assert safe_roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert np.isnan(safe_roc_auc([1, 1], [0.1, 0.2]))


def test_evidence_rows_shape_and_direction():
    rows = evidence_rows(
        "churn",
        "recency",
        {"roc_auc": 0.76, "brier": 0.2},
        role="baseline",
        cutoff=dt.date(1997, 10, 1),
        horizon_days=273,
        customers=100,
    )
    assert list(rows.columns) == EVIDENCE_COLUMNS
    assert rows.set_index("metric")["higher_is_better"].to_dict() == {
        "roc_auc": True,
        "brier": False,
    }
    with pytest.raises(ValueError, match="role"):
        evidence_rows("churn", "x", {}, role="winner", cutoff=None, horizon_days=1, customers=0)
