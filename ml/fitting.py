"""Maximum likelihood with a penalizer ladder, shared by the purchase and spend models.

Pure library (pandas, :mod:`ml.btyd`).
"""

from __future__ import annotations

import warnings

import pandas as pd

from ml.btyd import BTYDConvergenceError, BTYDConvergenceWarning

__all__ = ["FALLBACK_PENALIZERS", "fit_with_fallback"]

#: Penalizers tried in turn when maximum likelihood does not converge. The
#: Gamma-Gamma MLE runs off to p -> infinity when each customer's spend barely
#: varies between purchases (seen on the generated demo data); a tiny L2 penalty
#: keeps it finite without moving the conditional expectations noticeably.
FALLBACK_PENALIZERS: tuple[float, ...] = (0.0, 1e-6, 1e-4, 1e-2)


def fit_with_fallback(make, summary: pd.DataFrame, probe_rows: int = 20_000):
    """Fit ``make(penalizer)`` with the first penalizer of the ladder that converges.

    A failed fit is slow: the optimiser walks off towards infinity, and then
    Nelder-Mead spends its whole budget, each step a pass over every distinct
    customer. So on more than twice ``probe_rows`` customers the ladder is walked on
    a seeded sample of ``probe_rows``: the first penalizer that converges there is
    fitted ONCE on all rows, by L-BFGS-B only, started from the sample's optimum.
    Only if that fit fails does the walk continue down the ladder; Nelder-Mead runs
    over all rows only when L-BFGS-B failed at every rung, with a warning saying so.
    Up to twice ``probe_rows`` the sample would cost about as much as the data, so
    the ladder is walked on all rows.
    """
    if len(summary) <= 2 * probe_rows:
        return _walk_ladder(make, summary)
    sample = summary.sample(probe_rows, random_state=0)
    starts: dict[float, dict] = {}
    last: Exception | None = None
    for penalizer in FALLBACK_PENALIZERS:
        try:
            with warnings.catch_warnings():
                # about the sample, not the answer: the full fit warns for itself
                warnings.simplefilter("ignore", BTYDConvergenceWarning)
                starts[penalizer] = make(penalizer).fit(sample).params_
        except BTYDConvergenceError as exc:
            last = exc
            continue
        except ValueError:
            # the sample cannot identify the model (e.g. too few repeat buyers in it)
            return _walk_ladder(make, summary)
        try:
            model = (
                make(penalizer)
                .set_params(init_params=starts[penalizer], fallback_optimizer=False)
                .fit(summary)
            )
        except BTYDConvergenceError as exc:
            last = exc
            continue
        return _warn_if_penalised(model, penalizer, last)
    warnings.warn(
        f"{type(make(0.0)).__name__}: L-BFGS-B did not converge on all {len(summary):,} "
        f"customers at any penalizer that converged on a sample ({last}); running "
        "Nelder-Mead over all rows (slow)",
        BTYDConvergenceWarning,
        stacklevel=3,
    )
    return _walk_ladder(make, summary, starts, last)


def _walk_ladder(make, summary: pd.DataFrame, starts=None, last: Exception | None = None):
    """Fit each rung of the ladder on all of ``summary`` until one converges."""
    for penalizer in FALLBACK_PENALIZERS:
        model = make(penalizer)
        if starts and penalizer in starts:
            model.set_params(init_params=starts[penalizer])
        try:
            model.fit(summary)
        except BTYDConvergenceError as exc:
            last = exc
            continue
        return _warn_if_penalised(model, penalizer, last)
    raise last  # type: ignore[misc]


def _warn_if_penalised(model, penalizer: float, last: Exception | None):
    if penalizer:
        warnings.warn(
            f"{type(model).__name__}: maximum likelihood did not converge without a "
            f"penalty ({last}); fitted with penalizer={penalizer:g}",
            BTYDConvergenceWarning,
            stacklevel=4,
        )
    return model
