"""Spend per purchase and the campaign plan on the generated demo (5,000 customers, seed 11).

On the demo each customer's spend barely varies between purchases, so Gamma-Gamma has
no finite maximum-likelihood optimum today and is out; the spend model is whichever of
the shrunk and the own mean spend per purchase day predicted better out of time. Checked
from what the run wrote, against the demo's ground truth (the planted personas) and
against figures recomputed here from the features.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.pipeline_utils import query


def _frame(workdir, sql: str, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(query(workdir, sql), columns=columns)


def test_gamma_gamma_is_out_and_expected_spend_follows_the_credibility_formula(
    segmentation_demo,
) -> None:
    runs = query(
        segmentation_demo,
        "select model, params from ml.model_runs where model in "
        "('gamma_gamma', 'shrunk_mean_spend', 'own_mean_spend')",
    )
    assert [m for m, _ in runs] in (["shrunk_mean_spend"], ["own_mean_spend"])
    params = json.loads(runs[0][1])["params"]
    k, mean = params["k"], params["observed_mean_spend"]
    (note,) = query(
        segmentation_demo,
        "select note from ml.value_evidence where model_family = 'spend' "
        "and candidate = 'gamma_gamma' limit 1",
    )[0]
    assert note.startswith("excluded: Gamma-Gamma has no finite")

    frame = _frame(
        segmentation_demo,
        "select f.lt_frequency, f.gross_sales, s.expected_avg_spend "
        "from features.customer_features f join ml.customer_scores s using (customer_id) "
        "where f.lt_frequency is not null",
        ["x", "gross", "expected"],
    ).astype(float)
    days = frame["x"] + 1  # purchase days, the first one included
    own = frame["gross"] / days
    observed = frame["gross"].sum() / days.sum()  # every customer's spend per purchase day
    assert mean == pytest.approx(observed, rel=1e-9)
    by_hand = (days * own + k * observed) / (days + k)
    np.testing.assert_allclose(frame["expected"], by_hand, rtol=1e-6)
    one_time = frame[frame["x"] == 0]
    assert len(one_time) > 100
    # One-time buyers are judged by their own purchase, not by the repeat buyers' mean.
    assert (
        abs(one_time["expected"] - one_time["gross"]).mean()
        < abs(one_time["gross"] - observed).mean()
    )


def test_campaign_plan_is_not_led_by_one_time_buyers_with_inflated_clv(segmentation_demo) -> None:
    personas = segmentation_demo / "demo_data" / "ground_truth" / "personas.csv"
    plan = _frame(
        segmentation_demo,
        "select t.segment_name, t.expected_value, t.clv, p.persona, f.monetary_total, "
        "f.gross_sales / (f.lt_frequency + 1), s.expected_avg_spend "
        "from marts.mart_campaign_targets t "
        "join features.customer_features f using (customer_id) "
        "join ml.customer_scores s using (customer_id) "
        f"join read_csv('{personas}', all_varchar = true) p using (customer_id)",
        ["segment", "ev", "clv", "persona", "revenue", "own_spend", "expected_spend"],
    )
    top = plan.groupby("segment")["ev"].sum().idxmax()
    in_top = plan[plan["segment"] == top]
    # The segment leading the plan is not made of (planted) one-time buyers ...
    assert (in_top["persona"] == "one_time_buyer").mean() < 0.5
    # ... its expected spend per purchase is what its customers spent so far, not more ...
    assert in_top["expected_spend"].mean() <= 1.1 * in_top["own_spend"].mean()
    # ... and the one-time buyers' 12-month CLV is below what they spent to date.
    one_time = plan[plan["persona"] == "one_time_buyer"]
    assert len(one_time) > 100
    assert one_time["clv"].mean() < one_time["revenue"].mean()


def test_spend_and_clv_judged_out_of_time_beat_their_baselines(segmentation_demo) -> None:
    rows = _frame(
        segmentation_demo,
        "select model_family, candidate, role, metric, value from ml.value_evidence "
        "where model_family in ('spend', 'clv')",
        ["family", "candidate", "role", "metric", "value"],
    )
    spend = rows[(rows["family"] == "spend") & (rows["metric"] == "mae")]
    (production,) = spend.loc[spend["role"] == "production", "value"]
    (baseline,) = spend.loc[spend["role"] == "baseline", "value"]
    assert production < 0.5 * baseline
    clv = rows[(rows["family"] == "clv") & (rows["role"] == "production")].set_index("metric")
    assert clv.loc["abs_total_error", "value"] < 0.10
