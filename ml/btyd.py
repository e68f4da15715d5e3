"""Buy-till-you-die (BTYD) customer-base models fitted by maximum likelihood.

Public API
----------
BetaGeoModel
    BG/NBD (Fader, Hardie & Lee 2005): purchase counts and "probability alive".
ParetoNBDModel
    Pareto/NBD (Schmittlein, Morrison & Colombo 1987; Fader & Hardie's 2005 note).
GammaGammaModel
    Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Fader & Hardie's 2013 note).
customer_lifetime_value
    Discounted expected spend over a horizon from a transaction and a spend model.
summary_from_transactions, summary_from_customer_features
    Build the lifetimes-style summary (frequency, recency, T, monetary_value).
BTYDConvergenceError, BTYDConvergenceWarning
    Raised / emitted when the optimiser fails or falls back.

The input of every model is the lifetimes-style summary, one row per customer:

* ``frequency`` -- number of repeat purchases (purchase periods after the first);
* ``recency``   -- time from the first to the last purchase (0 without repeats);
* ``T``         -- time from the first purchase to the end of the observation;
* ``monetary_value`` -- mean spend of the repeat purchases (Gamma-Gamma only).

**Time unit.** ``recency`` and ``T`` may be in any unit (days from dbt, weeks in
the papers); a fitted model is in that unit, and every time argument of its
methods (``t``, ``horizon``, ``discount_period``) must be in the same unit. The
``time_unit`` parameter only names the unit, for reports and error messages.

**Fitting.** Identical ``(frequency, recency, T)`` rows are collapsed once and
weighted by their count, so the log-likelihood is evaluated per distinct row
(days are integers in the warehouse, so a million customers have a few hundred
thousand distinct rows at most). Log-likelihoods use ``gammaln`` / ``betaln`` and
log-sum-exp; L-BFGS-B runs on the log-parameters (analytic gradients for BG/NBD
and Gamma-Gamma) and falls back to Nelder-Mead with a warning; if both fail a
:class:`BTYDConvergenceError` is raised, so a fit never ends with NaN parameters.
``init_params`` starts the optimiser elsewhere, e.g. at a sample's optimum (warm start).
The optimiser runs with one BLAS/OpenMP thread (:func:`ml.threads.one_native_thread`):
the likelihoods are elementwise, and a second thread only waits (2-4x slower under load).

This module is a pure library (numpy, pandas, scipy, scikit-learn, threadpoolctl).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import integrate, optimize, special
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ml.threads import one_native_thread

__all__ = [
    "BTYDConvergenceError",
    "BTYDConvergenceWarning",
    "BetaGeoModel",
    "GammaGammaModel",
    "ParetoNBDModel",
    "customer_lifetime_value",
    "summary_from_customer_features",
    "summary_from_transactions",
]

SUMMARY_COLUMNS: tuple[str, str, str] = ("frequency", "recency", "T")
SPEND_COLUMNS: tuple[str, str] = ("frequency", "monetary_value")

#: dbt ``features.customer_features`` columns -> summary columns (time unit: days).
DBT_SUMMARY_COLUMNS: dict[str, str] = {
    "lt_frequency": "frequency",
    "lt_recency_days": "recency",
    "lt_t_days": "T",
    "lt_monetary_value": "monetary_value",
}

# Search box for the log-parameters: exp(+-20) spans 2e-9 .. 5e8, wide enough for
# any time unit from hours to years; a solution on the box edge means the data do
# not identify the parameter, which is reported with a warning.
_LOG_BOUND = 20.0
# |a - 1| below this is moved away from the removable singularity a = 1 of the
# BG/NBD expectation formulas (changes results by < 1e-7 relative).
_A_ONE_GUARD = 1e-7


class BTYDConvergenceError(RuntimeError):
    """The likelihood could not be maximised (no finite optimum was found)."""


class BTYDConvergenceWarning(UserWarning):
    """The optimiser needed a fallback, or a parameter ended on its search bound."""


# --------------------------------------------------------------------------- #
# input handling
# --------------------------------------------------------------------------- #
def _columns(X: Any, names: Sequence[str]) -> list[np.ndarray]:
    """The named columns of a DataFrame / mapping, or the columns of a 2-D array, as float."""
    if isinstance(X, Mapping):
        X = pd.DataFrame(X)
    if isinstance(X, pd.DataFrame):
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise ValueError(
                f"the summary lacks column(s) {missing}; expected {list(names)} "
                f"(use summary_from_customer_features for the dbt columns)"
            )
        cols = [X[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in names]
    else:
        A = np.asarray(X, dtype=np.float64)
        if A.ndim == 1 and A.shape[0] == len(names):
            A = A[None, :]
        if A.ndim != 2 or A.shape[1] != len(names):
            raise ValueError(
                f"X must be a DataFrame with columns {list(names)} or an array of shape "
                f"(n_customers, {len(names)}); got shape {A.shape}"
            )
        cols = [A[:, i].copy() for i in range(len(names))]
    for name, col in zip(names, cols, strict=True):
        if not np.all(np.isfinite(col)):
            raise ValueError(f"column {name!r} has missing or infinite values")
    return cols


def _check_frequency(x: np.ndarray) -> None:
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be a non-negative whole number of repeat purchases")


def _summary(X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (frequency, recency, T) arrays."""
    x, tx, T = _columns(X, SUMMARY_COLUMNS)
    _check_frequency(x)
    if np.any(tx < 0):
        raise ValueError("recency must be >= 0")
    if np.any(tx > T * (1 + 1e-12)):
        raise ValueError("recency must be <= T (time of last purchase <= end of observation)")
    if np.any((x == 0) & (tx != 0)):
        raise ValueError("recency must be 0 for customers with frequency 0")
    return x, np.minimum(tx, T), T


