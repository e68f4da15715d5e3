"""Acceptance: data where nobody stops buying, run through the whole pipeline.

Every customer buys at a regular pace up to the last day of the data, so no purchase
model can tell who has stopped buying: P(alive) must be NULL everywhere with the
reason next to it (ml.customer_scores, marts.dim_customer, the Power BI export, the
report), and the WARN check ``p_alive_identified`` must fail without failing the run.
One extra customer only ever returned goods: their CLV must be 0.

The run's config also sets horizons other than the defaults (churn 60, CLV 180 days):
this run is the suite's end-to-end check that a configured horizon reaches the scores,
the cut-offs, the marts, the Great Expectations checks, the Power BI export and model,
and the report (issue 18: churn_horizon_days 60 used to fail every run).
"""

from __future__ import annotations

import html
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.pipeline_utils import query, run

CUSTOMERS = 300
START, END = pd.Timestamp("2023-01-01"), pd.Timestamp("2024-12-31")
RETURNS_ONLY = "R0001"
CONFIG = """\
name: always_buying
data_root: .
transactions:
  path: transactions.csv
  format: csv
  columns:
    customer_id: customer_id
    order_id: order_id
    ordered_at: ordered_at
    quantity: quantity
    amount: amount
scoring: {churn_horizon_days: 60, clv_horizon_days: 180}
"""
HORIZONS = {"churn_horizon_days": 60, "clv_horizon_days": 180}


def _always_buying(folder: Path) -> pd.DataFrame:
    """Regular buyers whose last purchase is on END, plus one returns-only customer."""
    rng = np.random.default_rng(7)
    rows = []
    for i in range(CUSTOMERS):
        gap = rng.uniform(10, 25)  # this customer's usual days between purchases
        mean_spend = float(np.exp(rng.normal(np.log(50), 0.4)))
        day = START + pd.Timedelta(days=int(rng.integers(0, 60)))
        days = []
        while day < END:
            days.append(day)
            day += pd.Timedelta(days=max(1, round(rng.normal(gap, gap / 5))))
        days.append(END)  # still buying on the last day of the data
        for j, d in enumerate(days):
            amount = round(float(rng.gamma(5.0, mean_spend / 5.0)), 2)
            rows.append((f"C{i:04d}", f"C{i:04d}-{j}", d, 1, amount))
    rows.append((RETURNS_ONLY, f"{RETURNS_ONLY}-0", pd.Timestamp("2024-06-03"), -1, -30.0))
    tx = pd.DataFrame(rows, columns=["customer_id", "order_id", "ordered_at", "quantity", "amount"])
    tx.to_csv(folder / "transactions.csv", index=False, date_format="%Y-%m-%d")
    return tx


@pytest.fixture(scope="module")
def always_buying(tmp_path_factory) -> tuple[Path, dg.ExecuteInProcessResult, pd.DataFrame]:
    data = tmp_path_factory.mktemp("always_buying_data")
    tx = _always_buying(data)
    (data / "config.yaml").write_text(CONFIG, encoding="utf-8")
    workdir = tmp_path_factory.mktemp("always_buying") / "wd"
    result, _ = run(workdir, data / "config.yaml")
    return workdir, result, tx


def test_p_alive_is_null_for_everyone_with_the_reason(always_buying) -> None:
    workdir, _, tx = always_buying
    rows = query(workdir, "select customer_id, p_alive, p_alive_note from ml.customer_scores")
    assert {r[0] for r in rows} == set(tx["customer_id"])
    assert all(r[1] is None for r in rows)
    notes = {r[2] for r in rows}
    assert len(notes) == 1
    note = notes.pop()
    # the reason in words, naming what the fit could not do
    assert "cannot tell which customers have stopped buying" in note
    assert "withheld" in note


