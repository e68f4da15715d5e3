"""Maximum likelihood with a penalizer ladder, shared by the purchase and spend models.

Pure library (pandas, :mod:`ml.btyd`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

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

    The ladder is walked by L-BFGS-B alone first; Nelder-Mead (the model's fallback,
    where it has one) is tried only when L-BFGS-B failed at every penalizer. A failed
    fit is slow: when the likelihood has no finite optimum the optimiser walks off
    towards infinity, and Nelder-Mead then spends its whole budget, each step a pass
    over every distinct customer, to fail as well; the next penalizer usually
    converges at once.

    On more than twice ``probe_rows`` customers the ladder is walked on a seeded sample
    of ``probe_rows``: the first penalizer that converges there is fitted ONCE on all
    rows, by L-BFGS-B only, started from the sample's optimum. Only if that fit fails
    does the walk continue down the ladder; Nelder-Mead runs over all rows only when
    L-BFGS-B failed at every rung, with a warning saying so. Up to twice ``probe_rows``
    the sample would cost about as much as the data, so the ladder is walked on all
    rows.
    """
    if len(summary) <= 2 * probe_rows:
        return _walk_ladder(make, summary, _rungs(make))
    sample = summary.sample(probe_rows, random_state=0)
    starts: dict[float, dict] = {}
    last: Exception | None = None
    for penalizer, lbfgs_only in _rungs(make):
        if penalizer in starts:  # converged on the sample, failed on all rows
            continue
        try:
            with warnings.catch_warnings():
                # about the sample, not the answer: the full fit warns for itself
                warnings.simplefilter("ignore", BTYDConvergenceWarning)
                start = _model(make, penalizer, lbfgs_only).fit(sample).params_
        except BTYDConvergenceError as exc:
            last = exc
            continue
        except ValueError:
            # the sample cannot identify the model (e.g. too few repeat buyers in it)
            return _walk_ladder(make, summary, _rungs(make))
        starts[penalizer] = start
        try:
            model = _model(make, penalizer, True, start).fit(summary)
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
    return _walk_ladder(make, summary, _rungs(make, lbfgs=False), starts, last)


def _rungs(make, lbfgs: bool = True) -> Iterator[tuple[float, bool]]:
    """(penalizer, L-BFGS-B only) in the order tried: with ``lbfgs``, every penalizer by
    L-BFGS-B alone; then every penalizer whose model has a Nelder-Mead fallback, with it."""
    if lbfgs:
        yield from ((p, True) for p in FALLBACK_PENALIZERS)
    yield from ((p, False) for p in FALLBACK_PENALIZERS if make(p).fallback_optimizer)


def _model(make, penalizer: float, lbfgs_only: bool, start: dict | None = None):
    model = make(penalizer)
    if lbfgs_only:
        model.set_params(fallback_optimizer=False)
    if start is not None:
        model.set_params(init_params=start)
    return model


def _walk_ladder(make, summary: pd.DataFrame, rungs, starts=None, last: Exception | None = None):
    """Fit each rung on all of ``summary`` until one converges."""
    for penalizer, lbfgs_only in rungs:
        model = _model(make, penalizer, lbfgs_only, (starts or {}).get(penalizer))
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
