"""Evidence rows built from today's refit outputs (ml/evidence.py)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ml.evidence import churn_evidence, value_evidence


def test_churn_rows_put_the_model_next_to_its_baselines() -> None:
    evaluation = pd.DataFrame(
        {"roc_auc": [0.8, 0.6, 0.7], "brier": [0.1, 0.3, 0.2], "churn_rate": 0.4, "n": 250},
        index=["churn_model", "p_alive_baseline", "p_no_purchase_baseline"],
    )
    cutoff = dt.date(2024, 3, 1)
    rows = churn_evidence(evaluation, fallback=None, cutoff=cutoff, horizon_days=90)
    got = {(r.candidate, r.metric): (r.role, r.value) for r in rows.itertuples()}
    assert got == {
        ("churn_model", "roc_auc"): ("production", 0.8),
        ("churn_model", "brier"): ("production", 0.1),
        ("p_alive_baseline", "roc_auc"): ("baseline", 0.6),
        ("p_alive_baseline", "brier"): ("baseline", 0.3),
        ("p_no_purchase_baseline", "roc_auc"): ("baseline", 0.7),
        ("p_no_purchase_baseline", "brier"): ("baseline", 0.2),
    }
    assert set(rows["cutoff_date"]) == {cutoff} and set(rows["horizon_days"]) == {90}
    assert set(rows["customers"]) == {250}


def test_fallback_writes_one_not_evaluated_row_with_the_reason() -> None:
    rows = value_evidence(
        None,
        pd.DataFrame(),
        fallback="only 12 labelled customers (< 200)",
        cutoff=dt.date(2024, 3, 1),
        horizon=90,
    )
    assert list(rows["model_family"]) == ["purchases", "p_alive", "clv", "churn"]
    assert set(rows["metric"]) == {"not_evaluated"} and rows["value"].isna().all()
    churn = rows[rows["model_family"] == "churn"].iloc[0]
    assert churn["note"] == "only 12 labelled customers (< 200)"
