"""CLV / churn assets for real on the 5,000-customer demo: scores, out-of-time evaluation, marts."""

from __future__ import annotations

import datetime as dt
import json
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from tests.pipeline_utils import query

pytestmark = pytest.mark.slow


def _frame(workdir, sql: str) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).df()


def test_every_customer_has_sane_scores(segmentation_demo):
    scores = _frame(segmentation_demo, "select * from ml.customer_scores")
    assert len(scores) == scores["customer_id"].nunique() == 5000
    assert scores[["p_alive", "churn_probability"]].stack().between(0, 1).all()
    assert (scores["clv"] >= 0).all()
    assert set(scores["churn_risk_band"]) <= {"low", "medium", "high"}
    np.testing.assert_allclose(
        scores["revenue_at_risk"], scores["clv"] * scores["churn_probability"]
    )
    # High risk means a higher churn probability than low risk, by construction of the bands.
    by_band = scores.groupby("churn_risk_band")["churn_probability"]
    assert by_band.min()["high"] >= 0.6 > by_band.max()["low"]


def test_churn_model_beats_p_alive_on_the_generator_ground_truth(segmentation_demo):
    """AUCs computed here from the published scores and the simulated future (out of time:
    the generator's churn happens after the as-of date the model scored)."""
    scores = _frame(segmentation_demo, "select * from ml.customer_scores")
    features = _frame(
        segmentation_demo,
        "select customer_id, recency_days, frequency from features.customer_features",
    ).set_index("customer_id")
    truth = pd.read_csv(
        segmentation_demo / "demo_data" / "ground_truth" / "personas.csv",
        dtype={"customer_id": str},
    ).set_index("customer_id")
    churned = truth.loc[scores["customer_id"], "churned"].to_numpy()
    model_auc = roc_auc_score(churned, scores["churn_probability"])
    baseline_auc = roc_auc_score(churned, 1 - scores["p_alive"])
    mine = features.loc[scores["customer_id"]]
    baselines = {
        "1 - p_alive": baseline_auc,
        "recency_days": roc_auc_score(churned, mine["recency_days"]),
        "-frequency": roc_auc_score(churned, -mine["frequency"]),
    }
    print(f"\ndemo ground truth ROC AUC: churn model {model_auc:.3f}, baselines {baselines}")
    # Measured 0.946 (1 - p_alive 0.942, recency_days 0.926, -frequency 0.803); the bar is
    # the measured value minus 0.02 (fixed seeds: numeric drift passes, a worse model fails).
    assert model_auc >= 0.926
    assert all(model_auc > auc for auc in baselines.values()), baselines
    # ... and what shipped is the learned score: it beat the baselines out of time too
    (shipped,) = query(
        segmentation_demo,
        "select distinct candidate from ml.value_evidence "
        "where model_family = 'churn' and role = 'production'",
    )[0]
    assert shipped in {"churn_model", "blend"}
    # The run reported the same numbers.
    run = _frame(
        segmentation_demo,
        "select * from ml.model_runs where model = 'churn_classifier' order by trained_at desc",
    ).iloc[0]
    reported = json.loads(run["metrics"])["ground_truth_roc_auc"]
    assert reported["churn_model"] == pytest.approx(model_auc, abs=1e-4)
    assert reported["p_alive_baseline"] == pytest.approx(baseline_auc, abs=1e-4)


