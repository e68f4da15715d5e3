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


def _wait_policy_after_import(module: str, preset: str | None) -> str:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = f"import {module}, os; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_openmp_threads_sleep_while_waiting_unless_the_user_says_otherwise():
    assert _wait_policy_after_import("ml", None) == "PASSIVE"
    assert _wait_policy_after_import("orchestration", None) == "PASSIVE"
    assert _wait_policy_after_import("ml", "ACTIVE") == "ACTIVE"


def test_btyd_likelihoods_are_evaluated_with_one_native_thread(monkeypatch):
    import numpy as np
    import pytest

    from ml.btyd import BetaGeoModel

    if _max_threads() == 1:
        pytest.skip("one native thread already: nothing to tell apart")
    seen: list[int] = []
    loglik = BetaGeoModel._loglik

    def spy(self, params, data, gradient):
        seen.append(_max_threads())
        return loglik(self, params, data, gradient)

    monkeypatch.setattr(BetaGeoModel, "_loglik", spy)
    rng = np.random.default_rng(0)
    T = rng.integers(30, 400, 300).astype(float)
    x = rng.poisson(T / 60).astype(float)
    X = np.column_stack([x, np.where(x > 0, np.floor(rng.random(300) * T), 0.0), T])
    BetaGeoModel().fit(X)
    assert seen and set(seen) == {1}
