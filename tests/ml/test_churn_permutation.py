"""ml/churn/permutation.py: permutation importance on the preprocessed matrix equals
scikit-learn's on the whole pipeline (same permutations, preprocessing run once)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from ml.churn import ChurnModel, churn_drivers
from ml.churn.permutation import _roc_auc, output_blocks, pipeline_permutation_importance


def _customers(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Numeric drivers, a categorical one with missing values, an empty column, noise."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "recency_days": rng.exponential(60, n),
            "frequency": rng.poisson(3, n).astype(float),
            "plan": rng.choice(["basic", "plus", "pro", None], n),
            "noise": rng.normal(size=n),
            "never_known": np.full(n, np.nan),  # dropped by the imputer
        }
    )
    X.loc[rng.random(n) < 0.1, "frequency"] = np.nan
    logit = (X["recency_days"] - 60) / 30 - 0.3 * X["frequency"].fillna(3) + (X["plan"] == "pro")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.mark.parametrize(
    ("estimator", "batch_rows"),
    [("hgb", 250_000), ("logit", 250_000), ("hgb", 1), ("hgb", 4_000)],
    ids=["hgb", "logit", "hgb-one-matrix-per-call", "hgb-batches-and-a-remainder"],
)
def test_equals_sklearn_permutation_importance(estimator: str, batch_rows: int, monkeypatch):
    """Every permuted matrix is scored, alone or in batches: 12 matrices of 800 rows (4
    columns kept x 3 repeats), by 4,000 rows 5 + 5 + 2."""
    monkeypatch.setattr("ml.churn.permutation.BATCH_ROWS", batch_rows)
    X, y = _customers(1500, seed=0)
    X_test, y_test = _customers(800, seed=1)
    with threadpool_limits(limits=1), pytest.warns(UserWarning, match="never_known"):
        model = ChurnModel(estimator=estimator, random_state=0).fit(X, y)
    fold = model.calibrated_.calibrated_classifiers_[0].estimator
    blocks = output_blocks(fold[0], list(X_test.columns))
    assert [b.size for b in blocks] == [1, 1, 3, 1, 0]  # plan: basic, plus, pro (None imputed)
    expected = permutation_importance(
        fold, X_test, y_test, scoring="roc_auc", n_repeats=3, random_state=0
    )
    got = pipeline_permutation_importance(fold, X_test, y_test, n_repeats=3, random_state=0)
    np.testing.assert_allclose(got.importances, expected.importances, rtol=0, atol=1e-12)
    assert got.importances[0].mean() > 0.05  # recency drives churn here
    assert np.all(got.importances[4] == 0.0)
    table = churn_drivers(fold, X_test, y_test, n_repeats=3, random_state=0)
    assert table["feature"].iloc[0] == "recency_days"


def test_other_pipelines_fall_back_to_sklearn() -> None:
    X, y = _customers(600, seed=2)
    with threadpool_limits(limits=1), pytest.warns(UserWarning, match="never_known"):
        model = ChurnModel(random_state=0).fit(X, y)
    # a ChurnModel (calibrated ensemble) is not a plain pipeline: scikit-learn's path
    assert pipeline_permutation_importance(model, X, y, n_repeats=2, random_state=0) is None
    table = churn_drivers(model, X, y, n_repeats=2)
    expected = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=2, random_state=0)
    np.testing.assert_allclose(table.set_index("feature").loc[list(X.columns), "importance_mean"],
                               expected.importances_mean)  # fmt: skip


def test_rank_auc_equals_scikit_learn_with_ties():
    rng = np.random.default_rng(3)
    y = rng.random(2_000) < 0.3
    scores = np.round(rng.normal(size=2_000) + y, 1)  # many ties
    assert _roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
