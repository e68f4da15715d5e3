"""CDNOW as of 1997-10-01: the production P(alive) and purchase forecast vs the next 273 days.

Reads a pipeline warehouse built with ``custseg run --config examples/cdnow.yaml
--as-of 1997-10-01`` (path in CDNOW_1001_WAREHOUSE); the holdout is computed here
from the raw file, independently of dbt.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml.evaluation import safe_roc_auc
from ml.scores import load_value_models
from ml.value import btyd_summary

MASTER = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
)
WORKDIR = Path(os.environ.get("CDNOW_1001_WORKDIR", "/tmp/wb-cdnow-1001"))


@pytest.mark.slow
def test_cdnow_production_p_alive_and_forecast_out_of_time() -> None:
    if not (WORKDIR / "warehouse.duckdb").exists():
        pytest.skip(f"no CDNOW 1997-10-01 pipeline warehouse in {WORKDIR}")
    tx = pd.read_csv(MASTER, sep=r"\s+", dtype={"customer_id": str, "date": str})
    tx["day"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    hold = tx[(tx["day"] >= "1997-10-01") & (tx["day"] <= "1998-06-30")]
    days = hold[["customer_id", "day"]].drop_duplicates().groupby("customer_id").size()
    assert days.sum() == 19684  # /work/shared/data/README.md
    with duckdb.connect(str(WORKDIR / "warehouse.duckdb"), read_only=True) as con:
        features = con.execute("select * from features.customer_features order by customer_id").df()
        scores = con.execute("select customer_id, p_alive from ml.customer_scores").df()
    models, _, _ = load_value_models(WORKDIR / "models" / "value")
    ids = features["customer_id"].astype(str).str.lstrip("0")
    actual = days.rename(lambda c: c.lstrip("0")).reindex(ids, fill_value=0).to_numpy()
    p_alive = scores.set_index("customer_id")["p_alive"].reindex(features["customer_id"])
    auc = safe_roc_auc(actual == 0, 1.0 - p_alive.to_numpy())
    predicted = models.purchases.conditional_expected_purchases(btyd_summary(features), 273).sum()
    print(f"\n{models.family}: AUC {auc:.3f}, predicted {predicted:,.0f} vs 19,684")
    assert auc >= 0.70
    assert abs(predicted - 19684) / 19684 <= 0.15
