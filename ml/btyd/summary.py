"""The lifetimes-style summary (frequency, recency, T, monetary_value) from dbt's features."""

from __future__ import annotations

import pandas as pd

from ml.btyd.inputs import DBT_SUMMARY_COLUMNS, SUMMARY_COLUMNS


def summary_from_customer_features(features: pd.DataFrame) -> pd.DataFrame:
    """The BTYD summary (time unit: days) from dbt's ``features.customer_features``.

    Renames ``lt_frequency``, ``lt_recency_days``, ``lt_t_days``,
    ``lt_monetary_value`` to ``frequency``, ``recency``, ``T``, ``monetary_value``
    and drops the returns-only customers (null lifetimes columns), keeping the index.

    Parameters
    ----------
    features : DataFrame
        Rows of ``customer_features``.

    Returns
    -------
    summary : DataFrame
    """
    present = {k: v for k, v in DBT_SUMMARY_COLUMNS.items() if k in features.columns}
    out = features[list(present)].rename(columns=present)
    return out.dropna(subset=[c for c in SUMMARY_COLUMNS if c in out.columns])
