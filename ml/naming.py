"""Segment profiles and human-readable segment names.

:func:`profile_segments` gives one row per segment (size, share, revenue
share, mean and median of each feature); :func:`name_segments` turns each
segment's medians, *relative to the whole population*, into a business name
such as "High-value loyalists", "Lapsing big spenders" or "New low-spend".

Naming rule (percentile = mid-rank of the segment median among all customers):

* value tier from ``monetary_total``: high (>= 0.70), low (<= 0.35), else mid;
* status, first match wins:

  - ``Returns-only``: median ``frequency`` < 1 (no purchase order);
  - ``New``: ``tenure_days`` percentile <= 0.25 and median tenure <= 120 days
    (both, so a data set without recent joiners has no "new" segment);
  - ``One-time``: median ``frequency`` <= 1;
  - ``Lapsed`` / ``Lapsing``: ``recency_days`` percentile >= 0.75 / >= 0.55, or a
    median ``recency_days`` above 3 / 1.5 times the median ``inter_purchase_days_mean``;
  - ``Loyalists``: ``frequency`` percentile >= 0.60 (and not lapsing); called
    "Frequent bargain buyers" instead when the ``monetary_avg`` (basket)
    percentile is <= 0.35;
  - otherwise ``Occasional``.

Names that come out equal get a qualifier from the feature that separates
those segments most ("more frequent" / "less frequent", ...), and a numeric
suffix as the last resort, in segment-id order. Everything depends only on
the data, so the same data always gives the same, unique names.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["NOISE_NAME", "name_segments", "profile_segments"]

ID_COLUMN = "customer_id"
VALUE_COLUMN = "monetary_total"
#: Name of the group of customers a density method left unclustered.
NOISE_NAME = "Outliers (no dense segment)"

NAMING_FEATURES = (
    "monetary_total",
    "recency_days",
    "frequency",
    "tenure_days",
    "monetary_avg",
    "spend_trend_90d",
    "distinct_products",
)
# (word when the segment is higher, word when lower) for the disambiguating qualifier
_QUALIFIERS = {
    "recency_days": ("less recent", "more recent"),
    "frequency": ("more frequent", "less frequent"),
    "monetary_total": ("higher spend", "lower spend"),
    "monetary_avg": ("bigger baskets", "smaller baskets"),
    "tenure_days": ("longer tenure", "shorter tenure"),
    "spend_trend_90d": ("rising spend", "falling spend"),
    "distinct_products": ("broader range", "narrower range"),
}
_VALUE_NOUN = {"high": "big spenders", "mid": "mid spenders", "low": "low spenders"}
#: A repeat-buying segment whose median days since the last purchase exceed this many of
#: its median days between purchases is lapsed / lapsing, whatever the population does.
CADENCE_COLUMN = "inter_purchase_days_mean"
LAPSED_GAPS, LAPSING_GAPS = 3.0, 1.5


def _percentile(sorted_population: np.ndarray, value: float) -> float:
    """Mid-rank percentile of ``value`` in a sorted, NaN-free population (NaN if unknown)."""
    if sorted_population.size == 0 or np.isnan(value):
        return np.nan
    lo = np.searchsorted(sorted_population, value, side="left")
    hi = np.searchsorted(sorted_population, value, side="right")
    return float((lo + hi) / 2.0 / sorted_population.size)


def _base_name(med: dict[str, float], pct: dict[str, float]) -> str:
    """Name of one segment from its medians and their population percentiles."""
    v = pct.get("monetary_total", np.nan)
    tier = "mid" if np.isnan(v) else "high" if v >= 0.70 else "low" if v <= 0.35 else "mid"
    if med.get("frequency", np.nan) < 1:
        return "Returns-only customers"
    tenure, tenure_pct = med.get("tenure_days", np.nan), pct.get("tenure_days", np.nan)
    if tenure_pct <= 0.25 and tenure <= 120:
        return f"New {tier}-spend"
    if med.get("frequency", np.nan) <= 1:
        return f"One-time {tier}-spend buyers"
    rec = pct.get("recency_days", np.nan)
    # Lapse is judged against the population and against the segment's own cadence: where
    # most customers are long gone, a year's silence ranks "recent" but is not loyalty.
    gaps = med.get("recency_days", np.nan) / med.get(CADENCE_COLUMN, np.nan)
    if rec >= 0.75 or gaps > LAPSED_GAPS:
        return f"Lapsed {_VALUE_NOUN[tier]}"
    if rec >= 0.55 or gaps > LAPSING_GAPS:
        return f"Lapsing {_VALUE_NOUN[tier]}"
    if pct.get("frequency", np.nan) >= 0.60:
        if pct.get("monetary_avg", np.nan) <= 0.35:
            return "Frequent bargain buyers"
        return f"{tier.capitalize()}-value loyalists"
    return f"Occasional {_VALUE_NOUN[tier]}"


def name_segments(
    frame: pd.DataFrame, labels: Sequence[int] | np.ndarray, noise: int | None = None
) -> dict[int, str]:
    """Unique business name for every segment id in ``labels``.

    Parameters
    ----------
    frame : DataFrame
        One row per customer with (some of) the columns of ``NAMING_FEATURES``.
    labels : array-like of shape (n_rows,)
        Segment id of each row.
    noise : int, default=None
        Id of the noise group, named :data:`NOISE_NAME`.

    Returns
    -------
    names : dict
        Segment id -> name, unique; see the module docstring for the rule.
        Without any naming column every segment is "Segment <id>".
    """
    labels = np.asarray(labels)
    ids = [int(i) for i in np.unique(labels)]
    cols = [c for c in NAMING_FEATURES if c in frame.columns]
    values = {
        c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        for c in cols
    }
    population = {c: np.sort(v[~np.isnan(v)]) for c, v in values.items()}
    if CADENCE_COLUMN in frame.columns:  # for the lapse rule only, not a naming percentile
        values[CADENCE_COLUMN] = pd.to_numeric(frame[CADENCE_COLUMN], errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
    med: dict[int, dict[str, float]] = {}
    pct: dict[int, dict[str, float]] = {}
    for i in ids:
        rows = labels == i
        med[i] = {}
        for c in values:
            v = values[c][rows]
            v = v[~np.isnan(v)]
            med[i][c] = float(np.median(v)) if v.size else np.nan
        pct[i] = {c: _percentile(population[c], med[i][c]) for c in cols}

    names = {}
    for i in ids:
        if i == noise:
            names[i] = NOISE_NAME
        elif not cols:
            names[i] = f"Segment {i}"
        else:
            names[i] = _base_name(med[i], pct[i])
    return _disambiguate(names, pct)


def _disambiguate(names: dict[int, str], pct: dict[int, dict[str, float]]) -> dict[int, str]:
    """Make names unique: a qualifier from the most separating feature, then (2), (3)..."""
    out = dict(names)
    for name in sorted(set(names.values())):
        group = sorted(i for i, n in names.items() if n == name)
        if len(group) < 2:
            continue
        best, spread = None, 0.0
        for feature in _QUALIFIERS:  # fixed order: ties go to the first feature
            p = [pct[i].get(feature, np.nan) for i in group]
            if np.isnan(p).any():
                continue
            if max(p) - min(p) > spread + 1e-12:
                best, spread = feature, max(p) - min(p)
        if best is None:
            continue
        p = {i: pct[i][best] for i in group}
        hi_word, lo_word = _QUALIFIERS[best]
        top = max(group, key=lambda i: (p[i], -i))
        bottom = min(group, key=lambda i: (p[i], i))
        out[top] = f"{name} ({hi_word})"
        out[bottom] = f"{name} ({lo_word})"
    # last resort, also guards against a qualified name equal to another name
    seen: set[str] = set()
    for i in sorted(out):
        candidate, n = out[i], 2
        while candidate in seen:
            candidate, n = f"{out[i]} ({n})", n + 1
        out[i] = candidate
        seen.add(candidate)
    return out


def profile_segments(
    frame: pd.DataFrame,
    labels: Sequence[int] | np.ndarray,
    *,
    features: Sequence[str] | None = None,
    names: dict[int, str] | None = None,
    noise: int | None = None,
    value_column: str = VALUE_COLUMN,
) -> pd.DataFrame:
    """One profile row per segment.

    Parameters
    ----------
    frame : DataFrame
        One row per customer.
    labels : array-like of shape (n_rows,)
        Segment id of each row, positionally aligned with ``frame``.
    features : sequence of str, default=None
        Numeric columns to summarise; ``None`` = every numeric (non-boolean)
        column except ``customer_id``.
    names : dict, default=None
        Segment id -> name; ``None`` = :func:`name_segments`.
    noise : int, default=None
        Id of the noise group (flagged in ``is_noise``).
    value_column : str, default="monetary_total"
        Column whose per-segment sum gives ``revenue_share``.

    Returns
    -------
    profile : DataFrame
        Sorted by ``cluster_id``, columns ``cluster_id``, ``cluster_label``,
        ``size``, ``share`` (of customers), ``revenue_share`` (of the total of
        ``value_column``; NaN without it), ``is_noise``, then ``mean_<f>`` and
        ``median_<f>`` for each feature.

    Raises
    ------
    ValueError
        If ``labels`` does not have one entry per row.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != len(frame):
        raise ValueError(f"labels must have one entry per row: {labels.shape} vs {len(frame)} rows")
    if features is None:
        features = [
            c
            for c in frame.columns
            if c != ID_COLUMN
            and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
        ]
    features = list(features)
    stats = [f"{s}_{f}" for f in features for s in ("mean", "median")]
    head = ["cluster_id", "cluster_label", "size", "share", "revenue_share", "is_noise"]
    if len(frame) == 0:
        return pd.DataFrame(columns=head + stats)
    if names is None:
        names = name_segments(frame, labels, noise)
    numeric = pd.DataFrame(
        {
            c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            for c in dict.fromkeys([*features, value_column])
            if c in frame.columns
        }
    )
    grouped = numeric.groupby(labels, sort=True)
    sizes = grouped.size()
    ids = sizes.index.to_numpy()
    if value_column in numeric.columns:
        revenue = grouped[value_column].sum().to_numpy()
        total = numeric[value_column].sum()
        revenue_share = revenue / total if total != 0 else np.full(len(ids), np.nan)
    else:
        revenue_share = np.full(len(ids), np.nan)
    profile = pd.DataFrame(
        {
            "cluster_id": ids.astype(np.int64),
            "cluster_label": [names[int(i)] for i in ids],
            "size": sizes.to_numpy(dtype=np.int64),
            "share": sizes.to_numpy(dtype=np.float64) / len(frame),
            "revenue_share": revenue_share,
            "is_noise": ids == noise,
        }
    )
    if features:
        means = grouped[features].mean()
        medians = grouped[features].median()
        for f in features:
            profile[f"mean_{f}"] = means[f].to_numpy()
            profile[f"median_{f}"] = medians[f].to_numpy()
    return profile
