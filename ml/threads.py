"""How many native threads (OpenMP, BLAS) the numeric libraries may use for a fit.

scikit-learn's histogram gradient boosting and K-Means, and NumPy's BLAS, start one
OpenMP thread per core. On small inputs the threads spend their time waiting for
each other, and when anything else runs on the machine (dbt, a second run, a
test suite) spinning threads make it far worse: measured on 800 customers on a
busy 2-core machine, the churn fit took 56.8 s with the default threads and 3.3 s
with one. Below ``SMALL_ROWS`` rows one thread is used; above it the default.
"""

from __future__ import annotations

import contextlib

from threadpoolctl import threadpool_limits

SMALL_ROWS = 50_000


def native_threads(n_rows: int) -> contextlib.AbstractContextManager:
    """A context in which fits on ``n_rows`` rows use a sensible number of native threads."""
    if n_rows < SMALL_ROWS:
        return threadpool_limits(limits=1)
    return contextlib.nullcontext()
