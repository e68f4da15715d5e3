"""BG/NBD (Fader, Hardie & Lee 2005): purchase counts and "probability alive"."""

from __future__ import annotations

import numpy as np
from scipy import special

from ml.btyd.base import _TransactionModel
from ml.btyd.inputs import _finite

# |a - 1| below this is moved away from the removable singularity a = 1 of the
# BG/NBD expectation formulas (changes results by < 1e-7 relative).
_A_ONE_GUARD = 1e-7


class BetaGeoModel(_TransactionModel):
    """BG/NBD model (Fader, Hardie & Lee 2005).

    While active, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; after
    each purchase she drops out with probability ``p ~ Beta(a, b)``.

    Parameters
    ----------
    time_unit : str, default="days"
        Name of the unit of ``recency`` and ``T`` (and so of ``alpha`` and of every
        time argument of the methods). Informational only.
    penalizer : float, default=0.0
        L2 penalty ``penalizer * sum(params**2)`` added to the mean negative
        log-likelihood (as in ``lifetimes``); > 0 stabilises small or degenerate data.
        It acts on ``alpha`` in time units, so its strength depends on ``time_unit``.
    init_params : mapping, default=None
        Starting values ``{"r", "alpha", "a", "b"}``; by default a start derived
        from the data's mean purchase rate.
    max_iter : int, default=1000
        Maximum L-BFGS-B iterations.
    tol : float, default=1e-7
        Gradient tolerance of L-BFGS-B on the mean log-likelihood.
    fallback_optimizer : bool, default=True
        Retry with Nelder-Mead when L-BFGS-B does not converge; ``False`` raises
        at once (fast when the caller has its own fallback, e.g. a penalizer).

    Attributes
    ----------
    params_ : dict
        Fitted ``r``, ``alpha`` (in ``time_unit``), ``a``, ``b``.
    log_likelihood_ : float
        Total (weighted) log-likelihood at ``params_``.
    n_customers_ : float
        Number (total weight) of customers fitted.
    n_distinct_rows_ : int
        Number of distinct (frequency, recency, T) rows the likelihood was evaluated on.
    optimizer_ : str
        ``"L-BFGS-B"``, or ``"Nelder-Mead"`` after a fallback.
    n_iter_ : int
        Optimiser iterations.
    converged_ : bool
        Always True on a fitted model (failures raise).
    """

    _param_names = ("r", "alpha", "a", "b")
    _model_name = "BG/NBD"

    def _start_params(self, scale: float) -> np.ndarray:
        return np.array([1.0, scale, 1.0, 1.0])

    def _loglik(self, params, data, gradient):
        r, alpha, a, b = params
        xs, inv = data["xs"], data["x_inv"]
        x, tx, T = data["x"], data["tx"], data["T"]
        pos = xs > 0
        xs1 = np.where(pos, xs, 1.0)  # placeholder where x = 0 (the term is absent)
        # terms that depend on x only: evaluated once per distinct frequency
        bl2 = special.betaln(a, b + xs)
        bl3 = np.where(pos, special.betaln(a + 1.0, b + xs1 - 1.0), -np.inf)
        log_a_T = np.log(alpha + T)
        log_a_tx = np.log(alpha + tx)
        B2 = bl2[inv] - (r + x) * log_a_T
        B3 = np.where(x > 0, bl3[inv] - (r + x) * log_a_tx, -np.inf)
        L = np.logaddexp(B2, B3)
        head = special.gammaln(r + xs) - special.gammaln(r)
        ll = head[inv] + r * np.log(alpha) - special.betaln(a, b) + L
        if not gradient:
            return ll, None
        w = data["weights"]
        w2 = np.exp(B2 - L)
        w3 = np.exp(B3 - L)
        W = w.sum()
        ww2 = np.bincount(inv, weights=w * w2, minlength=len(xs))
        ww3 = np.bincount(inv, weights=w * w3, minlength=len(xs))
        wx = np.bincount(inv, weights=w, minlength=len(xs))
        dg = special.digamma
        psi_abx = dg(a + b + xs)
        d_r = (
            wx @ (dg(r + xs) - dg(r))
            + W * np.log(alpha)
            - np.dot(w * w2, log_a_T)
            - np.dot(w * w3, log_a_tx)
        )
        d_alpha = W * r / alpha - np.dot(w * (r + x), w2 / (alpha + T) + w3 / (alpha + tx))
        d_a = (
            -W * (dg(a) - dg(a + b))
            + ww2 @ (dg(a) - psi_abx)
            + ww3[pos] @ (dg(a + 1.0) - psi_abx[pos])
        )
        d_b = (
            -W * (dg(b) - dg(a + b))
            + ww2 @ (dg(b + xs) - psi_abx)
            + ww3[pos] @ (dg(b + xs[pos] - 1.0) - psi_abx[pos])
        )
        return ll, np.array([d_r, d_alpha, d_a, d_b])

    def _log_odds_dead(self, x, tx, T):
        r, alpha, a, b = self._p()
        pos = x > 0
        xb = np.where(pos, b + x - 1.0, 1.0)
        lo = np.log(a) - np.log(xb) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        return np.where(pos, lo, -np.inf)

    def _conditional_expected(self, x, tx, T, t):
        r, alpha, a, b = self._p()
        p_alive = special.expit(-self._log_odds_dead(x, tx, T))
        return _bg_conditional_expected(r, alpha, a, b, x, T, t, p_alive)

    def _no_purchase_if_alive(self, x, T, t):
        # A BG/NBD customer only drops out right after a purchase, so an active one
        # makes no purchase in the window exactly when her Poisson process has no event.
        r, alpha, _, _ = self._p()
        return np.exp(-(r + x) * np.log1p(t / (alpha + T)))


def _bg_conditional_expected(r, alpha, a, b, x, T, t, p_alive):
    """BG/NBD's E[Y(t) | x, t_x, T] given P(alive); MBG/NBD's is the same with b + 1."""
    if abs(a - 1.0) < _A_ONE_GUARD:
        a = 1.0 + np.copysign(_A_ONE_GUARD, a - 1.0)
    x, T, t = np.broadcast_arrays(x, T, t)
    z = t / (alpha + T + t)
    log1mz = np.log1p(-z)
    # bracket = 1 - (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z). Euler's transformation
    # gives (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z), whose parameters do not grow
    # with x; for extreme a (e.g. barely identified fits) that 2F1 overflows and
    # the untransformed form, then well-behaved, is used instead.
    with np.errstate(all="ignore"):
        hyp = special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
        bracket = -np.expm1((a - 1.0) * log1mz) - np.exp((a - 1.0) * log1mz) * (hyp - 1.0)
        bad = ~np.isfinite(bracket)
        if bad.any():
            xb, zb, lb = x[bad], z[bad], log1mz[bad]
            hyp_b = special.hyp2f1(r + xb, b + xb, a + b + xb - 1.0, zb)
            bracket[bad] = -np.expm1((r + xb) * lb) - np.exp((r + xb) * lb) * (hyp_b - 1.0)
    out = (a + b + x - 1.0) / (a - 1.0) * bracket * p_alive
    return _finite(out, "conditional expected purchases")
