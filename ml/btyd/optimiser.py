"""The optimiser every BTYD model maximises its log-likelihood with, and its failures.

:func:`_maximise` runs L-BFGS-B over log-parameters inside a box, falls back to
Nelder-Mead with a :class:`BTYDConvergenceWarning`, and raises
:class:`BTYDConvergenceError` when neither converges, so a fit never ends with NaN
parameters.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize

# Search box for the log-parameters: exp(+-20) spans 2e-9 .. 5e8, wide enough for
# any time unit from hours to years; a solution on the box edge means the data do
# not identify the parameter, which is reported with a warning.
_LOG_BOUND = 20.0


class BTYDConvergenceError(RuntimeError):
    """The likelihood could not be maximised (no finite optimum was found)."""


class BTYDConvergenceWarning(UserWarning):
    """The optimiser needed a fallback, or a parameter ended on its search bound."""


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
