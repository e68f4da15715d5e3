"""The out-of-time judge: metrics every model family is scored with, and the evidence table.

Every model (segmentation, BTYD purchase / P(alive), CLV, churn) is judged the same
way: features as of an earlier cut-off, outcomes in the horizon that follows
(``features.customer_outcomes`` of that cut-off), next to simple baselines (days
since last purchase, frequency, past spend, the RFM grid). Each family turns its
figures into rows of one long table, :data:`EVIDENCE_COLUMNS`, that the Dagster
metadata, the report and Power BI show as is (``ml.model_evaluation``).

Pure library (numpy, pandas, scipy, scikit-learn); no Dagster.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

__all__ = [
    "EVIDENCE_COLUMNS",
    "ROLES",
    "eta_squared",
    "evidence_rows",
    "no_evidence_rows",
    "safe_roc_auc",
    "spearman",
    "top_share_captured",
]

#: One row per (family, candidate, metric). ``role`` says what the candidate is:
#: the one that ships (``production``), another candidate that was scored
#: (``candidate``) or a one-line rule it is compared with (``baseline``).
EVIDENCE_COLUMNS = [
    "model_family",  # segmentation, purchases, p_alive, clv, churn
    "candidate",
    "role",
    "metric",
    "value",
    "higher_is_better",
    "cutoff_date",
    "horizon_days",
    "customers",
    "note",
]
ROLES = ("production", "candidate", "baseline")

#: Metrics where a smaller value is better; every other metric is better higher.
LOWER_IS_BETTER = frozenset(
    {"brier", "mae", "abs_total_error", "total_error", "forecast_abs_error", "ece"}
    | {"davies_bouldin", "noise_share"}
)


def eta_squared(groups: ArrayLike, values: ArrayLike) -> float:
    """Share of the variance of ``values`` explained by ``groups`` (correlation ratio η²).

    η² = between-group sum of squares / total sum of squares, in [0, 1]: 0 when every
    group has the same mean, 1 when values are constant within each group. Rows with
    a missing value are left out. NaN when fewer than two rows remain or the values
    do not vary.
    """
    g = pd.Series(np.asarray(groups)).reset_index(drop=True)
    v = pd.Series(np.asarray(values, dtype=float)).reset_index(drop=True)
    keep = v.notna() & g.notna()
    g, v = g[keep], v[keep]
    if len(v) < 2:
        return float("nan")
    total = float(((v - v.mean()) ** 2).sum())
    if total <= 0:
        return float("nan")
    stats = v.groupby(g.to_numpy()).agg(["size", "mean"])
    between = float((stats["size"] * (stats["mean"] - v.mean()) ** 2).sum())
    return min(max(between / total, 0.0), 1.0)


def safe_roc_auc(y_true: ArrayLike, score: ArrayLike) -> float:
    """ROC AUC of ``score`` for ``y_true``; NaN when one class is missing or scores are NaN."""
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(score, dtype=float)
    keep = ~np.isnan(s)
    y, s = y[keep], s[keep]
    if y.size == 0 or y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, s))


def spearman(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman rank correlation; NaN when either side is constant."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size < 2 or np.nanstd(a) == 0 or np.nanstd(b) == 0:
        return float("nan")
    return float(spearmanr(a, b, nan_policy="omit").statistic)


def top_share_captured(actual: ArrayLike, score: ArrayLike, share: float = 0.10) -> float:
    """Share of the total of ``actual`` held by the top ``share`` of rows ranked by ``score``.

    Ties in ``score`` are broken by row order after a stable sort, so a constant
    score captures about ``share`` of a uniform total, as a random ranking would.
    """
    actual = np.asarray(actual, dtype=float)
    score = np.asarray(score, dtype=float)
    total = actual.sum()
    if actual.size == 0 or total <= 0:
        return float("nan")
    n = max(1, int(round(share * actual.size)))
    top = np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")[:n]
    return float(actual[top].sum() / total)


def evidence_rows(
    family: str,
    candidate: str,
    metrics: Mapping[str, float],
    *,
    role: str,
    cutoff: dt.date | None,
    horizon_days: int | None,
    customers: int,
    note: str = "",
) -> pd.DataFrame:
    """The evidence rows of one candidate: one per metric, columns :data:`EVIDENCE_COLUMNS`."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return pd.DataFrame(
        {
            "model_family": family,
            "candidate": candidate,
            "role": role,
            "metric": list(metrics),
            "value": [None if v is None else float(v) for v in metrics.values()],
            "higher_is_better": [m not in LOWER_IS_BETTER for m in metrics],
            "cutoff_date": cutoff,
            "horizon_days": horizon_days,
            "customers": int(customers),
            "note": note,
        },
        columns=EVIDENCE_COLUMNS,
    )


def no_evidence_rows(family: str, reason: str, *, horizon_days: int | None) -> pd.DataFrame:
    """One row saying why ``family`` could not be judged (e.g. too little history)."""
    return pd.DataFrame(
        {
            "model_family": [family],
            "candidate": ["(not evaluated)"],
            "role": ["production"],
            "metric": ["not_evaluated"],
            "value": [None],
            "higher_is_better": [True],
            "cutoff_date": [None],
            "horizon_days": [horizon_days],
            "customers": [0],
            "note": [reason],
        },
        columns=EVIDENCE_COLUMNS,
    )
