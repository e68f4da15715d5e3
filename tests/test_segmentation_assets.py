"""The segmentation assets for real: refit, saved model, scoring without refit, migration."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from tests.pipeline_utils import copy_workdir, query, run
from tests.segment_checks import assert_segments_hold_up

pytestmark = pytest.mark.slow

ALGORITHMS = {"kmeans", "ward", "hdbscan", "dbscan"}


def _frame(workdir: Path, sql: str) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).df()


def _latest(workdir: Path) -> str:
    return (workdir / "models" / "segmentation" / "LATEST").read_text().strip()


def test_candidates_table_judges_every_candidate_and_chooses_one(segmentation_demo):
    table = _frame(segmentation_demo, "select * from ml.segmentation_candidates")
    assert set(table["algorithm"]) == ALGORITHMS | {"rfm_grid"}
    assert table["chosen"].sum() == 1
    judged = table[table["algorithm"] != "rfm_grid"]
    metrics = ["eta2_churn", "eta2_revenue", "silhouette", "noise_share", "fit_seconds"]
    assert judged[metrics].notna().all().all()
    assert (judged["fit_seconds"] > 0).all()
    for params in table["params"]:
        assert isinstance(json.loads(params), dict)
    # Only K-Means and Ward never produce noise.
    hard = table[table["algorithm"].isin(["kmeans", "ward"])]
    assert (hard["noise_share"] == 0).all()
    chosen = table[table["chosen"]].iloc[0]
    assert chosen["model_version"] == _latest(segmentation_demo)
    assert chosen["stability"] >= 0.75
    assert_segments_hold_up(segmentation_demo, "demo")


def test_production_segmentation_reflects_the_planted_personas(segmentation_demo):
    """ARI computed here from the published assignments and the generator's ground truth.

    The segments are chosen for what customers did next, not to recover the generator's
    personas, so the bar is agreement, not identity.
    """
    assigned = _frame(segmentation_demo, "select customer_id, cluster_id from ml.customer_clusters")
    truth = pd.read_csv(
        segmentation_demo / "demo_data" / "ground_truth" / "personas.csv", dtype=str
    ).set_index("customer_id")
    persona = truth.loc[assigned["customer_id"], "persona"].to_numpy()
    ari = adjusted_rand_score(persona, assigned["cluster_id"])
    grid = _frame(
        segmentation_demo, "select customer_id, rfm_segment from features.customer_features"
    )
    grid_ari = adjusted_rand_score(
        truth.loc[grid["customer_id"], "persona"].to_numpy(), grid["rfm_segment"]
    )
    print(f"\nARI vs the planted personas: production {ari:.3f}, RFM grid {grid_ari:.3f}")
    # Measured 0.808 (the RFM grid 0.451); the bar is the measured value minus 0.02.
    assert ari >= 0.788 and ari > grid_ari
    table = _frame(segmentation_demo, "select * from ml.segmentation_candidates")
    chosen = table[table["chosen"]].iloc[0]
    # The scoring path reproduces the fitted labels of the chosen candidate.
    assert chosen["ari_vs_ground_truth"] == pytest.approx(ari, abs=1e-9)


def test_every_customer_gets_one_named_segment_and_profiles_add_up(segmentation_demo):
    n_features = query(segmentation_demo, "select count(*) from features.customer_features")[0][0]
    rows = query(
        segmentation_demo,
        "select count(*), count(distinct customer_id), count(distinct cluster_label), "
        "count(distinct cluster_id), count(distinct model_version) from ml.customer_clusters",
    )[0]
    assert rows[0] == rows[1] == n_features == 5000
    assert rows[2] == rows[3] >= 2 and rows[4] == 1
    profiles = _frame(segmentation_demo, "select * from ml.segment_profiles order by cluster_id")
    sizes = _frame(
        segmentation_demo,
        "select cluster_id, count(*) as n from ml.customer_clusters group by 1 order by 1",
    )
    assert profiles["size"].tolist() == sizes["n"].tolist()
    assert profiles["share"].sum() == pytest.approx(1.0)
    assert profiles["revenue_share"].sum() == pytest.approx(1.0)
    assert {"mean_monetary_total", "median_recency_days"} <= set(profiles.columns)
    # dim_customer carries the segment and the model that assigned it.
    assert query(
        segmentation_demo,
        "select count(*) from marts.dim_customer d join ml.customer_clusters c using "
        "(customer_id) where d.segment_name = c.cluster_label "
        "and d.segmentation_model_version = c.model_version",
    ) == [(5000,)]


def test_model_is_saved_in_the_workdir_with_its_metadata(segmentation_demo):
    store = segmentation_demo / "models" / "segmentation"
    version = _latest(segmentation_demo)
    meta = json.loads((store / version / "metadata.json").read_text())
    assert (store / version / "model.joblib").stat().st_size > 0
    assert "*" in (store / ".gitignore").read_text()
    assert "recency_days" in meta["features"] and "monetary_total" in meta["features"]
    (as_of,) = query(
        segmentation_demo, "select cast(max(as_of_date) as varchar) from features.customer_features"
    )[0]
    assert meta["training_window"]["as_of_date"] == as_of
    assert meta["n_training_customers"] == 5000
    assert meta["selection_reason"]


def _add_new_customer(workdir: Path) -> str:
    """Append one order of a brand-new customer to the demo transactions."""
    path = workdir / "demo_data" / "transactions.csv"
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames
        first = next(reader)
    row = dict(first, order_id="NEW-ORDER-1", customer_id="NEWCUST-1")
    with path.open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=fields).writerow(row)
    return "NEWCUST-1"


def test_scoring_job_assigns_new_customers_without_refitting(segmentation_demo, tmp_path):
    workdir = copy_workdir(segmentation_demo, tmp_path / "wd")
    version = _latest(workdir)
    model_files = sorted(p.name for p in (workdir / "models" / "segmentation").iterdir())
    candidates_before = _frame(workdir, "select * from ml.segmentation_candidates")
    value_version = (workdir / "models" / "value" / "LATEST").read_text()
    (model_runs,) = query(workdir, "select count(*) from ml.model_runs")[0]
    scores_before = _frame(workdir, "select * from ml.customer_scores order by customer_id")
    new_id = _add_new_customer(workdir)

    run(workdir, job_name="scoring_pipeline")

    # The value and churn models are applied, not refitted; old customers' scores stand.
    assert (workdir / "models" / "value" / "LATEST").read_text() == value_version
    assert query(workdir, "select count(*) from ml.model_runs")[0][0] == model_runs
    scores = _frame(workdir, "select * from ml.customer_scores order by customer_id")
    assert set(scores["value_model_version"]) == {value_version.strip()}
    assert len(scores) == 5001 and new_id in set(scores["customer_id"])
    old_scores = scores[scores["customer_id"] != new_id].reset_index(drop=True)
    columns = ["customer_id", "p_alive", "churn_probability", "clv", "revenue_at_risk"]
    pd.testing.assert_frame_equal(old_scores[columns], scores_before[columns])

    assert _latest(workdir) == version
    assert sorted(p.name for p in (workdir / "models" / "segmentation").iterdir()) == model_files
    pd.testing.assert_frame_equal(
        _frame(workdir, "select * from ml.segmentation_candidates"), candidates_before
    )
    assigned = query(
        workdir,
        f"select cluster_label, model_version from ml.customer_clusters where customer_id = '{new_id}'",
    )
    assert len(assigned) == 1 and assigned[0][1] == version
    migration = _frame(workdir, "select * from ml.segment_migration")
    assert migration["customers"].sum() == 5001
    new = migration[migration["from_label"] == "(new customer)"]
    assert new["customers"].tolist() == [1] and new["to_label"].tolist() == [assigned[0][0]]
    # Nobody else changed: same features apart from the as-of date -> same segments.
    old = migration[migration["from_label"] != "(new customer)"]
    assert (old["from_label"] == old["to_label"]).all()
    assert (old["from_model_version"] == version).all()
    # Same as-of date: the run replaced its snapshot (now with the new customer).
    assert query(
        workdir, "select count(distinct snapshot_date), count(*) from marts.fct_customer_snapshot"
    ) == [(1, 5001)]


def test_scoring_without_a_saved_model_fails_clearly(segmentation_demo, tmp_path):
    """Only the scoring step runs (its upstream tables exist in the copied warehouse)."""
    import dagster as dg

    from orchestration.assets.segmentation import customer_clusters
    from orchestration.resources import WarehouseResource

    workdir = copy_workdir(segmentation_demo, tmp_path / "wd")
    shutil.rmtree(workdir / "models")
    before = _frame(workdir, "select * from ml.customer_clusters order by customer_id")
    result = dg.materialize(
        [customer_clusters],
        resources={"warehouse": WarehouseResource(workdir=str(workdir))},
        raise_on_error=False,
    )
    assert not result.success
    errors = [e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure]
    assert any("no saved segmentation model" in e and "segmentation_model" in e for e in errors)
    after = _frame(workdir, "select * from ml.customer_clusters order by customer_id")
    pd.testing.assert_frame_equal(before, after)


def test_refit_job_saves_a_new_version_and_migration_compares_the_two(segmentation_demo, tmp_path):
    workdir = copy_workdir(segmentation_demo, tmp_path / "wd")
    old_version = _latest(workdir)
    run(workdir, job_name="refit_models")
    new_version = _latest(workdir)
    assert new_version != old_version
    assert (workdir / "models" / "segmentation" / old_version / "model.joblib").exists()
    migration = _frame(workdir, "select * from ml.segment_migration")
    assert set(migration["from_model_version"]) == {old_version}
    assert set(migration["to_model_version"]) == {new_version}
    assert migration["customers"].sum() == 5000
    # Same data, same seed: the refit reproduces the segmentation (deterministic names).
    assert (migration["from_label"] == migration["to_label"]).all()
