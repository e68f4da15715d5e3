"""How good are these numbers: the evidence tables of a real run, the mart, the report.

The mart (marts.mart_model_evaluation) is compared with the two ml evidence tables the
refits wrote, recomputed here in pandas; the report section is compared with the mart;
a run with too few customers labelled at the training cut-off says "not evaluated"
everywhere.
"""

from __future__ import annotations

from html import escape as html_escape
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from orchestration.report import load_report_data
from orchestration.report.evidence import model_evidence
from tests.pipeline_utils import run
from tests.test_report import Metrics

KEY = ["model_family", "candidate", "metric"]


def _frame(workdir: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).df()


def _expected_mart(evidence: pd.DataFrame) -> pd.DataFrame:
    """The production value and best baseline per family and metric, in plain pandas."""
    production = evidence[evidence["role"] == "production"].set_index(["model_family", "metric"])
    expected = {}
    for r in evidence.itertuples(index=False):
        key = (r.model_family, r.metric)
        baselines = evidence[
            (evidence["model_family"] == r.model_family)
            & (evidence["metric"] == r.metric)
            & (evidence["role"] == "baseline")
            & evidence["value"].notna()
        ]
        best = None
        if len(baselines):
            best = baselines["value"].max() if r.higher_is_better else baselines["value"].min()
        beats = None
        if r.role != "baseline" and best is not None and not pd.isna(r.value):
            beats = bool(r.value > best) if r.higher_is_better else bool(r.value < best)
        prod = production.loc[key, "value"] if key in production.index else None
        expected[(r.model_family, r.candidate, r.metric)] = (prod, best, beats)
    return expected


def _same(a, b) -> bool:
    if a is None or pd.isna(a):
        return b is None or pd.isna(b)
    return b is not None and not pd.isna(b) and a == pytest.approx(b, rel=1e-12)


def test_mart_agrees_with_the_evidence_tables_of_the_run(published_demo):
    seg = _frame(published_demo, "select * from ml.segmentation_evidence")
    value = _frame(published_demo, "select * from ml.value_evidence")
    candidates = _frame(published_demo, "select * from ml.segmentation_candidates")
    churn = _frame(published_demo, "select * from ml.churn_evaluation")
    mart = _frame(published_demo, "select * from marts.mart_model_evaluation")

    # Every evidence row once in the mart, value unchanged.
    evidence = pd.concat([seg, value], ignore_index=True)
    assert len(mart) == len(evidence) == len(mart.drop_duplicates(KEY))
    merged = evidence.merge(mart, on=KEY, suffixes=("_ml", "_mart"), validate="one_to_one")
    assert all(_same(a, b) for a, b in zip(merged["value_ml"], merged["value_mart"], strict=True))
    assert (merged["role_ml"] == merged["role_mart"]).all()

    # Segmentation: one production candidate, the chosen one; its eta squared as judged.
    chosen = candidates.loc[candidates["chosen"], "candidate"].item()
    assert set(seg.loc[seg["role"] == "production", "candidate"]) == {chosen}
    assert set(seg["candidate"]) == set(candidates["candidate"])
    eta2 = mart[(mart["model_family"] == "segmentation") & (mart["metric"] == "eta2_churn")]
    assert (
        eta2["production_value"] == candidates.loc[candidates["chosen"], "eta2_churn"].item()
    ).all()

    # Churn: the shipped scorer's ROC AUC and the best baseline's are those of
    # ml.churn_evaluation; a baseline that ships is production, not a baseline, there.
    roc = mart[(mart["model_family"] == "churn") & (mart["metric"] == "roc_auc")]
    if churn.empty:
        pytest.fail("the 800-customer demo is expected to train a churn model")
    by_scorer = churn.set_index("scorer")["roc_auc"]
    churn_rows = value[value["model_family"] == "churn"]
    (shipped,) = churn_rows.loc[churn_rows["role"] == "production", "candidate"].unique()
    assert (roc["production_candidate"] == shipped).all()
    assert roc["production_value"].iloc[0] == pytest.approx(by_scorer[shipped], rel=1e-12)
    baselines = by_scorer[sorted({"recency_days", "neg_frequency", "p_no_purchase"} - {shipped})]
    assert roc["best_baseline_value"].iloc[0] == pytest.approx(baselines.max(), rel=1e-12)
    assert roc["best_baseline"].iloc[0] == baselines.idxmax()

    # The side-by-side columns and the flag, recomputed in pandas for every row.
    expected = _expected_mart(evidence)
    for r in mart.itertuples(index=False):
        prod, best, beats = expected[(r.model_family, r.candidate, r.metric)]
        assert _same(r.production_value, prod), r
        assert _same(r.best_baseline_value, best), r
        got = None if pd.isna(r.beats_best_baseline) else bool(r.beats_best_baseline)
        assert got == beats, r


