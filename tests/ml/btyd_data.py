"""Test helper for the BTYD models: the lifetimes-style summary straight from transactions.

Only tests use it; production reads the summary from dbt's ``customer_features``
(:func:`ml.btyd.summary_from_customer_features`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def summary_from_transactions(
    df: pd.DataFrame,
    customer_col: str,
    date_col: str,
    value_col: str,
    calibration_end: Any,
    observation_end: Any | None = None,
    freq_days: float = 7,
) -> pd.DataFrame:
    """The lifetimes-style calibration (and holdout) summary of a transaction table.

    Production builds the summary in dbt (``int_customer_lifetimes``); this pandas
    version reproduces the published CDNOW summary for the tests. Transactions are distinct customer-days (their
    values summed); times are in units of ``freq_days`` days (7: weeks, as in the
    CDNOW papers). Customers whose first purchase is after ``calibration_end`` are
    not in the calibration cohort and are left out.

    Parameters
    ----------
    df : DataFrame
        One row per transaction line.
    customer_col, date_col, value_col : str
        Columns with the customer id, the date (anything ``pd.to_datetime`` reads)
        and the spend.
    calibration_end : date-like
        Last day of the calibration period (inclusive).
    observation_end : date-like, default=None
        Last day of the holdout period (inclusive); no holdout columns when None.
    freq_days : float, default=7
        Days per time unit of ``recency``, ``T`` and ``duration_holdout``.

    Returns
    -------
    summary : DataFrame indexed by customer
        ``frequency`` (repeat purchase days in the calibration period), ``recency``
        and ``T`` (time units), ``monetary_value`` (mean spend of the repeat purchase
        days, 0 without repeats); with ``observation_end`` also
        ``frequency_holdout`` (purchase days in the holdout), ``monetary_value_holdout``
        (their mean spend, 0 without) and ``duration_holdout`` (time units).
    """
    cal_end = pd.Timestamp(calibration_end).normalize()
    days = (
        df.assign(_day=pd.to_datetime(df[date_col]).dt.normalize())
        .groupby([customer_col, "_day"], sort=True)[value_col]
        .sum()
        .reset_index()
    )
    cal = days[days["_day"] <= cal_end]
    grouped = cal.groupby(customer_col, sort=True)
    first = grouped["_day"].min()
    last = grouped["_day"].max()
    n_days = grouped["_day"].size()
    total = grouped[value_col].sum()
    first_spend = cal.drop_duplicates(customer_col, keep="first").set_index(customer_col)[value_col]
    frequency = n_days - 1
    repeat_spend = total - first_spend.reindex(total.index)
    out = pd.DataFrame(
        {
            "frequency": frequency.astype(np.int64),
            "recency": (last - first).dt.days / freq_days,
            "T": (cal_end - first).dt.days / freq_days,
            "monetary_value": np.where(frequency > 0, repeat_spend / frequency.clip(lower=1), 0.0),
        }
    )
    if observation_end is not None:
        obs_end = pd.Timestamp(observation_end).normalize()
        if obs_end <= cal_end:
            raise ValueError("observation_end must be after calibration_end")
        hold = days[(days["_day"] > cal_end) & (days["_day"] <= obs_end)]
        hold = hold[hold[customer_col].isin(out.index)].groupby(customer_col)[value_col]
        n_hold = hold.size().reindex(out.index, fill_value=0)
        out["frequency_holdout"] = n_hold.astype(np.int64)
        out["monetary_value_holdout"] = (
            (hold.sum().reindex(out.index, fill_value=0.0) / n_hold.clip(lower=1))
            .where(n_hold > 0, 0.0)
            .astype(np.float64)
        )
        out["duration_holdout"] = (obs_end - cal_end).days / freq_days
    return out
