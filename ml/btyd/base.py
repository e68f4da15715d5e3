"""The fitting base class of the BTYD models and the forecasts every purchase-count model shares.

:class:`_BTYDBase` holds ``fit``/``score``/``from_params`` (the likelihood is maximised
by :func:`ml.btyd.optimiser._maximise`); :class:`_TransactionModel` the forecasts of
BG/NBD, MBG/NBD and Pareto/NBD. Input checks are :mod:`ml.btyd.inputs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike
from scipy import special
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ml.btyd.inputs import _compress, _summary, _time
from ml.btyd.optimiser import _maximise
from ml.threads import one_native_thread


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