def _time(t: ArrayLike, name: str = "t") -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    return t


def _compress(
    cols: Sequence[np.ndarray], sample_weight: ArrayLike | None
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of ``cols``, their summed weights, and the row -> distinct-row index.

    Same result as ``np.unique(np.column_stack(cols), axis=0, return_inverse=True,
    return_counts=True)``, but each column is factorised on its own (1-D sorts), which
    is ~6x faster on a million rows than the structured sort of ``axis=0``.
    """
    n = cols[0].shape[0]
    key = np.zeros(n, dtype=np.int64)
    for col in cols:
        values, codes = np.unique(col, return_inverse=True)
        # key < n before the multiplication, so key * len(values) < n**2 fits in int64
        _, key = np.unique(key * len(values) + codes.ravel(), return_inverse=True)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if sample_weight is None:
        weights = np.bincount(inverse, minlength=len(first)).astype(np.float64)
    else:
        sw = np.asarray(sample_weight, dtype=np.float64).ravel()
        if sw.shape[0] != n or not np.all(np.isfinite(sw)) or np.any(sw < 0):
            raise ValueError("sample_weight must be finite, >= 0 and one per customer")
        weights = np.bincount(inverse, weights=sw, minlength=len(first))
    return [col[first] for col in cols], weights, inverse.ravel()


# --------------------------------------------------------------------------- #
# optimisation
# --------------------------------------------------------------------------- #
def _maximise(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray] | float],
    x0: np.ndarray,
    *,
    analytic_gradient: bool,
    names: Sequence[str],
    model: str,
    max_iter: int,
    tol: float,
    fallback: bool = True,
) -> tuple[np.ndarray, float, str, int]:
    """Minimise ``objective`` over log-parameters; return (log_params, value, method, n_iter).

    L-BFGS-B first; if it does not report success, Nelder-Mead from the best point
    so far, with a :class:`BTYDConvergenceWarning`; if that fails too, raise.
    """
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(x0)

    def value_only(z: np.ndarray) -> float:
        out = objective(z)
        return float(out[0] if analytic_gradient else out)

    with np.errstate(all="ignore"):
        start = value_only(x0)
    if not np.isfinite(start):
        raise BTYDConvergenceError(
            f"{model}: the log-likelihood is not finite at the starting point "
            f"{dict(zip(names, np.exp(x0).round(6).tolist(), strict=True))}"
        )
    with np.errstate(all="ignore"):
        res = optimize.minimize(
            objective,
            x0,
            jac=analytic_gradient,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iter, "ftol": tol * 1e-3, "gtol": tol},
        )
    method, n_iter = "L-BFGS-B", int(res.nit)
    ok = bool(res.success) and np.isfinite(res.fun) and np.all(np.isfinite(res.x))
    if not ok and not fallback:
        raise BTYDConvergenceError(
            f"{model}: maximum likelihood did not converge (L-BFGS-B: {res.message}; "
            "no fallback optimizer requested)"
        )
    if not ok:
        z0 = res.x if np.all(np.isfinite(res.x)) and np.isfinite(res.fun) else x0
        with np.errstate(all="ignore"):
            nm = optimize.minimize(
                value_only,
                z0,
                method="Nelder-Mead",
                bounds=bounds,
                options={"maxiter": 400 * len(x0), "xatol": 1e-8, "fatol": tol * 1e-3},
            )
        if not (nm.success and np.isfinite(nm.fun) and np.all(np.isfinite(nm.x))):
            raise BTYDConvergenceError(
                f"{model}: maximum likelihood did not converge "
                f"(L-BFGS-B: {res.message}; Nelder-Mead: {nm.message}). Try scaling the "
                f"time unit, a penalizer > 0, or check the summary for data errors."
            )
        warnings.warn(
            f"{model}: L-BFGS-B stopped without convergence ({res.message}); "
            f"the Nelder-Mead fallback converged.",
            BTYDConvergenceWarning,
            stacklevel=3,
        )
        res, method, n_iter = nm, "Nelder-Mead", n_iter + int(nm.nit)
    at_bound = [n for n, z in zip(names, res.x, strict=True) if abs(z) > _LOG_BOUND - 1e-3]
    if at_bound:
        warnings.warn(
            f"{model}: parameter(s) {at_bound} ended on the search bound exp(+-{_LOG_BOUND:g}); "
            f"the data do not identify them (too few repeat purchases?).",
            BTYDConvergenceWarning,
            stacklevel=3,
        )
    return np.asarray(res.x, dtype=np.float64), float(res.fun), method, n_iter


class _BTYDBase(BaseEstimator):
    """Shared fitting machinery: compression, optimiser, fitted attributes."""

    _param_names: tuple[str, ...] = ()
    _model_name = ""
    _analytic_gradient = True

    # -- to implement -------------------------------------------------------- #
    def _prepare(self, X: Any, sample_weight: ArrayLike | None) -> dict[str, Any]:
        raise NotImplementedError

    def _loglik(
        self, params: np.ndarray, data: dict[str, Any], gradient: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-distinct-row log-likelihood and, optionally, the weighted gradient sum."""
        raise NotImplementedError

    def _start(self, data: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def _check_fit_data(self, data: dict[str, Any]) -> None:
        """Raise ValueError when the data cannot identify the model."""

    # -- shared --------------------------------------------------------------- #
    def fit(self, X: Any, y: None = None, sample_weight: ArrayLike | None = None) -> Self:
        """Fit the model by maximum likelihood.

        Parameters
        ----------
        X : DataFrame, mapping or array of shape (n_customers, n_columns)
            The summary (see the module docstring for the columns); ``recency``
            and ``T`` in the unit named by ``time_unit``.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_customers,), default=None
            Non-negative weight per customer (e.g. counts of already aggregated rows).

        Returns
        -------
        self
            The fitted model.

        Raises
        ------
        ValueError
            For invalid summaries, or when no customer has a repeat purchase (the
            parameters are then not identified).
        BTYDConvergenceError
            When neither L-BFGS-B nor the Nelder-Mead fallback converges.
        """
        data = self._prepare(X, sample_weight)
        self._check_fit_data(data)
        weights = data["weights"]
        total = float(weights.sum())
        penalizer = float(self.penalizer)
        if penalizer < 0:
            raise ValueError("penalizer must be >= 0")

        def objective(z: np.ndarray):
            params = np.exp(z)
            ll, grad = self._loglik(params, data, gradient=self._analytic_gradient)
            value = -float(np.dot(weights, ll)) / total + penalizer * float(params @ params)
            if not self._analytic_gradient:
                return value if np.isfinite(value) else np.inf
            g = -grad * params / total + 2.0 * penalizer * params**2
            if not (np.isfinite(value) and np.all(np.isfinite(g))):
                # outside the numerically valid region: make the line search back off
                return np.inf, np.zeros_like(z)
            return value, g

        x0 = (
            np.log(np.asarray([self.init_params[n] for n in self._param_names], dtype=float))
            if self.init_params is not None
            else self._start(data)
        )
        with one_native_thread():  # see ml.threads: more BLAS threads only wait here
            z, value, method, n_iter = _maximise(
                objective,
                x0,
                analytic_gradient=self._analytic_gradient,
                names=self._param_names,
                model=self._model_name,
                max_iter=self.max_iter,
                tol=self.tol,
                fallback=self.fallback_optimizer,
            )
            params = np.exp(z)
            ll, _ = self._loglik(params, data, gradient=False)
        self.params_ = dict(zip(self._param_names, params.tolist(), strict=True))
        self.log_likelihood_ = float(np.dot(weights, ll))
        self.n_customers_ = total
        self.n_distinct_rows_ = int(weights.shape[0])
        self.optimizer_ = method
        self.n_iter_ = n_iter
        self.converged_ = True
        return self

    @classmethod
    def from_params(cls, params: Mapping[str, float], **kwargs: Any):
        """A model with the given (e.g. published) parameters, usable without ``fit``.

        Parameters
        ----------
        params : mapping
            One positive value per parameter name of the model.
        **kwargs
            Constructor parameters (e.g. ``time_unit``).

        Returns
        -------
        model
            A model whose ``params_`` are ``params``.
        """
        model = cls(**kwargs)
        missing = set(cls._param_names) - set(params)
        if missing:
            raise ValueError(f"missing parameter(s) {sorted(missing)}")
        values = {n: float(params[n]) for n in cls._param_names}
        if not all(np.isfinite(v) and v > 0 for v in values.values()):
            raise ValueError(f"parameters must be finite and > 0, got {values}")
        model.params_ = values
        model.converged_ = True
        return model

    def _p(self) -> tuple[float, ...]:
        check_is_fitted(self, "params_")
        return tuple(self.params_[n] for n in self._param_names)

    def log_likelihood(self, X: Any) -> np.ndarray:
        """Per-customer log-likelihood under the fitted parameters.

        Parameters
        ----------
        X : DataFrame, mapping or array
            The summary, in the model's time unit.

        Returns
        -------
        ll : ndarray of shape (n_customers,)
        """
        data = self._prepare(X, None)
        ll, _ = self._loglik(np.asarray(self._p()), data, gradient=False)
        return ll[data["inverse"]]

    def score(self, X: Any, y: None = None) -> float:
        """Mean log-likelihood per customer (higher is better).

        Parameters
        ----------
        X : DataFrame, mapping or array
            The summary, in the model's time unit.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return float(np.mean(self.log_likelihood(X)))


class _TransactionModel(_BTYDBase):
    """BG/NBD and Pareto/NBD: summary (frequency, recency, T) in, purchase forecasts out."""

    def __init__(
        self,
        *,
        time_unit: str = "days",
        penalizer: float = 0.0,
        init_params: Mapping[str, float] | None = None,
        max_iter: int = 1000,
        tol: float = 1e-7,
        fallback_optimizer: bool = True,
    ) -> None:
        self.time_unit = time_unit
        self.penalizer = penalizer
        self.init_params = init_params
        self.max_iter = max_iter
        self.tol = tol
        self.fallback_optimizer = fallback_optimizer

    def _prepare(self, X: Any, sample_weight: ArrayLike | None) -> dict[str, Any]:
        x, tx, T = _summary(X)
        (x, tx, T), weights, inverse = _compress([x, tx, T], sample_weight)
        xs, x_inv = np.unique(x, return_inverse=True)
        return {"x": x, "tx": tx, "T": T, "weights": weights, "inverse": inverse, "xs": xs,
                "x_inv": x_inv.ravel()}  # fmt: skip

    def _check_fit_data(self, data: dict[str, Any]) -> None:
        if not np.any((data["x"] > 0) & (data["weights"] > 0)):
            raise ValueError(
                f"{self._model_name}: no customer has a repeat purchase (frequency > 0), so the "
                "purchase and dropout rates are not identified. Use a longer calibration "
                "period, or a simpler model (e.g. the share of repeat buyers)."
            )

    def _start(self, data: dict[str, Any]) -> np.ndarray:
        w = data["weights"]
        # A rate-scale start: alpha ~ r / mean purchase rate, so the start does not
        # depend on the time unit (alpha is in time units).
        scale = float(np.dot(w, data["T"]) / max(np.dot(w, data["x"]), 1e-9))
        return np.log(self._start_params(max(scale, 1e-6)))

    def _start_params(self, scale: float) -> np.ndarray:
        raise NotImplementedError

    def expected_purchases(self, t: ArrayLike) -> np.ndarray:
        """Expected number of repeat purchases E[X(t)] of a customer in the ``t`` after the first.

        Parameters
        ----------
        t : float or array-like
            Time since the first purchase, in the model's time unit (``time_unit``).

        Returns
        -------
        expected : ndarray
            Same shape as ``t``.
        """
        t = _time(t)
        zeros = np.zeros_like(t)
        return self._conditional_expected(zeros, zeros, zeros, t)

    def conditional_expected_purchases(self, X: Any, t: float) -> np.ndarray:
        """Expected number of purchases in the next ``t`` given each customer's history.

        Parameters
        ----------
        X : DataFrame, mapping or array
            The summary (frequency, recency, T), in the model's time unit.
        t : float
            Length of the forecast window after ``T``, in the model's time unit.

        Returns
        -------
        expected : ndarray of shape (n_customers,)
        """
        self._p()
        x, tx, T = _summary(X)
        return self._conditional_expected(x, tx, T, _time(t))

    def probability_alive(self, X: Any) -> np.ndarray:
        """Probability that each customer is still active at ``T`` (end of observation).

        Parameters
        ----------
        X : DataFrame, mapping or array
            The summary (frequency, recency, T), in the model's time unit.

        Returns
        -------
        p_alive : ndarray of shape (n_customers,)
        """
        self._p()
        x, tx, T = _summary(X)
        return special.expit(-self._log_odds_dead(x, tx, T))

    def _log_odds_dead(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _conditional_expected(
        self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, t: np.ndarray
    ) -> np.ndarray:
        raise NotImplementedError


# --------------------------------------------------------------------------- #
# BG/NBD
# --------------------------------------------------------------------------- #
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
        if abs(a - 1.0) < _A_ONE_GUARD:
            a = 1.0 + np.copysign(_A_ONE_GUARD, a - 1.0)
        x, tx, T, t = np.broadcast_arrays(x, tx, T, t)
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
        p_alive = special.expit(-self._log_odds_dead(x, tx, T))
        out = (a + b + x - 1.0) / (a - 1.0) * bracket * p_alive
        return _finite(out, "conditional expected purchases")

    def probability_no_purchase(self, X: Any, t: float) -> np.ndarray:
        """Probability of no purchase in the next ``t`` given each customer's history.

        ``P(Y(t) = 0) = (1 - P(alive)) + P(alive) * ((alpha+T) / (alpha+T+t))**(r+x)``:
        a BG/NBD customer only drops out right after a purchase, so an active customer
        makes no purchase in the window exactly when her Poisson process has no event.

        Parameters
        ----------
        X : DataFrame, mapping or array
            The summary (frequency, recency, T), in the model's time unit.
        t : float
            Length of the window after ``T``, in the model's time unit.

        Returns
        -------
        p_none : ndarray of shape (n_customers,)
        """
        r, alpha, _, _ = self._p()
        x, tx, T = _summary(X)
        t = _time(t)
        p_alive = special.expit(-self._log_odds_dead(x, tx, T))
        stay = np.exp(-(r + x) * np.log1p(t / (alpha + T)))
        return 1.0 - p_alive + p_alive * stay


# --------------------------------------------------------------------------- #
# Pareto/NBD
# --------------------------------------------------------------------------- #
def _log_hyp2f1_c_eq_a_plus_1(a: np.ndarray, b: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``log 2F1(a, b; a+1; z)`` for a, b > 0 and 0 <= z < 1.

    Euler's transformation gives ``(1-z)^(1-b) 2F1(1, a+1-b; a+1; z)``; the large
    factor is handled in logs and the remaining series is bounded. scipy's
    ``hyp2f1`` is accurate here (checked against mpmath to 1e-9) except for large
    ``a`` with ``z`` near 1, where it returns NaN or inf; the caller replaces
    those values by quadrature (:func:`_log_a0_quadrature`).
    """
    with np.errstate(all="ignore"):
        return (1.0 - b) * np.log1p(-z) + np.log(special.hyp2f1(1.0, a + 1.0 - b, a + 1.0, z))


def _log_a0_quadrature(
    r: float, alpha: float, s: float, beta: float, x: float, tx: float, T: float
) -> float:
    """log A0 of the Pareto/NBD likelihood by adaptive quadrature (one customer).

    ``A0 = (r+s+x) * int_tx^T (alpha+y)^-(r+x) (beta+y)^-(s+1) dy``. With
    ``k = r+s+x`` and ``rho = ((alpha+y)/(alpha+tx))^-k`` this is
    ``(alpha+tx)^-k * int_rhoT^1 (1 + c rho^(1/k))^-(s+1) d rho`` with
    ``c = (beta-alpha)/(alpha+tx)``: the steep factor is absorbed by the change of
    variable and the remaining integrand is smooth and bounded.
    """
    k = r + s + x
    c = (beta - alpha) / (alpha + tx)
    rho_T = np.exp(-k * (np.log(alpha + T) - np.log(alpha + tx)))

    def log_h(rho: float) -> float:
        return -(s + 1.0) * np.log1p(c * rho ** (1.0 / k))

    shift = max(log_h(rho_T), log_h(1.0))  # h is monotone in rho
    value, _ = integrate.quad(
        lambda rho: np.exp(log_h(rho) - shift), rho_T, 1.0, epsabs=0.0, epsrel=1e-11, limit=200
    )
    with np.errstate(divide="ignore"):
        return float(-k * np.log(alpha + tx) + shift + np.log(value))


class ParetoNBDModel(_TransactionModel):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987).

    While active, a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; her
    lifetime is exponential with rate ``mu ~ Gamma(s, beta)``. The likelihood follows
    Fader & Hardie's note (2005) with the Gaussian hypergeometric function for the
    ``alpha >= beta`` and ``alpha < beta`` cases, in log space.

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
    # The derivatives of 2F1 in its parameters have no cheap closed form.
    _analytic_gradient = False

    def _start_params(self, scale: float) -> np.ndarray:
        return np.array([1.0, scale, 1.0, scale])

    @staticmethod
    def _log_a0(r, alpha, s, beta, x, tx, T):
        """log A0 of Fader & Hardie's note (the integral over the dropout time in (t_x, T))."""
        rsx = r + s + x
        if alpha >= beta:
            m, b2 = alpha, np.full_like(x, s + 1.0)
        else:
            m, b2 = beta, r + x
        d = abs(alpha - beta)
        u = _log_hyp2f1_c_eq_a_plus_1(rsx, b2, d / (m + tx)) - rsx * np.log(m + tx)
        v = _log_hyp2f1_c_eq_a_plus_1(rsx, b2, d / (m + T)) - rsx * np.log(m + T)
        # A0 = e^u - e^v >= 0 (u >= v since tx <= T); -inf when tx == T
        with np.errstate(all="ignore"):
            out = u + np.log1p(-np.exp(np.minimum(v - u, 0.0)))
        failed = ~np.isfinite(out) & (tx < T)
        failed |= np.isnan(out)
        for i in np.flatnonzero(failed):
            out[i] = _log_a0_quadrature(r, alpha, s, beta, x[i], tx[i], T[i])
        return out

    def _loglik(self, params, data, gradient):
        r, alpha, s, beta = params
        x, tx, T, xs, inv = data["x"], data["tx"], data["T"], data["xs"], data["x_inv"]
        head = special.gammaln(r + xs) - special.gammaln(r)
        c1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        c2 = np.log(s) - np.log(r + s + x) + self._log_a0(r, alpha, s, beta, x, tx, T)
        ll = head[inv] + r * np.log(alpha) + s * np.log(beta) + np.logaddexp(c1, c2)
        return ll, None

    def _log_odds_dead(self, x, tx, T):
        r, alpha, s, beta = self._p()
        log_a0 = self._log_a0(r, alpha, s, beta, x, tx, T)
        return (
            np.log(s)
            - np.log(r + s + x)
            + (r + x) * np.log(alpha + T)
            + s * np.log(beta + T)
            + log_a0
        )

    def _conditional_expected(self, x, tx, T, t):
        r, alpha, s, beta = self._p()
        # (r+x)(beta+T) / ((alpha+T)(s-1)) * [1 - ((beta+T)/(beta+T+t))^(s-1)] * P(alive),
        # with [1 - e^(-(s-1)L)] / (s-1) = L * exprel(-(s-1)L), smooth through s = 1.
        L = np.log1p(t / (beta + T))
        p_alive = special.expit(-self._log_odds_dead(x, tx, T))
        out = (r + x) * (beta + T) / (alpha + T) * L * special.exprel(-(s - 1.0) * L) * p_alive
        return _finite(out, "conditional expected purchases")


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise FloatingPointError(f"{what}: {bad} value(s) are not finite")
    return values


# --------------------------------------------------------------------------- #
# Gamma-Gamma
# --------------------------------------------------------------------------- #
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


# --------------------------------------------------------------------------- #
# CLV and summaries
# --------------------------------------------------------------------------- #
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

    A reference/test utility (production builds the summary in dbt,
    ``int_customer_lifetimes``). Transactions are distinct customer-days (their
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
