"""MBG/NBD against the published CDNOW fit, and P(no purchase) of every purchase model."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from ml.btyd import (
    BetaGeoModel,
    BTYDConvergenceWarning,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    dropout_identification,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MASTER = DATA / "cdnow" / "CDNOW_master.txt"
CALIBRATION_END = pd.Timestamp("1997-10-01")

# /work/shared/data/README.md: lifetimes 0.11.3 on the master file, days.
REFERENCE_MBG = {"r": 0.637, "alpha": 51.17, "a": 0.808, "b": 1.228}


@pytest.fixture(scope="module")
def calibration_summary() -> pd.DataFrame:
    if not MASTER.exists():
        pytest.fail(f"missing shared data set {MASTER}")
    tx = pd.read_csv(MASTER, sep=r"\s+", dtype={"customer_id": str, "date": str})
    tx["day"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    days = tx.loc[tx["day"] < CALIBRATION_END, ["customer_id", "day"]].drop_duplicates()
    g = days.groupby("customer_id")["day"]
    last_day = CALIBRATION_END - pd.Timedelta(days=1)
    return pd.DataFrame(
        {
            "frequency": g.size() - 1,
            "recency": (g.max() - g.min()).dt.days,
            "T": (last_day - g.min()).dt.days,
        }
    )


def test_mbg_nbd_reproduces_the_cdnow_reference(calibration_summary: pd.DataFrame) -> None:
    assert len(calibration_summary) == 23570
    model = ModifiedBetaGeoModel().fit(calibration_summary)
    for name, value in REFERENCE_MBG.items():
        assert model.params_[name] == pytest.approx(value, rel=0.01), (name, model.params_)
    # one-time buyers are not all alive (the BG/NBD defect MBG/NBD removes)
    one_timers = calibration_summary[calibration_summary["frequency"] == 0]
    p = model.probability_alive(one_timers)
    assert p.max() < 1.0 and p.min() < 0.5


def _lifetimes_mbg(params: dict, x, tx, T, t):
    """lifetimes' ModifiedBetaGeoFitter formulas, written out independently."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    p_alive = 1.0 / (1.0 + (a / (b + x)) * ((alpha + T) / (alpha + tx)) ** (r + x))
    hyp = special.hyp2f1(r + x, b + x + 1, a + b + x, t / (alpha + T + t))
    cond = (a + b + x) / (a - 1) * (1 - hyp * ((alpha + T) / (alpha + t + T)) ** (r + x))
    uncond = (
        b
        / (a - 1)
        * (1 - special.hyp2f1(r, b + 1, a + b, t / (alpha + t)) * (alpha / (alpha + t)) ** r)
    )
    return p_alive, cond * p_alive, uncond


def test_mbg_nbd_forecasts_follow_the_published_formulas() -> None:
    params = {"r": 0.6, "alpha": 50.0, "a": 0.8, "b": 1.3}
    model = ModifiedBetaGeoModel.from_params(params)
    X = pd.DataFrame(
        {"frequency": [0, 0, 3, 12], "recency": [0, 0, 100, 300], "T": [10, 300, 200, 320]}
    )
    p_alive, cond, uncond = _lifetimes_mbg(params, *(X[c].to_numpy(float) for c in X), 90.0)
    np.testing.assert_allclose(model.probability_alive(X), p_alive, rtol=1e-10)
    np.testing.assert_allclose(model.conditional_expected_purchases(X, 90.0), cond, rtol=1e-8)
    np.testing.assert_allclose(model.expected_purchases(90.0), uncond, rtol=1e-8)


def test_probability_no_purchase_of_a_new_customer_is_closed_form() -> None:
    new = pd.DataFrame({"frequency": [0], "recency": [0], "T": [0]})
    r, alpha, a, b, t = 0.6, 50.0, 0.8, 1.3, 120.0
    mbg = ModifiedBetaGeoModel.from_params({"r": r, "alpha": alpha, "a": a, "b": b})
    # dropout at time 0 with probability p ~ Beta(a, b), else a Poisson gap longer than t
    expected = a / (a + b) + b / (a + b) * (alpha / (alpha + t)) ** r
    assert mbg.probability_no_purchase(new, t)[0] == pytest.approx(expected, rel=1e-12)
    bg = BetaGeoModel.from_params({"r": r, "alpha": alpha, "a": a, "b": b})
    assert bg.probability_no_purchase(new, t)[0] == pytest.approx((alpha / (alpha + t)) ** r)


@pytest.mark.parametrize("x,tx,T", [(0, 0, 0), (0, 0, 200), (4, 150, 200), (30, 190, 200)])
def test_pareto_nbd_probability_no_purchase_matches_simulation(x, tx, T) -> None:
    params = {"r": 0.6, "alpha": 80.0, "s": 0.5, "beta": 60.0}
    model = ParetoNBDModel.from_params(params)
    X = pd.DataFrame({"frequency": [x], "recency": [tx], "T": [T]})
    t = 273.0
    # alive at T: lambda ~ Gamma(r+x, alpha+T), mu ~ Gamma(s, beta+T); no purchase
    # before min(lifetime, t), simulated
    rng = np.random.default_rng(0)
    n = 2_000_000
    lam = rng.gamma(params["r"] + x, 1.0 / (params["alpha"] + T), n)
    mu = rng.gamma(params["s"], 1.0 / (params["beta"] + T), n)
    life = rng.exponential(1.0 / mu)
    first = rng.exponential(1.0 / lam)
    none_if_alive = np.mean(first > np.minimum(life, t))
    p_alive = model.probability_alive(X)[0]
    expected = 1 - p_alive + p_alive * none_if_alive
    assert model.probability_no_purchase(X, t)[0] == pytest.approx(expected, abs=2e-3)


