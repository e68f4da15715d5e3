"""Test helpers for churn: labels and a pandas stand-in for dbt's features computed
straight from transactions, and the IBM Telco table (contractual data).

Only tests use these; production reads dbt's tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_HORIZON_DAYS = 90


def _purchase_days(
    transactions: pd.DataFrame, customer_col: str, date_col: str, amount_col: str
) -> pd.DataFrame:
    days = transactions[[customer_col, date_col, amount_col]].copy()
    days["day"] = pd.to_datetime(days[date_col]).dt.normalize()
    return (
        days.groupby([customer_col, "day"], sort=True)[amount_col]
        .sum()
        .rename("amount")
        .reset_index()
    )


def churn_labels(
    transactions: pd.DataFrame,
    as_of_date: Any,
    *,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    customer_col: str = "customer_id",
    date_col: str = "ordered_at",
) -> pd.Series:
    """Churn label: no purchase in ``[as_of_date, as_of_date + horizon_days)``.

    For every customer with a transaction before ``as_of_date`` (the customers of
    dbt's ``customer_features`` as of that date).

    Parameters
    ----------
    transactions : DataFrame
        One row per transaction line.
    as_of_date : date-like
        The cut-off (exclusive for the features, inclusive for the label window).
    horizon_days : int, default=90
        Length of the label window in days.
    customer_col, date_col : str
        Column names.

    Returns
    -------
    churned : Series of int (0/1) indexed by customer, named ``churned``
    """
    cutoff = pd.Timestamp(as_of_date).normalize()
    dates = pd.to_datetime(transactions[date_col]).dt.normalize()
    known = transactions.loc[dates < cutoff, customer_col].unique()
    window = (dates >= cutoff) & (dates < cutoff + pd.Timedelta(days=horizon_days))
    bought = transactions.loc[window, customer_col].unique()
    index = pd.Index(np.sort(known), name=customer_col)
    return pd.Series((~index.isin(bought)).astype(int), index=index, name="churned")


def customer_features_at(
    transactions: pd.DataFrame,
    as_of_date: Any,
    *,
    customer_col: str = "customer_id",
    date_col: str = "ordered_at",
    amount_col: str = "amount",
    window_days: int = 90,
) -> pd.DataFrame:
    """A pandas stand-in for dbt's ``features.customer_features`` (tests, benchmarks).

    Same names and meanings as the dbt columns it reproduces (purchase days as
    orders, no returns handling): ``recency_days``, ``frequency``,
    ``monetary_total``, ``gross_sales``, ``monetary_avg``, ``tenure_days``, ``lt_frequency``,
    ``lt_recency_days``, ``lt_t_days``, ``lt_monetary_value``, ``spend_last_90d``,
    ``spend_prev_90d``, ``spend_trend_90d`` (90 = ``window_days``). Only
    transactions before ``as_of_date`` are used.

    Parameters
    ----------
    transactions : DataFrame
        One row per transaction line.
    as_of_date : date-like
        Features as of this date (exclusive).
    customer_col, date_col, amount_col : str
        Column names.
    window_days : int, default=90
        Length of the spend-trend windows.

    Returns
    -------
    features : DataFrame indexed by customer
    """
    cutoff = pd.Timestamp(as_of_date).normalize()
    days = _purchase_days(transactions, customer_col, date_col, amount_col)
    days = days[days["day"] < cutoff]
    g = days.groupby(customer_col, sort=True)
    first, last = g["day"].min(), g["day"].max()
    n_days = g.size()
    total = g["amount"].sum()
    first_amount = g["amount"].first()
    last_start = cutoff - pd.Timedelta(days=window_days)
    prev_start = cutoff - pd.Timedelta(days=2 * window_days)
    last_spend = days[days["day"] >= last_start].groupby(customer_col)["amount"].sum()
    prev_spend = (
        days[(days["day"] >= prev_start) & (days["day"] < last_start)]
        .groupby(customer_col)["amount"]
        .sum()
    )
    out = pd.DataFrame(
        {
            "recency_days": (cutoff - last).dt.days,
            "frequency": n_days,
            "monetary_total": total,
            "gross_sales": total,
            "monetary_avg": total / n_days,
            "tenure_days": (cutoff - first).dt.days,
            "lt_frequency": n_days - 1,
            "lt_recency_days": (last - first).dt.days,
            "lt_t_days": (cutoff - first).dt.days,
            "lt_monetary_value": ((total - first_amount) / (n_days - 1).clip(lower=1)).where(
                n_days > 1, 0.0
            ),
        }
    )
    out["spend_last_90d"] = last_spend.reindex(out.index, fill_value=0.0)
    out["spend_prev_90d"] = prev_spend.reindex(out.index, fill_value=0.0)
    out["spend_trend_90d"] = out["spend_last_90d"] - out["spend_prev_90d"]
    return out


def load_telco(path: str | Path) -> tuple[pd.DataFrame, pd.Series]:
    """The IBM Telco customer-churn table as features and label.

    ``TotalCharges`` is text with 11 blanks, all customers with ``tenure`` 0 who have
    not been billed yet: they become 0.0 (the true amount, rather than an imputed
    one). ``customerID`` becomes the index; ``SeniorCitizen`` stays 0/1 numeric.

    Parameters
    ----------
    path : str or Path
        ``telco_customer_churn.csv``.

    Returns
    -------
    X : DataFrame
        19 attribute columns, indexed by ``customerID``.
    y : Series of int
        1 when ``Churn`` is "Yes".
    """
    df = pd.read_csv(path)
    df = df.set_index("customerID")
    total = pd.to_numeric(df["TotalCharges"].astype(str).str.strip().replace("", np.nan))
    unbilled = total.isna() & (df["tenure"] == 0)
    if (total.isna() & ~unbilled).any():
        raise ValueError("TotalCharges has blanks for customers with tenure > 0")
    df["TotalCharges"] = total.where(~unbilled, 0.0)
    y = (df.pop("Churn").astype(str).str.strip() == "Yes").astype(int).rename("churned")
    return df, y
