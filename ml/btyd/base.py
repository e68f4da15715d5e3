"""Shared machinery of the BTYD models: input checks, the optimiser, the fitting base class.

Every model maximises its log-likelihood over log-parameters with
:func:`_maximise` (L-BFGS-B, Nelder-Mead fallback, one native thread);
:class:`_BTYDBase` holds ``fit``/``score``/``from_params`` and
:class:`_TransactionModel` the forecasts every purchase-count model shares.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, special
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ml.threads import one_native_thread

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
    """BG/NBD, MBG/NBD and Pareto/NBD: summary (frequency, recency, T) in, purchase forecasts out."""

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

    def probability_no_purchase(self, X: Any, t: float) -> np.ndarray:
        """Probability of no purchase in the next ``t`` given each customer's history.

        ``P(Y(t) = 0) = (1 - P(alive)) + P(alive) * P(no purchase in t | alive at T)``;
        the second factor is model-specific (see each model's ``_no_purchase_if_alive``).

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
        self._p()
        x, tx, T = _summary(X)
        t = _time(t)
        p_alive = special.expit(-self._log_odds_dead(x, tx, T))
        return 1.0 - p_alive + p_alive * self._no_purchase_if_alive(x, T, t)

    def _no_purchase_if_alive(self, x: np.ndarray, T: np.ndarray, t: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _log_odds_dead(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _conditional_expected(
        self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, t: np.ndarray
    ) -> np.ndarray:
        raise NotImplementedError


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise FloatingPointError(f"{what}: {bad} value(s) are not finite")
    return values
