"""Customer value from dbt's ``customer_features``: the purchase model, the spend model, CLV.

Pure library (numpy, pandas, :mod:`ml.btyd`); time unit days everywhere (the dbt
lifetimes columns are in days).

* :func:`fit_value_models` - one purchase model family (BG/NBD, MBG/NBD or
  Pareto/NBD; which one is chosen out of time by :mod:`ml.value_evaluation`) and
  the spend model, on the customers with at least one purchase.
* :func:`value_scores` - P(alive) (NULL with a note when the fit does not identify
  dropout), expected purchases, expected spend per purchase and discounted CLV.

Customers whose only transactions are returns have no purchase day (null lifetimes
columns): they stay out of every fit and their CLV is 0.

The spend model (Gamma-Gamma or the shrunk mean spend) is chosen out of time by
:mod:`ml.value_evaluation` with :mod:`ml.spend`; ``ValueModels.spend_note`` says why
when it is not Gamma-Gamma.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.btyd import (
    BetaGeoModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    customer_lifetime_value,
    dropout_identification,
)
from ml.fitting import fit_with_fallback
from ml.spend import default_spend_model, fit_spend_model

__all__ = [
    "FAMILIES",
    "ValueModels",
    "btyd_summary",
    "fit_purchase_model",
    "fit_value_models",
    "purchase_summary",
    "value_scores",
]

#: The purchase model families, by the name used in metadata and the evidence table.
FAMILIES: dict[str, type] = {
    "bg_nbd": BetaGeoModel,
    "mbg_nbd": ModifiedBetaGeoModel,
    "pareto_nbd": ParetoNBDModel,
}

DAYS_PER_MONTH = 365.25 / 12


@dataclass
class ValueModels:
    """The purchase model (one family) and the spend model fitted on one cut-off.

    ``p_alive_note`` is set when the purchase model does not identify dropout
    (P(alive) is then withheld); ``spend_note`` when the spend model is the
    shrinkage fallback instead of Gamma-Gamma.
    """

    purchases: Any
    spend: Any
    family: str = "bg_nbd"
    p_alive_note: str | None = None
    spend_note: str | None = None
    spend_model: str = "gamma_gamma"


def btyd_summary(features: pd.DataFrame) -> pd.DataFrame:
    """BTYD summary in days for every row of ``features``.

    Returns-only customers (null lifetimes columns) become one-time buyers whose
    first transaction was ``tenure_days`` ago (frequency 0, recency 0, spend 0), so
    every customer can be scored; the fits use :func:`purchase_summary` instead.
    ``day_spend_mean`` is the gross sales per purchase day, the first day included
    (for :class:`ml.spend.ShrunkMeanSpend`).
    """
    out = pd.DataFrame(
        {
            "frequency": features["lt_frequency"],
            "recency": features["lt_recency_days"],
            "T": features["lt_t_days"],
            "monetary_value": features["lt_monetary_value"],
            "day_spend_mean": features["gross_sales"] / (features["lt_frequency"] + 1),
        },
        index=features.index,
    ).astype("float64")
    missing = out["frequency"].isna()
    if missing.any():
        out.loc[missing, ["frequency", "recency", "monetary_value", "day_spend_mean"]] = 0.0
        out.loc[missing, "T"] = features.loc[missing, "tenure_days"].astype("float64")
    out["T"] = out["T"].clip(lower=out["recency"])
    return out


def purchase_summary(features: pd.DataFrame) -> pd.DataFrame:
    """The summary of the customers with at least one purchase (the ones models learn from)."""
    return btyd_summary(features)[features["lt_frequency"].notna().to_numpy()]


#: Families whose likelihood is costly per customer (Pareto/NBD: each evaluation is a
#: 64-node quadrature over every distinct customer) learn their four population
#: parameters from a seeded sample of at most this many customers; every customer is
#: still scored.
SAMPLED_FAMILIES = frozenset({"pareto_nbd"})
MAX_SAMPLED_FIT_ROWS = 25_000


def fit_purchase_model(summary: pd.DataFrame, family: str):
    """Fit one purchase model family (``FAMILIES``) on a summary in days."""
    make = FAMILIES[family]
    if family in SAMPLED_FAMILIES and len(summary) > MAX_SAMPLED_FIT_ROWS:
        summary = summary.sample(MAX_SAMPLED_FIT_ROWS, random_state=0)
    return fit_with_fallback(lambda pen: make(time_unit="days", penalizer=pen), summary)


def fit_value_models(
    features: pd.DataFrame,
    family: str = "bg_nbd",
    spend: str | None = None,
    spend_fitted: Any = None,
) -> ValueModels:
    """Fit purchase model ``family`` and spend model ``spend`` (:data:`ml.spend.SPEND_MODELS`;
    None: Gamma-Gamma when trusted, see :func:`ml.spend.default_spend_model`) on one
    cut-off (time unit: days). ``spend_fitted`` is model ``spend`` already fitted on
    these features (not fitted again).

    Raises
    ------
    ValueError
        If nobody has a repeat purchase (the purchase and dropout rates are not
        identified) or no repeat buyer has a positive spend.
    """
    summary = purchase_summary(features)
    if summary.empty:
        raise ValueError("no customers with a purchase to fit the value models on")
    purchases = fit_purchase_model(summary, family)
    verdict = dropout_identification(purchases, summary)
    if spend is None:
        spend_name, spend_model, spend_note = default_spend_model(summary)
    else:
        fitted = spend_fitted is not None
        spend_model = spend_fitted if fitted else fit_spend_model(summary, spend)
        spend_name, spend_note = spend, None
    return ValueModels(
        purchases=purchases,
        spend=spend_model,
        family=family,
        p_alive_note=None if verdict.identified else verdict.reason,
        spend_note=spend_note,
        spend_model=spend_name,
    )


def value_scores(
    features: pd.DataFrame,
    models: ValueModels,
    *,
    churn_horizon_days: int,
    clv_horizon_days: int,
    annual_discount_rate: float,
) -> pd.DataFrame:
    """Value scores per customer, in the input order.

    Column names say what a value means, the horizons are values of their own (the
    caller's configuration; ``ScoringConfig`` holds the defaults).

    Returns
    -------
    scores : DataFrame
        ``customer_id``, ``p_alive`` (NaN when the purchase model does not identify
        dropout), ``p_alive_note`` (why it is withheld, else None),
        ``expected_purchases_churn_horizon`` and ``expected_purchases_clv_horizon``
        (expected purchase days in the next ``churn_horizon_days`` / ``clv_horizon_days``),
        ``expected_avg_spend`` (per purchase), ``clv`` (expected spend over
        ``clv_horizon_days``, discounted monthly at ``annual_discount_rate`` per year; 0
        for returns-only customers), ``churn_horizon_days`` and ``clv_horizon_days``.
    """
    summary = btyd_summary(features)
    bought = features["lt_frequency"].notna().to_numpy()
    purchases, spend = models.purchases, models.spend
    monthly = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
    out = pd.DataFrame({"customer_id": features["customer_id"].to_numpy()})
    out["p_alive"] = purchases.probability_alive(summary)
    if models.p_alive_note:
        out["p_alive"] = np.nan
    out["p_alive_note"] = models.p_alive_note
    for name, h in (("churn", churn_horizon_days), ("clv", clv_horizon_days)):
        out[f"expected_purchases_{name}_horizon"] = purchases.conditional_expected_purchases(
            summary, h
        )
    out["expected_avg_spend"] = np.where(
        bought, spend.conditional_expected_average_spend(summary), 0.0
    )
    clv = customer_lifetime_value(
        purchases,
        spend,
        summary,
        horizon=clv_horizon_days,
        discount_rate=monthly,
        discount_period=DAYS_PER_MONTH,
    )
    out["clv"] = np.where(bought, clv, 0.0)
    numeric = [c for c in out.columns[1:] if c not in ("p_alive", "p_alive_note")]
    bad = [c for c in numeric if not np.isfinite(out[c].to_numpy(dtype=float)).all()]
    if bad:
        raise ValueError(f"value scores have NaN or infinite values in {bad}")
    out["churn_horizon_days"] = churn_horizon_days
    out["clv_horizon_days"] = clv_horizon_days
    return out
