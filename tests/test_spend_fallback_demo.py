"""The spend-model fallback on the generated demo (the 5,000-customer segmentation demo).

On the demo each customer's spend barely varies between purchases, so Gamma-Gamma has
no finite maximum-likelihood optimum and the production refit must use the shrinkage
estimate (``ml.value.ShrunkMeanSpend``). Checked from what the run wrote: the model
history, and every customer's expected spend against the credibility formula with the
observed mean computed here from the features.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tests.pipeline_utils import query


def test_demo_production_spend_model_is_the_shrinkage_fallback(segmentation_demo) -> None:
    runs = query(
        segmentation_demo,
        "select model, params from ml.model_runs where model in "
        "('gamma_gamma', 'shrunk_mean_spend')",
    )
    assert [m for m, _ in runs] == ["shrunk_mean_spend"]
    params = json.loads(runs[0][1])["params"]
    k, mean = params["k"], params["observed_mean_spend"]
    assert 0.5 <= k <= 50.0

    frame = pd.DataFrame(
        query(
            segmentation_demo,
            "select f.lt_frequency, f.lt_monetary_value, s.expected_avg_spend "
            "from features.customer_features f join ml.customer_scores s using (customer_id)",
        ),
        columns=["x", "m", "expected"],
    ).astype(float)
    repeat = frame[(frame["x"] > 0) & (frame["m"] > 0)]
    # observed mean spend per repeat purchase: total repeat spend / repeat purchases
    observed = (repeat["x"] * repeat["m"]).sum() / repeat["x"].sum()
    assert abs(mean - observed) <= 1e-9 * observed
    by_hand = (repeat["x"] * repeat["m"] + k * observed) / (repeat["x"] + k)
    np.testing.assert_allclose(repeat["expected"], by_hand, rtol=1e-6)
    one_time = frame[frame["x"] == 0]
    assert len(one_time) > 0
    np.testing.assert_allclose(one_time["expected"], observed, rtol=1e-6)