def test_report_section_shows_the_production_and_baseline_figures(published_demo):
    with duckdb.connect(str(published_demo / "warehouse.duckdb"), read_only=True) as con:
        data = load_report_data(con, published_demo)
    page = Metrics()
    page.feed(str(model_evidence(data.evaluation)))
    roc = _frame(
        published_demo,
        "select production_value, best_baseline_value from marts.mart_model_evaluation "
        "where model_family = 'churn' and metric = 'roc_auc' and role = 'production'",
    ).iloc[0]
    model = page.get("evidence-production", family="churn")
    baseline = page.get("evidence-baseline", family="churn")
    assert float(model["data-value"]) == roc["production_value"]
    assert model["text"] == f"{roc['production_value']:.2f}"
    assert float(baseline["data-value"]) == roc["best_baseline_value"]
    # The value families are judged out of time too: each shows a production figure of
    # the mart and none says "not evaluated".
    production = _frame(
        published_demo,
        "select model_family, metric, production_value from marts.mart_model_evaluation "
        "where role = 'production'",
    )
    for family in ("segmentation", "purchases", "p_alive", "spend", "clv"):
        shown = page.get("evidence-production", family=family)
        (value,) = production.loc[
            (production["model_family"] == family)
            & (production["metric"] == shown["data-evidence-metric"]),
            "production_value",
        ]
        assert float(shown["data-value"]) == pytest.approx(value, rel=1e-12)
        assert not [
            m
            for m in page.found
            if m["data-metric"] == "evidence-not-evaluated" and m.get("data-family") == family
        ]
    html = (published_demo / "reports" / "latest.html").read_text(encoding="utf-8")
    assert "How good are these numbers?" in html
    assert f"{roc['production_value']:.2f}" in html


@pytest.fixture(scope="module")
def short_history(tmp_path_factory) -> Path:
    """A year of 250 customers: too few are labelled at the training cut-off (two 90-day
    horizons before the as-of date) for the churn model, which falls back."""
    from orchestration.demo import generate

    workdir = tmp_path_factory.mktemp("short_history")
    generate(workdir / "demo_data", customers=250, seed=3, years=1.0)
    run(workdir)
    return workdir


def test_short_history_says_not_evaluated_everywhere(short_history):
    value = _frame(short_history, "select * from ml.value_evidence where model_family = 'churn'")
    assert list(value["metric"]) == ["not_evaluated"]
    note = value["note"].item()
    # The purchase model family is chosen out of time, so the note names BTYD, not BG/NBD.
    assert (
        "labelled customers <" in note and "churn probability = BTYD P(no purchase in 90 d)" in note
    )
    mart = _frame(
        short_history,
        "select * from marts.mart_model_evaluation where model_family = 'churn'",
    )
    assert mart["is_not_evaluated"].all() and mart["note"].tolist() == [note]
    html = (short_history / "reports" / "latest.html").read_text(encoding="utf-8")
    page = Metrics()
    page.feed(html)
    assert page.get("evidence-not-evaluated", family="churn")["text"] == "not evaluated"
    assert html_escape(note, quote=False) in html
