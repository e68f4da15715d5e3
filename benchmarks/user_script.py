"""What an analyst would write instead of the pipeline, for CDNOW (issue 20's baseline).

pandas read, lifetimes BG/NBD + Gamma-Gamma (P(alive), purchases in the next 90 days,
12-month CLV), K-Means on standardised log RFM, one Parquet file of per-customer results.
It runs in ``benchmarks/.venv-compare`` (lifetimes, scikit-learn, pyarrow), never in the
project's venv; bench.py times it as a child process next to the pipeline.

    python benchmarks/user_script.py --out DIR FILE [FILE ...]

FILE: the CDNOW master layout that ``examples/cdnow.yaml`` maps (whitespace-separated,
header ``customer_id date number_of_cds dollar_value``, date YYYYMMDD). Prints one JSON
line (customers, fitted parameters) for bench.py.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

ap = argparse.ArgumentParser()
ap.add_argument("files", nargs="+")
ap.add_argument("--out", required=True)
ap.add_argument("--clusters", type=int, default=5)
args = ap.parse_args()

tx = pd.concat(
    pd.read_csv(f, sep=r"\s+", dtype={"customer_id": str, "date": str}) for f in args.files
)
tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")

# BTYD inputs in days (lifetimes semantics), observed up to the last transaction date.
summary = summary_data_from_transaction_data(
    tx, "customer_id", "date", monetary_value_col="dollar_value", freq="D"
)
bgf = BetaGeoFitter(penalizer_coef=0.0).fit(summary["frequency"], summary["recency"], summary["T"])
repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
ggf = GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency"], repeat["monetary_value"])

f, r, t = summary["frequency"], summary["recency"], summary["T"]
summary["p_alive"] = bgf.conditional_probability_alive(f, r, t)
summary["purchases_90d"] = bgf.conditional_expected_number_of_purchases_up_to_time(90, f, r, t)
summary["clv_12m"] = ggf.customer_lifetime_value(
    bgf, f, r, t, summary["monetary_value"], time=12, freq="D", discount_rate=0.01
)

# RFM: days since the last purchase, orders (customer-days), total spend.
rfm = pd.DataFrame(
    {
        "recency_days": t - r,
        "orders": f + 1,
        "spend": tx.groupby("customer_id")["dollar_value"].sum(),
    }
)
scaled = StandardScaler().fit_transform(np.log1p(rfm.clip(lower=0)))
kmeans = KMeans(n_clusters=args.clusters, random_state=0).fit(scaled)
summary["segment"] = kmeans.labels_

out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
summary.reset_index().to_parquet(out / "customer_scores.parquet", index=False)
print(
    json.dumps(
        {
            "customers": len(summary),
            "repeat_buyers": len(repeat),
            "bgnbd": {k: round(float(v), 4) for k, v in bgf.params_.items()},
            "gamma_gamma": {k: round(float(v), 4) for k, v in ggf.params_.items()},
            "segment_sizes": np.bincount(kmeans.labels_).tolist(),
        }
    )
)
