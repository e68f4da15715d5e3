"""The retry policy of the steps whose failures can be transient (ingest, export).

Dagster's ``RetryPolicy`` retries whatever the step raises, so the step body runs
inside :func:`retry_only_if`: a transient error (``orchestration/io/transient.py``)
reaches the policy and the step is tried again after 10 s, then 20 s; anything else
becomes a ``dg.Failure`` that allows no retry, so a wrong password or a bad file
fails the run at once with the message it always had (the original error is its
cause).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg

# Linear: Dagster waits delay * n before retry n (10 s, 20 s); its exponential backoff
# waits (2**n - 1) * delay, i.e. 10 s and then 30 s.
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.LINEAR)


@contextmanager
def retry_only_if(is_transient: Callable[[BaseException], bool]) -> Iterator[None]:
    try:
        yield
    except (dg.Failure, dg.RetryRequested):
        raise
    except Exception as exc:
        if is_transient(exc):
            raise
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
