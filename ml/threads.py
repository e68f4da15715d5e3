"""How many native threads (OpenMP, BLAS) the numeric libraries may use for a fit.

scikit-learn's histogram gradient boosting and K-Means, and NumPy's BLAS, start one
OpenMP thread per core. On small inputs the threads spend their time waiting for
each other, and when anything else runs on the machine (dbt, a second run, a
test suite) spinning threads make it far worse: measured on 800 customers on a
busy 2-core machine, the churn fit took 56.8 s with the default threads and 3.3 s
with one. Below ``SMALL_ROWS`` rows one thread is used; above it the default.

Elementwise work gains nothing from more threads at any size: the BTYD likelihoods
(``ml.btyd``) are numpy/scipy elementwise code whose only threaded calls are BLAS
dot products, so they always fit under :func:`one_native_thread`. Measured on
1,000,000 simulated customers at load 2.5 to 2.9 on 2 cores (median of 3): BG/NBD
1.52 s -> 0.76 s, Gamma-Gamma 1.44 s -> 0.37 s.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import joblib
from threadpoolctl import threadpool_limits

SMALL_ROWS = 50_000

# Pipeline steps of this process running at once (share_cores): the executor runs
# model fits side by side (orchestration/executor.py). Each then takes its share of
# the cores: libgomp keeps a thread pool per calling thread, and with more pool
# threads than cores it stops spinning between parallel regions, which made a
# gradient boosting fit beside another thread's 2-thread pool 8x slower.
_steps_at_once = 1

_T = TypeVar("_T")
_R = TypeVar("_R")


def native_threads(n_rows: int) -> contextlib.AbstractContextManager:
    """A context in which fits on ``n_rows`` rows use a sensible number of native threads:
    one below ``SMALL_ROWS``; above, the default, or the fit's share of the cores while
    other steps of the process run (:func:`share_cores`)."""
    if n_rows < SMALL_ROWS:
        return threadpool_limits(limits=1)
    if _steps_at_once > 1:
        return threadpool_limits(limits=cores())
    return contextlib.nullcontext()


def threads_for_call(n_rows: int) -> contextlib.AbstractContextManager:
    """A context for one native call on ``n_rows`` rows, such as a prediction on many
    stacked matrices: its share of the cores (:func:`cores`) from ``SMALL_ROWS`` rows,
    else one.

    Unlike :func:`native_threads` it also raises the count inside a one-thread fit: a
    fit on a few thousand customers may score a million rows at once (permutation
    importance), which is one long call that every core shares without waiting.
    Not for work that already runs on one thread per core (:func:`in_parallel`).
    """
    return threadpool_limits(limits=cores() if n_rows >= SMALL_ROWS else 1)


def one_native_thread() -> contextlib.AbstractContextManager:
    """A context with one native (OpenMP, BLAS) thread, for elementwise work of any size."""
    return threadpool_limits(limits=1)


def share_cores(steps: int) -> None:
    """Tell the fits how many pipeline steps of this process run at once (the executor
    does, orchestration/executor.py): each then takes its share of the cores."""
    global _steps_at_once
    _steps_at_once = max(1, steps)


def cores() -> int:
    """The cores a fit may use: this process's (joblib's count: CPU affinity and cgroup
    quotas), shared among the steps running at once (:func:`share_cores`)."""
    return max(1, joblib.cpu_count() // _steps_at_once)


def in_parallel(
    work: Callable[[_T], _R], items: Sequence[_T], n_rows: int, min_rows: int | None = None
) -> list[_R]:
    """``[work(item) for item in items]``, on one thread per core from ``min_rows`` rows
    (default :data:`SMALL_ROWS`).

    For independent numpy, scipy and scikit-learn fits, which release the GIL. In
    parallel each thread gets one native thread and warnings are ignored: both are
    process-wide settings, set here once so that the work's own (thread-unsafe)
    changes of them start and end at the same values. Results keep the order of
    ``items`` and do not depend on which finishes first.
    """
    min_rows = SMALL_ROWS if min_rows is None else min_rows
    workers = min(cores(), len(items)) if n_rows >= min_rows else 1
    if workers < 2:
        return [work(item) for item in items]
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ThreadPoolExecutor(workers, thread_name_prefix="fit") as pool:
            return list(pool.map(work, items))
