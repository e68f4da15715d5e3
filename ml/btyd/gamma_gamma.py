"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Fader & Hardie's 2013 note)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ml.btyd.base import _BTYDBase, _TransactionModel
from ml.btyd.clv import customer_lifetime_value
from ml.btyd.inputs import SPEND_COLUMNS, _check_frequency, _columns, _compress


class GammaGammaModel(_BTYDBase):
    """Gamma-Gamma model of the average spend per transaction.

    Each transaction's spend is ``Gamma(p, nu)``; across customers
    ``nu ~ Gamma(q, gamma)``. Fitted on repeat buyers only (``frequency > 0``) with
    positive ``monetary_value`` (mean spend of the repeat purchases). The model
    assumes spend is independent of the purchase process.

    Zero or negative ``monetary_value`` (returns exceeding purchases) is outside
    the model: such customers are left out of ``fit`` with a warning, and
    :meth:`conditional_expected_average_spend` gives them the population mean, as for
    customers without repeat purchases.

    Parameters
    ----------
    penalizer : float, default=0.0
        L2 penalty ``penalizer * sum(params**2)`` added to the mean negative log-likelihood.
    init_params : mapping, default=None
        Starting values ``{"p", "q", "gamma"}``.
    max_iter : int, default=1000
        Maximum L-BFGS-B iterations.
    tol : float, default=1e-7
        Gradient tolerance of L-BFGS-B.
    fallback_optimizer : bool, default=True
        Retry with Nelder-Mead when L-BFGS-B does not converge; ``False`` raises
        at once (fast when the caller has its own fallback, e.g. a penalizer).

    Attributes
    ----------
    params_ : dict
        Fitted ``p``, ``q``, ``gamma`` (gamma in money units).
    log_likelihood_, n_customers_, n_distinct_rows_, optimizer_, n_iter_, converged_
        As in :class:`BetaGeoModel`; ``n_customers_`` counts the repeat buyers fitted.
    """

    _param_names = ("p", "q", "gamma")
    _model_name = "Gamma-Gamma"

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        init_params: Mapping[str, float] | None = None,
        max_iter: int = 1000,
        tol: float = 1e-7,
        fallback_optimizer: bool = True,
    ) -> None:
        self.penalizer = penalizer
        self.init_params = init_params
        self.max_iter = max_iter
        self.tol = tol
        self.fallback_optimizer = fallback_optimizer

    def _prepare(self, X: Any, sample_weight: ArrayLike | None) -> dict[str, Any]:
        x, m = _columns(X, SPEND_COLUMNS)
        _check_frequency(x)
        (x, m), weights, inverse = _compress([x, m], sample_weight)
        xs, x_inv = np.unique(x, return_inverse=True)
        x_inv = x_inv.ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            log_m, log_x = np.log(m), np.log(x)
        return {
            "x": x, "m": m, "mx": m * x, "log_m": log_m, "log_x": log_x,
            "weights": weights, "inverse": inverse, "xs": xs, "x_inv": x_inv,
            # weighted counts per distinct frequency (parameter-free)
            "W_x": np.bincount(x_inv, weights=weights, minlength=len(xs)),
        }  # fmt: skip

    def fit(
        self, X: Any, y: None = None, sample_weight: ArrayLike | None = None
    ) -> GammaGammaModel:
        """Fit p, q, gamma on the repeat buyers with positive spend.

        Parameters
        ----------
        X : DataFrame, mapping or array of shape (n_customers, 2)
            Columns ``frequency`` and ``monetary_value`` (other columns are ignored).
        y : None
            Ignored.
        sample_weight : array-like of shape (n_customers,), default=None
            Non-negative weight per customer.

        Returns
        -------
        self : GammaGammaModel

        Raises
        ------
        ValueError
            If no customer has a repeat purchase with positive spend.
        """
        x, m = _columns(X, SPEND_COLUMNS)
        _check_frequency(x)
        repeat = x > 0
        usable = repeat & (m > 0)
        if not usable.any():
            raise ValueError(
                "Gamma-Gamma: no customer has a repeat purchase (frequency > 0) with positive "
                "monetary_value; the spend model cannot be fitted."
            )
        n_bad = int(np.sum(repeat & ~usable))
        if n_bad:
            warnings.warn(
                f"Gamma-Gamma: {n_bad} repeat buyer(s) with monetary_value <= 0 (returns) are "
                "left out of the fit; they are scored with the population mean spend.",
                UserWarning,
                stacklevel=2,
            )
        sw = None if sample_weight is None else np.asarray(sample_weight, float).ravel()[usable]
        return super().fit(np.column_stack([x[usable], m[usable]]), y, sw)

    def _start(self, data: dict[str, Any]) -> np.ndarray:
        mean = float(np.dot(data["weights"], data["m"]) / data["weights"].sum())
        return np.log([1.0, 2.0, mean])  # population mean p*gamma/(q-1) = mean at the start

    def _loglik(self, params, data, gradient):
        p, q, g = params
        x, xs, inv = data["x"], data["xs"], data["x_inv"]
        # gamma functions depend on x only: evaluated once per distinct frequency
        head = special.gammaln(p * xs + q) - special.gammaln(p * xs) - special.gammaln(q)
        log_gmx = np.log(g + data["mx"])
        px = p * x
        ll = (
            head[inv]
            + q * np.log(g)
            + (px - 1.0) * data["log_m"]
            + px * data["log_x"]
            - (px + q) * log_gmx
        )
        if not gradient:
            return ll, None
        w, W_x = data["weights"], data["W_x"]
        W = W_x.sum()
        dg = special.digamma
        psi = dg(p * xs + q)
        d_p = W_x @ (xs * (psi - dg(p * xs))) + np.dot(
            w * x, data["log_m"] + data["log_x"] - log_gmx
        )
        d_q = W_x @ (psi - dg(q)) + W * np.log(g) - np.dot(w, log_gmx)
        d_g = W * q / g - np.dot(w, (px + q) / (g + data["mx"]))
        return ll, np.array([d_p, d_q, d_g])

    def log_likelihood(self, X: Any) -> np.ndarray:
        """Per-customer log-likelihood of the mean spend (repeat buyers with spend > 0 only).

        Parameters
        ----------
        X : DataFrame, mapping or array
            Columns ``frequency`` and ``monetary_value``.

        Returns
        -------
        ll : ndarray of shape (n_customers,)
        """
        x, m = _columns(X, SPEND_COLUMNS)
        if np.any(x <= 0) or np.any(m <= 0):
            raise ValueError(
                "the Gamma-Gamma likelihood needs frequency > 0 and monetary_value > 0"
            )
        return super().log_likelihood(X)

    def population_mean_spend(self) -> float:
        """Mean spend per transaction across customers, ``p * gamma / (q - 1)`` (needs q > 1)."""
        p, q, g = self._p()
        if q <= 1.0:
            raise ValueError(f"q = {q:.4g} <= 1: the population mean spend is infinite")
        return p * g / (q - 1.0)

    def conditional_expected_average_spend(self, X: Any) -> np.ndarray:
        """Expected spend per future transaction given each customer's history.

        ``E[M | x, m] = p (gamma + x m) / (p x + q - 1)``, a weighted mean of the
        population mean and the customer's own mean; customers without repeat
        purchases, or with ``monetary_value <= 0``, get the population mean.

        Parameters
        ----------
        X : DataFrame, mapping or array
            Columns ``frequency`` and ``monetary_value`` (money units).

        Returns
        -------
        spend : ndarray of shape (n_customers,)
            In the money unit of ``monetary_value``.
        """
        p, q, g = self._p()
        x, m = _columns(X, SPEND_COLUMNS)
        _check_frequency(x)
        own = (x > 0) & (m > 0)
        xe = np.where(own, x, 0.0)
        me = np.where(own, m, 0.0)
        denom = p * xe + q - 1.0
        if np.any(denom <= 0):
            raise ValueError(
                f"q = {q:.4g} <= 1: the expected spend of customers without repeat purchases "
                "is infinite"
            )
        return p * (g + xe * me) / denom

    def customer_lifetime_value(
        self,
        transaction_model: _TransactionModel,
        X: Any,
        *,
        horizon: float,
        discount_rate: float,
        discount_period: float,
    ) -> np.ndarray:
        """Discounted expected spend over ``horizon``; see :func:`customer_lifetime_value`."""
        return customer_lifetime_value(
            transaction_model,
            self,
            X,
            horizon=horizon,
            discount_rate=discount_rate,
            discount_period=discount_period,
        )
