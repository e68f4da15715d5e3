"""MBG/NBD (Batislam, Denizel & Filiztekin 2007): BG/NBD with dropout possible at the first purchase.

BG/NBD lets a customer drop out only after a repeat purchase, so every one-time
buyer keeps P(alive) = 1 however long ago she bought; MBG/NBD also allows dropout
right after the first purchase, so long-silent one-time buyers fade. Formulas as
in lifetimes' ``ModifiedBetaGeoFitter``.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ml.btyd.base import _TransactionModel
from ml.btyd.bg_nbd import _bg_conditional_expected


class ModifiedBetaGeoModel(_TransactionModel):
    """MBG/NBD model (Batislam, Denizel & Filiztekin 2007).

    While active, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; at
    time zero and after each purchase she drops out with probability
    ``p ~ Beta(a, b)``. Same interface as :class:`ml.btyd.BetaGeoModel`.

    Parameters
    ----------
    time_unit : str, default="days"
        Name of the unit of ``recency`` and ``T`` (and of ``alpha`` and every time
        argument of the methods). Informational only.
    penalizer : float, default=0.0
        L2 penalty ``penalizer * sum(params**2)`` added to the mean negative log-likelihood.
    init_params : mapping, default=None
        Starting values ``{"r", "alpha", "a", "b"}``.
    max_iter : int, default=1000
        Maximum L-BFGS-B iterations.
    tol : float, default=1e-7
        Gradient tolerance of L-BFGS-B.
    fallback_optimizer : bool, default=True
        Retry with Nelder-Mead when L-BFGS-B does not converge.

    Attributes
    ----------
    params_ : dict
        Fitted ``r``, ``alpha`` (in ``time_unit``), ``a``, ``b``.
    log_likelihood_, n_customers_, n_distinct_rows_, optimizer_, n_iter_, converged_
        As in :class:`ml.btyd.BetaGeoModel`.
    """

    _param_names = ("r", "alpha", "a", "b")
    _model_name = "MBG/NBD"

    def _start_params(self, scale: float) -> np.ndarray:
        return np.array([1.0, scale, 1.0, 1.0])

    def _loglik(self, params, data, gradient):
        r, alpha, a, b = params
        x, tx, T, xs, inv = data["x"], data["tx"], data["T"], data["xs"], data["x_inv"]
        head = (
            special.gammaln(r + xs)
            - special.gammaln(r)
            + special.betaln(a, b + xs + 1.0)
            - special.betaln(a, b)
        )
        log_a_T = np.log(alpha + T)
        dead = np.log(a) - np.log(b + x) + (r + x) * (log_a_T - np.log(alpha + tx))
        ll = head[inv] + r * np.log(alpha) - (r + x) * log_a_T + np.logaddexp(dead, 0.0)
        if not gradient:
            return ll, None
        w = data["weights"]
        wx = np.bincount(inv, weights=w, minlength=len(xs))
        W = w.sum()
        q = special.expit(dead)  # d logaddexp(dead, 0) / d dead
        dg = special.digamma
        psi_ab = dg(a + b + xs + 1.0)
        d_r = (
            wx @ (dg(r + xs) - dg(r))
            + W * np.log(alpha)
            - np.dot(w, log_a_T)
            + np.dot(w * q, log_a_T - np.log(alpha + tx))
        )
        d_alpha = (
            W * r / alpha
            - np.dot(w, (r + x) / (alpha + T))
            + np.dot(w * q, (r + x) * (1.0 / (alpha + T) - 1.0 / (alpha + tx)))
        )
        d_a = wx @ (dg(a) - psi_ab) - W * (dg(a) - dg(a + b)) + np.dot(w, q) / a
        d_b = (
            wx @ (dg(b + xs + 1.0) - psi_ab)
            - W * (dg(b) - dg(a + b))
            - np.dot(w * q, 1.0 / (b + x))
        )
        return ll, np.array([d_r, d_alpha, d_a, d_b])

    def _log_odds_dead(self, x, tx, T):
        r, alpha, a, b = self._p()
        return np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))

    def _conditional_expected(self, x, tx, T, t):
        r, alpha, a, b = self._p()
        p_alive = special.expit(-self._log_odds_dead(x, tx, T))
        return _bg_conditional_expected(r, alpha, a, b + 1.0, x, T, t, p_alive)

    def _no_purchase_if_alive(self, x, T, t):
        # As in BG/NBD, dropout happens only at purchases, never inside a silent window.
        r, alpha, _, _ = self._p()
        return np.exp(-(r + x) * np.log1p(t / (alpha + T)))