def simulate_never_leaving(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Customers who buy at a Gamma-distributed Poisson rate and never drop out."""
    rng = np.random.default_rng(seed)
    T = rng.integers(200, 400, n).astype(float)
    lam = rng.gamma(2.0, 1.0 / 60.0, n)
    rows = []
    for rate, end in zip(lam, T, strict=True):
        times = np.cumsum(rng.exponential(1.0 / rate, 60))
        times = np.floor(times[times <= end])
        times = np.unique(times)
        rows.append((len(times), times[-1] if len(times) else 0.0, end))
    return pd.DataFrame(rows, columns=["frequency", "recency", "T"])


@pytest.mark.parametrize("model_class", [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel])
def test_dropout_is_not_identified_when_nobody_leaves(model_class) -> None:
    summary = simulate_never_leaving()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BTYDConvergenceWarning)
        model = model_class().fit(summary)
    verdict = dropout_identification(model, summary)
    assert not verdict.identified
    assert "cannot tell which customers have stopped buying" in verdict.reason


@pytest.mark.parametrize("model_class", [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel])
def test_dropout_is_identified_on_cdnow(model_class, calibration_summary) -> None:
    model = model_class().fit(calibration_summary)
    verdict = dropout_identification(model, calibration_summary)
    assert verdict.identified, verdict.reason
    assert verdict.reason == ""


def test_pareto_nbd_vectorised_a0_matches_adaptive_quadrature():
    """The fixed-node log A0 used for rows where 2F1 fails, against scipy's adaptive quad."""
    from ml.btyd.pareto_nbd import _log_a0_gauss

    rng = np.random.default_rng(7)
    for _ in range(200):
        r, alpha, s, beta = (
            rng.uniform(0.1, 3),
            rng.uniform(1, 200),
            rng.uniform(0.05, 3),
            rng.uniform(1, 200),
        )
        x, T = float(rng.integers(0, 300)), rng.uniform(10, 800)
        tx = T * rng.uniform(0, 0.999)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quad warns about round-off on steep cases
            expected = _log_a0_quadrature(r, alpha, s, beta, x, tx, T)
        got = _log_a0_gauss(r, alpha, s, beta, np.array([x]), np.array([tx]), np.array([T]))[0]
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


def _log_a0_quadrature(
    r: float, alpha: float, s: float, beta: float, x: float, tx: float, T: float
) -> float:
    """log A0 of the Pareto/NBD likelihood by adaptive quadrature (one customer).

    ``A0 = (r+s+x) * int_tx^T (alpha+y)^-(r+x) (beta+y)^-(s+1) dy``. With
    ``k = r+s+x`` and ``rho = ((alpha+y)/(alpha+tx))^-k`` this is
    ``(alpha+tx)^-k * int_rhoT^1 (1 + c rho^(1/k))^-(s+1) d rho`` with
    ``c = (beta-alpha)/(alpha+tx)``: the steep factor is absorbed by the change of
    variable and the remaining integrand is smooth and bounded.
    """
    k = r + s + x
    c = (beta - alpha) / (alpha + tx)
    rho_T = np.exp(-k * (np.log(alpha + T) - np.log(alpha + tx)))

    def log_h(rho: float) -> float:
        return -(s + 1.0) * np.log1p(c * rho ** (1.0 / k))

    shift = max(log_h(rho_T), log_h(1.0))  # h is monotone in rho
    value, _ = integrate.quad(
        lambda rho: np.exp(log_h(rho) - shift), rho_T, 1.0, epsabs=0.0, epsrel=1e-11, limit=200
    )
    with np.errstate(divide="ignore"):
        return float(-k * np.log(alpha + tx) + shift + np.log(value))


@pytest.mark.parametrize(
    "params", [(0.6, 92.0, 0.3, 35.0), (2.0, 10.0, 3.0, 200.0), (0.1, 500.0, 0.05, 5.0)]
)
def test_pareto_nbd_gradient_matches_finite_differences(params):
    """The analytic gradient of the total log-likelihood (through the quadrature nodes),
    against central differences of the likelihood itself."""
    rng = np.random.default_rng(3)
    n = 400
    T = rng.integers(30, 600, n).astype(float)
    x = rng.poisson(2.0, n).astype(float)
    tx = np.where(x > 0, np.floor(T * rng.uniform(0, 1, n)), 0.0)
    model = ParetoNBDModel()
    data = model._prepare(pd.DataFrame({"frequency": x, "recency": tx, "T": T}), None)
    p = np.asarray(params)
    _, grad = model._loglik(p, data, gradient=True)

    def total(q):
        return float(np.dot(data["weights"], model._loglik(q, data, gradient=False)[0]))

    for i in range(4):
        h = 1e-6 * p[i]
        step = np.zeros(4)
        step[i] = h
        numeric = (total(p + step) - total(p - step)) / (2 * h)
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-4), i
