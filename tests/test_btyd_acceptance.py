"""CDNOW as of 1997-10-01: the production P(alive) and purchase forecast vs the next 273 days.

Runs the pipeline with ``examples/cdnow.yaml`` as of 1997-10-01 (the module's one run);
the holdout is computed here from the raw file, independently of dbt. The same run
checks the segmentation as of that date against both baselines.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml.evaluation import safe_roc_auc
from ml.scores import load_value_models
from ml.value import btyd_summary
from tests.conftest import REPO
from tests.pipeline_utils import run
from tests.segment_checks import assert_segments_hold_up

pytestmark = pytest.mark.slow

MASTER = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
)


@pytest.fixture(scope="module")
def cdnow_1001(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("cdnow_1001") / "wd"
    run(workdir, REPO / "examples" / "cdnow.yaml", as_of_date="1997-10-01")
    return workdir


def test_cdnow_segments_as_of_1997_10_01_hold_up(cdnow_1001) -> None:
    assert_segments_hold_up(cdnow_1001, "cdnow as of 1997-10-01")


def test_cdnow_production_p_alive_and_forecast_out_of_time(cdnow_1001) -> None:
    WORKDIR = cdnow_1001
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
