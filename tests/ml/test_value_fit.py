"""ml/fitting.py::fit_with_fallback: the penalizer ladder is walked by L-BFGS-B before any
Nelder-Mead, on a sample when the data are large, and all rows are fitted once,
warm-started, by L-BFGS-B only (no Nelder-Mead over all rows)."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd
import pytest

from ml.btyd import BetaGeoModel, BTYDConvergenceError, BTYDConvergenceWarning, GammaGammaModel
from ml.fitting import FALLBACK_PENALIZERS, fit_with_fallback

PROBE = 1_000  # probe_rows in these tests: the data sets have several times more rows


def _bgnbd(n: int, seed: int) -> pd.DataFrame:
    """BG/NBD customers (r 0.5, alpha 20 d, a 0.75, b 2.2) in whole days, with spend."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.5, 1 / 20.0, n)
    drop = rng.beta(0.75, 2.2, n)
    T = rng.integers(1, 731, n).astype(float)
    t, x, tx = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.arange(n)
    while active.size:
        t[active] += rng.exponential(1.0 / lam[active])
        day = np.ceil(t[active])
        seen = day <= T[active]
        x[active[seen]] += 1
        tx[active[seen]] = day[seen]
        active = active[seen & (rng.random(active.size) >= drop[active])]
    nu = rng.gamma(3.7, 1 / 15.0, n)
    spend = rng.gamma(np.maximum(6.0 * x, 1e-12), 1 / nu) / np.maximum(x, 1)
    return pd.DataFrame(
        {"frequency": x, "recency": tx, "T": T, "monetary_value": np.where(x > 0, spend, 0.0)}
    )


def _counting(base, fits: list, fail_below: float = 0.0, lbfgs_fails: bool = False):
    """``make(penalizer)`` for a subclass of ``base`` that records every fit and raises
    BTYDConvergenceError below the penalizer ``fail_below`` (a stand-in for data whose
    likelihood runs off to infinity) and, with ``lbfgs_fails``, whenever it may not fall
    back to Nelder-Mead (a stand-in for a likelihood L-BFGS-B cannot climb)."""

    class Counting(base):
        def fit(self, X, y=None, sample_weight=None):
            fits.append(
                {
                    "rows": len(X),
                    "penalizer": self.penalizer,
                    "init_params": self.init_params,
                    "fallback_optimizer": self.fallback_optimizer,
                }
            )
            if self.penalizer < fail_below:
                raise BTYDConvergenceError("forced: no finite optimum")
            if lbfgs_fails and not self.fallback_optimizer:
                raise BTYDConvergenceError("forced: L-BFGS-B failed")
            return super().fit(X, y, sample_weight)

    return lambda pen: Counting(penalizer=pen)


def test_ladder_runs_on_the_sample_and_all_rows_are_fitted_once():
    X = _bgnbd(4_000, seed=0)
    fits: list = []
    with pytest.warns(BTYDConvergenceWarning, match="fitted with penalizer=0.0001"):
        model = fit_with_fallback(_counting(BetaGeoModel, fits, 1e-4), X, probe_rows=PROBE)
    assert model.penalizer == 1e-4
    assert [(f["rows"], f["penalizer"]) for f in fits] == [
        (PROBE, 0.0),
        (PROBE, 1e-6),
        (PROBE, 1e-4),
        (len(X), 1e-4),
    ]
    full = fits[-1]
    assert full["fallback_optimizer"] is False  # L-BFGS-B only on all rows
    assert full["init_params"] is not None and set(full["init_params"]) == {"r", "alpha", "a", "b"}
    assert model.optimizer_ == "L-BFGS-B"


def test_converging_data_need_one_sample_fit_and_one_full_fit():
    X = _bgnbd(4_000, seed=1)
    fits: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", BTYDConvergenceWarning)  # nothing to warn about
        fit_with_fallback(_counting(GammaGammaModel, fits), X, probe_rows=PROBE)
    assert [(f["rows"], f["penalizer"]) for f in fits] == [(PROBE, 0.0), (len(X), 0.0)]


@pytest.mark.parametrize("n", [600, 2 * PROBE])
def test_small_data_are_fitted_directly(n):
    # up to twice probe_rows a sample would cost about as much as the data
    X = _bgnbd(n, seed=2)
    fits: list = []
    model = fit_with_fallback(_counting(BetaGeoModel, fits), X, probe_rows=PROBE)
    assert [(f["rows"], f["init_params"]) for f in fits] == [(len(X), None)]
    assert model.params_ == BetaGeoModel().fit(X).params_