def test_evaluation_is_out_of_time_on_the_production_feature_code(segmentation_demo):
    (as_of,) = query(segmentation_demo, "select max(as_of_date) from features.customer_features")[0]
    run = _frame(
        segmentation_demo, "select * from ml.model_runs where model = 'churn_classifier'"
    ).iloc[-1]
    assert run["train_cutoff"] == pd.Timestamp(as_of - dt.timedelta(days=180))
    assert run["eval_cutoff"] == pd.Timestamp(as_of - dt.timedelta(days=90))
    # The cut-off features come from the same dbt models, as of the cut-off.
    (cut,) = query(
        segmentation_demo, "select max(as_of_date) from features_cutoff_eval.customer_features"
    )[0]
    assert cut == as_of - dt.timedelta(days=90)
    evaluation = _frame(segmentation_demo, "select * from ml.churn_evaluation").set_index("scorer")
    assert list(evaluation.index) == [
        "churn_model",
        "blend",
        "recency_days",
        "neg_frequency",
        "p_no_purchase",
    ]
    # The shipped scorer is the production row of the evidence table, with its figures.
    evidence = _frame(
        segmentation_demo, "select * from ml.value_evidence where model_family = 'churn'"
    )
    (shipped,) = evidence.loc[evidence["role"] == "production", "candidate"].unique()
    auc = evidence.query("candidate == @shipped and metric == 'roc_auc'")["value"].item()
    assert auc == pytest.approx(evaluation.loc[shipped, "roc_auc"])
    assert set(evidence["metric"]) >= {"roc_auc", "brier", "ece", "lift_top_decile"}
    labelled = query(
        segmentation_demo,
        "select count(*) from features_cutoff_eval.customer_outcomes where churned is not null",
    )[0][0]
    assert evaluation.loc["churn_model", "n"] == labelled
    drivers = _frame(segmentation_demo, "select * from ml.churn_drivers")
    assert len(drivers) >= 10 and drivers["importance_mean"].iloc[0] > 0
    # The calibration plot is a standalone SVG with one point per probability bin.
    calibration = _frame(segmentation_demo, "select * from ml.churn_calibration")
    assert len(calibration) >= 2
    assert calibration[["mean_predicted", "observed_rate"]].stack().between(0, 1).all()
    svg = ElementTree.parse(segmentation_demo / "reports" / "churn_calibration.svg").getroot()
    assert len(svg.findall("{http://www.w3.org/2000/svg}circle")) == len(calibration)


def test_marts_carry_the_scores_and_revenue_at_risk_adds_up(segmentation_demo):
    scores = _frame(segmentation_demo, "select * from ml.customer_scores")
    dim = _frame(segmentation_demo, "select * from marts.dim_customer")
    merged = dim.merge(scores, on="customer_id", suffixes=("", "_ml"))
    assert len(merged) == 5000
    np.testing.assert_allclose(merged["clv"], merged["clv_ml"], atol=1e-4)
    np.testing.assert_allclose(
        merged["churn_probability"], merged["churn_probability_ml"], atol=1e-9
    )
    summary = _frame(
        segmentation_demo,
        "select * from marts.mart_segment_summary where segment_type = 'cluster'",
    ).set_index("segment_name")
    expected = merged.groupby("segment_name")[["revenue_at_risk_ml", "clv_ml"]].sum()
    np.testing.assert_allclose(
        summary.loc[expected.index, "revenue_at_risk"], expected["revenue_at_risk_ml"], rtol=1e-6
    )
    np.testing.assert_allclose(summary.loc[expected.index, "clv"], expected["clv_ml"], rtol=1e-6)


def test_scoring_without_saved_value_models_fails_clearly(segmentation_demo, tmp_path):
    """Only the scoring step runs (its upstream tables exist in the copied warehouse)."""
    import shutil

    import dagster as dg

    from orchestration.assets.scores import customer_scores
    from orchestration.resources import WarehouseResource
    from tests.pipeline_utils import copy_workdir

    workdir = copy_workdir(segmentation_demo, tmp_path / "wd")
    shutil.rmtree(workdir / "models" / "value")
    before = _frame(workdir, "select * from ml.customer_scores order by customer_id")
    result = dg.materialize(
        [customer_scores],
        resources={"warehouse": WarehouseResource(workdir=str(workdir))},
        raise_on_error=False,
    )
    assert not result.success
    errors = [e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure]
    assert any("no saved value and churn models" in e and "value_models" in e for e in errors)
    pd.testing.assert_frame_equal(
        before, _frame(workdir, "select * from ml.customer_scores order by customer_id")
    )


def test_saved_value_models_reproduce_the_published_scores(segmentation_demo):
    """Scoring from the saved files gives exactly the table the run wrote."""
    import duckdb

    from ml.scores import load_value_models
    from orchestration.assets.scores import _score
    from orchestration.resources import WarehouseResource

    warehouse = WarehouseResource(workdir=str(segmentation_demo))
    models, churn, meta = load_value_models(segmentation_demo / "models" / "value")
    cfg = warehouse.project_config().scoring
    with duckdb.connect(str(warehouse.warehouse_path), read_only=True) as con:
        features = con.execute("select * from features.customer_features order by customer_id").df()
    assert meta["horizon_days"] == cfg.churn_horizon_days
    scores = _score(features, models, churn, cfg)
    published = _frame(segmentation_demo, "select * from ml.customer_scores order by customer_id")
    for column in ["p_alive", "churn_probability", "clv"]:
        np.testing.assert_allclose(scores[column], published[column], rtol=1e-12)
    assert meta["n_customers"] == len(features) == 5000
