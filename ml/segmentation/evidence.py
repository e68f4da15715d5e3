"""The segmentation candidates' out-of-time figures as rows of the evidence table."""

from __future__ import annotations

import pandas as pd

from ml.evaluation import evidence_rows, no_evidence_rows
from ml.segmentation.selection import SegmentationResult

#: Figures where higher is better; segment counts and shares are constraints, shown in
#: ml.segmentation_candidates rather than compared with a baseline.
EVIDENCE_METRICS = ("eta2_churn", "eta2_revenue", "stability")


def segmentation_evidence(result: SegmentationResult, horizon_days: int | None) -> pd.DataFrame:
    """The candidates' out-of-time figures as evidence rows (family ``segmentation``)."""
    if result.cutoff is None:
        return no_evidence_rows("segmentation", result.reason, horizon_days=horizon_days)
    frames = []
    for _, r in result.candidates.iterrows():
        role = "production" if r["chosen"] else "baseline" if r["is_baseline"] else "candidate"
        metrics = {m: r[m] for m in EVIDENCE_METRICS if pd.notna(r[m])}
        customers = len(result.backtest)
        frames.append(
            evidence_rows("segmentation", r["candidate"], metrics, role=role,
                          cutoff=result.cutoff, horizon_days=horizon_days,
                          customers=customers, note=result.reason if r["chosen"] else r["note"])
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True)