def test_the_ladder_is_walked_by_lbfgs_before_any_nelder_mead():
    # no Nelder-Mead at penalizer 0 when a penalised L-BFGS-B fit converges: on data
    # with no finite optimum it spends its whole budget and fails too
    X = _bgnbd(1_500, seed=4)
    fits: list = []
    with pytest.warns(BTYDConvergenceWarning, match="fitted with penalizer=1e-06"):
        model = fit_with_fallback(_counting(BetaGeoModel, fits, 1e-6), X, probe_rows=PROBE)
    assert [(f["penalizer"], f["fallback_optimizer"]) for f in fits] == [
        (0.0, False),
        (1e-6, False),
    ]
    assert model.penalizer == 1e-6 and model.optimizer_ == "L-BFGS-B"


@pytest.mark.parametrize("n", [1_500, 4_000])  # all rows, and a sample then all rows
def test_nelder_mead_runs_only_when_lbfgs_failed_at_every_penalizer(n):
    X = _bgnbd(n, seed=5)
    fits: list = []
    model = fit_with_fallback(_counting(BetaGeoModel, fits, lbfgs_fails=True), X, probe_rows=PROBE)
    tried = [(f["penalizer"], f["fallback_optimizer"]) for f in fits]
    lbfgs = [(p, False) for p in FALLBACK_PENALIZERS]
    assert tried[: len(FALLBACK_PENALIZERS)] == lbfgs
    assert tried[len(FALLBACK_PENALIZERS)] == (0.0, True)
    assert model.penalizer == 0.0  # the unpenalised fit, by the fallback


@pytest.mark.parametrize(
    ("make", "spend"),
    [
        (lambda pen: BetaGeoModel(time_unit="days", penalizer=pen), False),
        (lambda pen: GammaGammaModel(penalizer=pen, fallback_optimizer=pen > 0), True),
    ],
)
def test_warm_started_fit_equals_a_direct_full_fit(make, spend):
    X = _bgnbd(8_000, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BTYDConvergenceWarning)
        model = fit_with_fallback(make, X, probe_rows=PROBE)
        direct = make(0.0).fit(X)
    assert model.penalizer == 0.0 and model.n_customers_ == direct.n_customers_
    for name, value in direct.params_.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-4), name
    assert model.log_likelihood_ == pytest.approx(direct.log_likelihood_, rel=1e-9)


def _no_spend_variation(n: int, seed: int) -> pd.DataFrame:
    """Mean spends 1/Gamma across customers and equal for every purchase of a customer: the
    Gamma-Gamma likelihood grows as p -> infinity (each purchase's spend has no variance)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "frequency": rng.integers(1, 12, n).astype(float),
            "monetary_value": 100.0 / rng.gamma(4.0, 1.0, n),
        }
    )


def test_non_converging_data_get_a_penalised_fit_and_a_warning():
    X = _no_spend_variation(4_000, seed=0)

    def make(pen):
        return GammaGammaModel(penalizer=pen, fallback_optimizer=pen > 0)  # as fit_value_models

    # premise: the unpenalised fit has no answer on these data: on the sample it fails;
    # on all rows it fails too, or (by the CPU's last bits: seen on AVX-512) L-BFGS-B
    # stops with p on the search bound exp(20), which is no estimate either
    with pytest.raises(BTYDConvergenceError), warnings.catch_warnings():
        warnings.simplefilter("ignore", BTYDConvergenceWarning)
        make(0.0).fit(X.sample(PROBE, random_state=0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            make(0.0).fit(X)
        except BTYDConvergenceError:
            pass  # no answer
        else:  # an answer on the bound, said so
            assert any("ended on the search bound" in str(w.message) for w in caught)
    with pytest.warns(BTYDConvergenceWarning, match="did not converge without a penalty"):
        model = fit_with_fallback(make, X, probe_rows=PROBE)
    assert model.penalizer in FALLBACK_PENALIZERS[1:]
    assert model.optimizer_ == "L-BFGS-B" and model.init_params is not None
    assert all(np.isfinite(v) and v < 1e6 for v in model.params_.values())
    # the answer is the penalised MLE on all rows, whatever the start
    direct = make(model.penalizer).fit(X)
    for name, value in direct.params_.items():
        assert model.params_[name] == pytest.approx(value, rel=1e-3), name


def test_gamma_gamma_that_needed_a_penalty_is_not_trusted_whoever_changes_the_warnings():
    from ml.spend import fit_gamma_gamma

    X = _no_spend_variation(4_000, seed=0)
    stop = threading.Event()

    def meddle():  # another step's fits, entering and leaving their own warning filters
        while not stop.is_set():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")

    other = threading.Thread(target=meddle)
    other.start()
    try:
        outcomes = {fit_gamma_gamma(X)[1] for _ in range(3)}
    finally:
        stop.set()
        other.join()
    assert outcomes == {
        "Gamma-Gamma has no finite maximum-likelihood optimum (it needed a penalty)"
    }
