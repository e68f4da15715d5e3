"""Independent checks that a run's production segmentation holds up on what happened next.

The η² of the production configuration, of the RFM grid and of log-RFM K-Means (k=5)
are computed here from the warehouse tables with plain numpy / scikit-learn, not with
the project's code.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

from tests.pipeline_utils import eval_cutoff_labelled


def eta2(groups, values) -> float:
    groups = np.asarray(groups)
    values = np.asarray(values, dtype=float)
    total = ((values - values.mean()) ** 2).sum()
    between = sum(
        (groups == g).sum() * (values[groups == g].mean() - values.mean()) ** 2
        for g in np.unique(groups)
    )
    return float(between / total)


def judged_segments(workdir: Path) -> dict:
    """η² of churn and revenue in the horizon after the evaluation cut-off per segmentation."""
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        frame = eval_cutoff_labelled(
            con,
            "f.customer_id, f.recency_days, f.frequency, f.monetary_total, "
            "f.rfm_segment, o.churned, o.spend_in_horizon, b.cluster_id",
            "left join ml.segmentation_backtest b using (customer_id)",
        )
        clusters = con.execute(
            "select cluster_id, count(*) as n, bool_or(is_noise) as noise "
            "from ml.customer_clusters group by cluster_id"
        ).df()
    churn = frame["churned"].astype(float)
    revenue = frame["spend_in_horizon"].astype(float)
    logrfm = np.log1p(frame[["recency_days", "frequency", "monetary_total"]].clip(lower=0))
    km5 = KMeans(5, n_init=10, random_state=0).fit_predict(StandardScaler().fit_transform(logrfm))
    assert frame["cluster_id"].notna().all(), "every cut-off customer has a backtest segment"
    out = {
        name: {"churn": eta2(groups, churn), "revenue": eta2(groups, revenue)}
        for name, groups in (
            ("production", frame["cluster_id"].to_numpy()),
            ("rfm_grid", frame["rfm_segment"].fillna("").to_numpy()),
            ("logrfm_kmeans5", km5),
        )
    }
    out["segments"] = len(clusters)
    out["largest_share"] = float(clusters["n"].max() / clusters["n"].sum())
    out["noise_customers"] = int(clusters.loc[clusters["noise"], "n"].sum())
    return out


def assert_segments_hold_up(workdir: Path, label: str, tolerance: float = 0.0) -> dict:
    """4-8 segments, none above 45 %, nobody in a noise bucket, η² >= both baselines."""
    got = judged_segments(workdir)
    print(f"\n{label}: {got}")
    assert 4 <= got["segments"] <= 8, got
    assert got["largest_share"] <= 0.45, got
    assert got["noise_customers"] == 0, got
    for baseline in ("rfm_grid", "logrfm_kmeans5"):
        for outcome in ("churn", "revenue"):
            assert got["production"][outcome] >= got[baseline][outcome] - tolerance, (
                baseline,
                outcome,
                got,
            )
    return got


def frame_of(workdir: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).df()
