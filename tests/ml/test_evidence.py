"""Evidence rows built from today's refit outputs (ml/evidence.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ml.evaluation import EVIDENCE_COLUMNS
from ml.evidence import churn_evidence, segmentation_evidence, value_evidence


def test_segmentation_rows_one_per_candidate_and_metric() -> None:
    candidates = pd.DataFrame(
        {
            "algorithm": ["kmeans", "dbscan"],
            "n_segments": [4, 3],
            "silhouette": [0.41, 0.22],
            "davies_bouldin": [0.9, 1.4],
            "stability": [0.93, 0.5],
            "noise_share": [0.0, 0.3],
            "ari_vs_ground_truth": [np.nan, np.nan],
            "chosen": [True, False],
            "note": ["", "noise share 0.300 > 0.2"],
        }
    )
    rows = segmentation_evidence(candidates, customers=1000)
    assert list(rows.columns) == EVIDENCE_COLUMNS
    # 5 metrics with a value each (ARI has none) x 2 candidates.
    assert len(rows) == 10
    kmeans = rows[rows["candidate"] == "kmeans"].set_index("metric")
    assert set(kmeans["role"]) == {"production"}
    assert kmeans.loc["silhouette", "value"] == 0.41
    assert not kmeans.loc["davies_bouldin", "higher_is_better"]
    assert not kmeans.loc["noise_share", "higher_is_better"]
    dbscan = rows[rows["candidate"] == "dbscan"]
    assert set(dbscan["role"]) == {"candidate"}
    assert dbscan["note"].str.contains("not eligible: noise share 0.300 > 0.2").all()
    assert (rows["customers"] == 1000).all() and rows["cutoff_date"].isna().all()


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
        pd.DataFrame(),
        fallback="only 12 labelled customers (< 200)",
        cutoff=dt.date(2024, 3, 1),
        horizon=90,
    )
    assert list(rows["model_family"]) == ["purchases", "p_alive", "clv", "churn"]
    assert set(rows["metric"]) == {"not_evaluated"} and rows["value"].isna().all()
    churn = rows[rows["model_family"] == "churn"].iloc[0]
    assert churn["note"] == "only 12 labelled customers (< 200)"
