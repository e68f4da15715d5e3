"""Discounted expected spend over a horizon from a transaction and a spend model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ml.btyd.base import _TransactionModel
from ml.btyd.inputs import _compress, _summary

if TYPE_CHECKING:
    from ml.btyd.gamma_gamma import GammaGammaModel


def customer_lifetime_value(
    transaction_model: _TransactionModel,
    spend_model: GammaGammaModel,
    X: Any,
    *,
    horizon: float,
    discount_rate: float,
    discount_period: float,
) -> np.ndarray:
    """Discounted expected spend of each customer over the next ``horizon``.

    The horizon is cut into discounting periods of length ``discount_period``; the
    purchases expected in period ``i`` (ending at time ``t_i`` after ``T``) times
    the expected spend per purchase are discounted by ``(1 + discount_rate) **
    (t_i / discount_period)``, i.e. at the end of the period (as ``lifetimes`` does;
    a last partial period is discounted at its fractional end).

    Parameters
    ----------
    transaction_model : BetaGeoModel or ParetoNBDModel
        Fitted purchase model.
    spend_model : GammaGammaModel
        Fitted spend model.
    X : DataFrame or mapping
        Columns ``frequency``, ``recency``, ``T`` (in the transaction model's time
        unit) and ``monetary_value``.
    horizon : float
        Length of the forecast, in the transaction model's time unit (e.g. 365 for a
        year when the model is in days, 52 when it is in weeks).
    discount_rate : float
        Discount rate per discounting period (e.g. 0.01 per month); >= 0.
    discount_period : float
        Length of one discounting period in the transaction model's time unit (e.g.
        30 for months in a model fitted in days, 4.345 in weeks).

    Returns
    -------
    clv : ndarray of shape (n_customers,)
        In the money unit of ``monetary_value``.
    """
    if not (np.isfinite(horizon) and horizon >= 0):
        raise ValueError("horizon must be finite and >= 0")
    if not (np.isfinite(discount_period) and discount_period > 0):
        raise ValueError("discount_period must be finite and > 0")
    if not (np.isfinite(discount_rate) and discount_rate > -1):
        raise ValueError("discount_rate must be finite and > -1")
    spend = spend_model.conditional_expected_average_spend(X)
    transaction_model._p()
    x, tx, T = _summary(X)
    (xu, txu, Tu), _, inverse = _compress([x, tx, T], None)
    n_periods = int(np.ceil(horizon / discount_period - 1e-9))
    edges = np.minimum(np.arange(n_periods + 1) * discount_period, horizon)
    value = np.zeros_like(xu)
    previous = np.zeros_like(xu)
    for end in edges[1:]:
        cumulative = transaction_model._conditional_expected(xu, txu, Tu, np.full_like(xu, end))
        value += (cumulative - previous) / (1.0 + discount_rate) ** (end / discount_period)
        previous = cumulative
    return value[inverse] * spend
