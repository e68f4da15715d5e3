"""Native thread limits for small fits (ml/threads.py)."""

import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime, so its pool is listed)
from threadpoolctl import threadpool_info

from ml.threads import SMALL_ROWS, native_threads


def _max_threads() -> int:
    return max(pool["num_threads"] for pool in threadpool_info())


def test_small_inputs_use_one_native_thread():
    before = _max_threads()
    with native_threads(800):
        assert _max_threads() == 1
    assert _max_threads() == before


def test_large_inputs_keep_the_default_threads():
    before = _max_threads()
    with native_threads(SMALL_ROWS):
        assert _max_threads() == before