def test_p_alive_identified_check_warns_without_failing_the_run(always_buying) -> None:
    _, result, _ = always_buying
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    check = evaluations["p_alive_identified"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["customers_without_p_alive"].value == CUSTOMERS + 1


def test_dim_customer_and_power_bi_export_carry_the_null_and_the_note(always_buying) -> None:
    workdir, _, tx = always_buying
    [(note,)] = query(workdir, "select distinct p_alive_note from ml.customer_scores")
    dim = query(workdir, "select count(*), count(p_alive), min(p_alive_note), max(p_alive_note) "
                         "from marts.dim_customer")  # fmt: skip
    assert dim == [(tx["customer_id"].nunique(), 0, note, note)]
    parquet = workdir / "exports" / "powerbi" / "dim_customer.parquet"
    with duckdb.connect() as con:
        exported = con.execute(
            "select count(*), count(p_alive), min(p_alive_note), max(p_alive_note) "
            "from read_parquet(?)",
            [str(parquet)],
        ).fetchall()
    assert exported == dim


def test_report_says_p_alive_is_withheld_and_why(always_buying) -> None:
    workdir, _, tx = always_buying
    [(note,)] = query(workdir, "select distinct p_alive_note from ml.customer_scores")
    text = html.unescape((workdir / "reports" / "latest.html").read_text(encoding="utf-8"))
    assert "P(alive) is withheld" in text
    assert f"for {tx['customer_id'].nunique():,} customers" in text
    assert note in text


def test_returns_only_customer_has_clv_zero(always_buying) -> None:
    workdir, _, tx = always_buying
    repeat = tx[tx["customer_id"] != RETURNS_ONLY]
    # the others bought every few weeks for up to two years: a positive CLV
    assert repeat.groupby("customer_id").size().min() >= 20
    scores = dict(query(workdir, "select customer_id, clv from ml.customer_scores"))
    dim = dict(query(workdir, "select customer_id, clv from marts.dim_customer"))
    assert scores[RETURNS_ONLY] == 0.0
    assert dim[RETURNS_ONLY] == 0.0
    assert min(v for k, v in dim.items() if k != RETURNS_ONLY) > 0.0
    [(spend, revenue)] = query(
        workdir,
        "select expected_avg_spend, revenue_at_risk from ml.customer_scores "
        f"where customer_id = '{RETURNS_ONLY}'",
    )
    assert (spend, revenue) == (0.0, 0.0)


def test_configured_horizons_reach_scores_marts_checks_power_bi_and_report(always_buying) -> None:
    """scoring: {churn_horizon_days: 60, clv_horizon_days: 180} end to end: the same column
    names as with the defaults, the horizons as values everywhere, and figures computed
    with them (checked here from the saved models)."""
    from data_quality import SUITES
    from ml.btyd import customer_lifetime_value
    from ml.scores import load_value_models
    from ml.value import DAYS_PER_MONTH, btyd_summary
    from tests.conftest import REPO
    from tests.powerbi_model import check_export, parquet_schema, read_semantic_model

    workdir, result, tx = always_buying
    customers = tx["customer_id"].nunique()
    horizons = "churn_horizon_days, clv_horizon_days, count(*)"
    for table in ("ml.customer_scores", "marts.dim_customer", "marts.fct_customer_snapshot"):
        assert query(workdir, f"select {horizons} from {table} group by all") == [
            (60, 180, customers)
        ], table
    assert query(workdir, "select distinct clv_horizon_days from marts.mart_segment_summary") == [
        (180,)
    ]
    assert query(
        workdir, "select distinct churn_horizon_days from marts.mart_churn_by_segment"
    ) == [(60,)]
    # The churn labels and cut-offs: as-of minus one and two 60-day horizons.
    [(as_of, train, evaluation)] = query(
        workdir,
        "select max(as_of_date), max(train_cutoff), max(eval_cutoff) from ml.model_runs",
    )
    assert (as_of - train).days == 120 and (as_of - evaluation).days == 60
    assert query(
        workdir,
        "select distinct churn_horizon_days, horizon_end_date - as_of_date "
        "from features_cutoff_eval.customer_outcomes",
    ) == [(60, 60)]

    # The figures use the horizons: recomputed from the saved models.
    models, _, meta = load_value_models(workdir / "models" / "value")
    assert meta["horizon_days"] == 60
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        features = con.execute("select * from features.customer_features order by customer_id").df()
        scores = con.execute("select * from ml.customer_scores order by customer_id").df()
    summary = btyd_summary(features)
    for column, days in (("churn", 60), ("clv", 180)):
        np.testing.assert_allclose(
            scores[f"expected_purchases_{column}_horizon"],
            models.purchases.conditional_expected_purchases(summary, days),
            rtol=1e-9,
        )
    monthly = 1.10 ** (1 / 12) - 1  # the default annual_discount_rate, 10 %
    clv = customer_lifetime_value(
        models.purchases,
        models.spend,
        summary,
        horizon=180,
        discount_rate=monthly,
        discount_period=DAYS_PER_MONTH,
    )
    bought = features["lt_frequency"].notna().to_numpy()
    np.testing.assert_allclose(scores["clv"], np.where(bought, clv, 0.0), rtol=1e-9)

    # The Great Expectations check of the scores held them to the configured horizons.
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    check = evaluations["gx_customer_scores"]
    assert check.passed
    suite = SUITES["customer_scores"](horizons=HORIZONS)
    evaluated = len(suite.row_expectations()) + len(suite.metric_expectations())
    assert check.metadata["expectations_evaluated"].value == evaluated

    # The Power BI export loads into the model, horizons included.
    export = workdir / "exports" / "powerbi"
    model = read_semantic_model(REPO / "powerbi" / "CustomerSegmentation.SemanticModel")
    schemas = {p.stem: parquet_schema(p) for p in export.glob("*.parquet")}
    assert check_export(model, schemas) == []
    with duckdb.connect() as con:
        exported = con.execute(
            "select distinct churn_horizon_days, clv_horizon_days from read_parquet(?)",
            [str(export / "dim_customer.parquet")],
        ).fetchall()
    assert exported == [(60, 180)]
    assert {"churn_horizon_days", "clv_horizon_days"} <= set(model.columns("dim_customer"))

    # The report states them.
    text = html.unescape((workdir / "reports" / "latest.html").read_text(encoding="utf-8"))
    for phrase in ("churn horizon 60 days", "CLV horizon 180 days", "Predicted 180-day CLV",
                   "Likely churners, 60 days", "over the next 180 days"):  # fmt: skip
        assert phrase in text, phrase
    assert "12-month" not in text and "90 days" not in text
