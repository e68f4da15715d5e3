"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987; Fader & Hardie's 2005 note)."""

from __future__ import annotations

import numpy as np
from scipy import special

from ml.btyd.base import _TransactionModel
from ml.btyd.inputs import _compress, _finite

# Gauss-Legendre nodes of the P(no purchase | alive) integral (a smooth, bounded integrand).
_QUADRATURE_NODES = 48


# Gauss-Legendre nodes of log A0 (integrand smooth in u, see below): 64 agree with an
# adaptive quadrature to 1e-8 for up to 400 repeat purchases.
_A0_NODES, _A0_WEIGHTS = np.polynomial.legendre.leggauss(64)
# Customers per block of the quadratures (log A0, P(no purchase | alive)): their
# (customers x nodes) arrays then stay small enough for the allocator to reuse them
# (fresh memory is slow on some machines). Every row is computed on its own, so the
# result does not depend on the block size.
_BLOCK_ROWS = 16_384


def _blocks(n: int):
    """Slices of ``_BLOCK_ROWS`` consecutive rows covering ``range(n)``."""
    return (slice(start, start + _BLOCK_ROWS) for start in range(0, n, _BLOCK_ROWS))


def _log_a0_gauss(r, alpha, s, beta, x, tx, T, gradient: bool = False):
    """log A0 for every customer at once by Gauss-Legendre quadrature.

    Fixed nodes cost the same at every parameter value; the closed form through 2F1
    is slow or fails (scipy's series) exactly where the optimiser often goes, with
    r + s + x large and the argument near 1.

    ``A0 = (r+s+x) * int_tx^T (alpha+y)^-(r+x) (beta+y)^-(s+1) dy``; with
    ``u = (alpha+tx)/(alpha+y)`` and ``k = r+s+x`` this is
    ``(alpha+tx)^-k * int_uT^1 k u^(k-1) (1 + c u)^-(s+1) du``: a smooth
    integrand on ``[uT, 1]``, ``uT = (alpha+tx)/(alpha+T)``.

    With ``gradient``, also the derivatives of ``log A0`` in (r, alpha, s, beta), one
    column each: the integral's limits do not depend on the parameters, so each is
    the integrand's own log-derivative averaged over the nodes with their shares of
    the integral (``alpha + y = (alpha+tx)/u``, ``beta + y = (alpha+tx)(1+cu)/u``).
    """
    k = (r + s + x)[:, None]
    c = ((beta - alpha) / (alpha + tx))[:, None]
    u_T = ((alpha + tx) / (alpha + T))[:, None]
    half = (1.0 - u_T) / 2.0
    u = u_T + half * (_A0_NODES[None, :] + 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_u = np.log(u)
        log_1cu = np.log1p(c * u)
        log_f = np.log(k) + (k - 1.0) * log_u - (s + 1.0) * log_1cu
        # log-sum-exp against the weights, by hand: scipy's logsumexp spends most of
        # its time on checks this fixed-shape, finite-weight case does not need
        top = log_f.max(axis=1)
        shift = np.where(np.isfinite(top), top, 0.0)
        terms = np.exp(log_f - shift[:, None]) * _A0_WEIGHTS[None, :]
        total = terms.sum(axis=1)
        log_int = np.log(half[:, 0]) + np.log(total) + shift
        log_a_tx = np.log(alpha + tx)
        log_a0 = -(r + s + x) * log_a_tx + log_int
        if not gradient:
            return log_a0
        share = terms / total[:, None]
        mean_log_u = np.einsum("ij,ij->i", share, log_u)
        d_r = 1.0 / k[:, 0] - log_a_tx + mean_log_u
        d_alpha = -(r + x) / (alpha + tx) * np.einsum("ij,ij->i", share, u)
        d_s = d_r - np.einsum("ij,ij->i", share, log_1cu)
        d_beta = -(s + 1.0) / (alpha + tx) * np.einsum("ij,ij->i", share, u / (1.0 + c * u))
    return log_a0, np.column_stack([d_r, d_alpha, d_s, d_beta])


class ParetoNBDModel(_TransactionModel):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

    While active, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; her
    lifetime is exponential with rate ``mu ~ Gamma(s, beta)``. The likelihood follows
    Fader & Hardie's note (2005); its integral over the dropout time is computed by
    Gauss-Legendre quadrature (:func:`_log_a0_gauss`), in log space.

    Parameters
    ----------
    time_unit : str, default="days"
        Name of the unit of ``recency`` and ``T`` (and of ``alpha``, ``beta`` and every
        time argument of the methods). Informational only.
    penalizer : float, default=0.0
        L2 penalty ``penalizer * sum(params**2)`` added to the mean negative log-likelihood.
    init_params : mapping, default=None
        Starting values ``{"r", "alpha", "s", "beta"}``.
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
        Fitted ``r``, ``alpha``, ``s``, ``beta`` (alpha and beta in ``time_unit``).
    log_likelihood_, n_customers_, n_distinct_rows_, optimizer_, n_iter_, converged_
        As in :class:`BetaGeoModel`.
    """

    _param_names = ("r", "alpha", "s", "beta")
    _model_name = "Pareto/NBD"

    def _start_params(self, scale: float) -> np.ndarray:
        return np.array([1.0, scale, 1.0, scale])

    @staticmethod
    def _log_a0(r, alpha, s, beta, x, tx, T, gradient: bool = False):
        """log A0 of Fader & Hardie's note (the integral over the dropout time in (t_x, T));
        -inf where tx == T. With ``gradient`` also its derivatives (0 where tx == T)."""
        out = np.full(np.shape(x), -np.inf)
        d = np.zeros((np.size(x), 4)) if gradient else None
        inside = np.flatnonzero(tx < T)
        for b in _blocks(len(inside)):
            rows = inside[b]
            got = _log_a0_gauss(r, alpha, s, beta, x[rows], tx[rows], T[rows], gradient)
            if gradient:
                out[rows], d[rows] = got
            else:
                out[rows] = got
        return (out, d) if gradient else out

    def _loglik(self, params, data, gradient):
        r, alpha, s, beta = params
        x, tx, T, xs, inv = data["x"], data["tx"], data["T"], data["xs"], data["x_inv"]
        head = special.gammaln(r + xs) - special.gammaln(r)
        c1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        a0 = self._log_a0(r, alpha, s, beta, x, tx, T, gradient)
        log_a0, d_a0 = a0 if gradient else (a0, None)
        c2 = np.log(s) - np.log(r + s + x) + log_a0
        L = np.logaddexp(c1, c2)
        ll = head[inv] + r * np.log(alpha) + s * np.log(beta) + L
        if not gradient:
            return ll, None
        # d ll = d head + d(r log alpha + s log beta) + w1 d c1 + w2 d c2, with
        # w1, w2 the shares of the two terms of L (w2 = 0 where tx == T)
        w = data["weights"]
        w1, w2 = np.exp(c1 - L), np.exp(c2 - L)
        d_k = -1.0 / (r + s + x)  # of -log(r + s + x) in c2
        dg = special.digamma
        wx = np.bincount(inv, weights=w, minlength=len(xs))
        W = w.sum()
        d_r = (
            wx @ (dg(r + xs) - dg(r))
            + W * np.log(alpha)
            - np.dot(w * w1, np.log(alpha + T))
            + np.dot(w * w2, d_k + d_a0[:, 0])
        )
        d_alpha = W * r / alpha - np.dot(w * w1, (r + x) / (alpha + T)) + np.dot(w * w2, d_a0[:, 1])
        d_s = (
            W * np.log(beta)
            - np.dot(w * w1, np.log(beta + T))
            + np.dot(w * w2, 1.0 / s + d_k + d_a0[:, 2])
        )
        d_beta = W * s / beta - np.dot(w * w1, s / (beta + T)) + np.dot(w * w2, d_a0[:, 3])
        return ll, np.array([d_r, d_alpha, d_s, d_beta])

    def _log_odds_dead(self, x, tx, T):
        # Customers with the same (x, tx, T) have the same odds: each history once.
        shape = np.shape(x)
        (x, tx, T), _, inverse = _compress([np.ravel(x), np.ravel(tx), np.ravel(T)], None)
        r, alpha, s, beta = self._p()
        log_a0 = self._log_a0(r, alpha, s, beta, x, tx, T)
        odds = (
            np.log(s)
            - np.log(r + s + x)
            + (r + x) * np.log(alpha + T)
            + s * np.log(beta + T)
            + log_a0
        )
        return odds[inverse].reshape(shape)

    def _conditional_expected(self, x, tx, T, t):
        r, alpha, s, beta = self._p()
        # (r+x)(beta+T) / ((alpha+T)(s-1)) * [1 - ((beta+T)/(beta+T+t))^(s-1)] * P(alive),
        # with [1 - e^(-(s-1)L)] / (s-1) = L * exprel(-(s-1)L), smooth through s = 1.
        L = np.log1p(t / (beta + T))
        p_alive = special.expit(-self._log_odds_dead(x, tx, T))
        out = (r + x) * (beta + T) / (alpha + T) * L * special.exprel(-(s - 1.0) * L) * p_alive
        return _finite(out, "conditional expected purchases")

    def _no_purchase_if_alive(self, x, T, t):
        # Alive at T, lambda ~ Gamma(r+x, alpha+T) and mu ~ Gamma(s, beta+T); the
        # first purchase comes at v < t while still alive with density
        # (r+x)/(alpha+T+v) ((alpha+T)/(alpha+T+v))^(r+x) ((beta+T)/(beta+T+v))^s.
        # Substituting u = 1 - ((alpha+T)/(alpha+T+v))^(r+x) leaves the bounded,
        # monotone factor ((beta+T)/(beta+T+v))^s to integrate over u, which
        # Gauss-Legendre handles to near machine precision.
        # Each distinct (x, T, t) once, in blocks of customers as log A0.
        r, alpha, s, beta = self._p()
        x, T, t = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, T, t)))
        shape = x.shape
        (x, T, t), _, inverse = _compress([x.ravel(), T.ravel(), t.ravel()], None)
        nodes, weights = np.polynomial.legendre.leggauss(_QUADRATURE_NODES)
        bought = np.empty(len(x))
        for b in _blocks(len(x)):
            k, a_T, b_T = r + x[b], alpha + T[b], beta + T[b]
            u_max = -np.expm1(-k * np.log1p(t[b] / a_T))
            u = 0.5 * u_max[:, None] * (nodes + 1.0)
            v = a_T[:, None] * np.expm1(-np.log1p(-u) / k[:, None])
            g = np.exp(-s * np.log1p(v / b_T[:, None]))
            bought[b] = 0.5 * u_max * (g * weights).sum(axis=1)  # per row, whatever the block
        return _finite(1.0 - bought[inverse].reshape(shape), "probability of no purchase")
