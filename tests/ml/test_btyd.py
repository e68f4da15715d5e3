"""Tests for ml.btyd: published CDNOW results, hand-derived values, edge cases.

Reference values are from Fader, Hardie & Lee (2005, BG/NBD), Fader & Hardie's notes
on the Pareto/NBD and Gamma-Gamma models, and the CDNOW data (README in
../shared/data); the rest are derived by hand or from the models' definitions.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize
from scipy.stats import spearmanr
from sklearn.base import clone

from ml import btyd
from ml.btyd import (
    BetaGeoModel,
    BTYDConvergenceError,
    BTYDConvergenceWarning,
    GammaGammaModel,
    ParetoNBDModel,
    customer_lifetime_value,
    summary_from_customer_features,
)
from tests.ml.btyd_data import summary_from_transactions

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CDNOW = DATA / "cdnow"

PAPER_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_PARETO = {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}
PAPER_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def _within(fitted: dict, published: dict, rel: float) -> None:
    for name, value in published.items():
        assert fitted[name] == pytest.approx(value, rel=rel), (name, fitted[name], value)


# --------------------------------------------------------------------------- #
# CDNOW data
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def cdnow_summary() -> pd.DataFrame:
    path = CDNOW / "cdnow_customers_summary.csv"
    if not path.exists():
        pytest.fail(f"missing shared data set {path}")
    return pd.read_csv(path)


@pytest.fixture(scope="module")
def cdnow_sample() -> pd.DataFrame:
    return pd.read_csv(
        CDNOW / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["customer_id", "master_id", "date", "n_cds", "dollars"],
        dtype={"date": str},
    )


@pytest.fixture(scope="module")
def cdnow_holdout(cdnow_sample: pd.DataFrame) -> pd.DataFrame:
    """Calibration to 1997-09-30, holdout to 1998-06-30, customer-days, weeks."""
    return summary_from_transactions(
        cdnow_sample, "customer_id", "date", "dollars", "1997-09-30", "1998-06-30", freq_days=7
    )


def test_summary_from_transactions_reproduces_the_published_cdnow_summary(
    cdnow_holdout: pd.DataFrame, cdnow_summary: pd.DataFrame
) -> None:
    assert len(cdnow_holdout) == 2357
    ours = cdnow_holdout[["frequency", "recency", "T"]].round(2)
    ours = ours.sort_values(["frequency", "recency", "T"]).to_numpy()
    theirs = cdnow_summary[["frequency", "recency", "T"]]
    theirs = theirs.sort_values(["frequency", "recency", "T"]).to_numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-9)
    # README: 1,411 customers without a repeat purchase; issue: 2,457 / 1,882 repeat purchases
    assert (cdnow_holdout["frequency"] == 0).sum() == 1411
    assert cdnow_holdout["frequency"].sum() == 2457
    assert cdnow_holdout["frequency_holdout"].sum() == 1882
    assert (cdnow_holdout["duration_holdout"] == 39).all()


def test_bgnbd_fit_reproduces_published_cdnow_parameters(cdnow_summary: pd.DataFrame) -> None:
    model = BetaGeoModel(time_unit="weeks").fit(cdnow_summary)
    _within(model.params_, PAPER_BGNBD, rel=0.01)
    assert model.converged_ and model.optimizer_ == "L-BFGS-B"
    assert model.n_customers_ == 2357
    # identical rows are evaluated once
    assert model.n_distinct_rows_ < 2357


def test_pareto_nbd_fit_reproduces_published_cdnow_parameters(cdnow_summary: pd.DataFrame) -> None:
    model = ParetoNBDModel(time_unit="weeks").fit(cdnow_summary)
    _within(model.params_, PAPER_PARETO, rel=0.01)


def test_gamma_gamma_fit_reproduces_published_cdnow_parameters(
    cdnow_holdout: pd.DataFrame,
) -> None:
    repeat = cdnow_holdout[cdnow_holdout["frequency"] > 0]
    # README: 946 repeat buyers, mean spend $35, sd 30, min 3, max 300
    assert len(repeat) == 946
    assert repeat["monetary_value"].mean() == pytest.approx(35, abs=0.5)
    assert repeat["monetary_value"].std() == pytest.approx(30, abs=0.5)
    assert repeat["monetary_value"].min() == pytest.approx(3, abs=0.5)
    assert repeat["monetary_value"].max() == pytest.approx(300, abs=0.5)
    model = GammaGammaModel().fit(cdnow_holdout)  # one-timers are left out by the model
    _within(model.params_, PAPER_GG, rel=0.01)
    assert model.n_customers_ == 946


def test_bgnbd_expected_purchases_match_the_paper(cdnow_summary) -> None:
    # The paper's E[X(t)] come from the unrounded estimates: with the 3-4 digit
    # published parameters E[X(78)] is 1.8605, outside +-0.001, so fit first.
    model = BetaGeoModel(time_unit="weeks").fit(cdnow_summary)
    expected = model.expected_purchases([1, 3, 32, 78])
    np.testing.assert_allclose(expected, [0.0532, 0.1506, 1.0437, 1.8576], atol=0.001)
    one = {"frequency": [2], "recency": [30.43], "T": [38.86]}
    assert model.conditional_expected_purchases(one, 39)[0] == pytest.approx(1.226, abs=0.002)
    published = BetaGeoModel.from_params(PAPER_BGNBD, time_unit="weeks")
    assert published.conditional_expected_purchases(one, 39)[0] == pytest.approx(1.226, abs=0.002)


def test_bgnbd_holdout_forecast_matches_the_paper(cdnow_holdout: pd.DataFrame) -> None:
    model = BetaGeoModel.from_params(PAPER_BGNBD, time_unit="weeks")
    conditional = model.conditional_expected_purchases(cdnow_holdout, 39)
    # cumulative repeat purchases of the cohort from each first purchase to 1998-06-30
    cumulative = model.expected_purchases(cdnow_holdout["T"] + 39).sum()
    actual_cal = cdnow_holdout["frequency"].sum()
    actual_hold = cdnow_holdout["frequency_holdout"].sum()
    rho = spearmanr(conditional, cdnow_holdout["frequency_holdout"]).statistic
    print(
        f"\nCDNOW holdout (weeks): conditional expected {conditional.sum():.1f} vs actual "
        f"{actual_hold} (paper 1,653); cumulative forecast {cumulative:.1f} vs actual "
        f"{actual_cal + actual_hold} (paper 4,161); Spearman rho {rho:.3f}"
    )
    assert conditional.sum() == pytest.approx(1653, rel=0.01)
    assert cumulative == pytest.approx(4161, rel=0.01)
    assert actual_cal + actual_hold == 4339
    assert rho >= 0.44


# --------------------------------------------------------------------------- #
# hand-derived values and the models' definitions
# --------------------------------------------------------------------------- #
def _bgnbd_likelihood_direct(p: dict, x: int, tx: float, T: float) -> float:
    """Equation (6) of Fader, Hardie & Lee (2005), evaluated without logs."""
    r, alpha, a, b = p["r"], p["alpha"], p["a"], p["b"]
    beta = math.gamma(a) * math.gamma(b) / math.gamma(a + b)
    base = math.gamma(r + x) * alpha**r / math.gamma(r)
    first = math.gamma(a) * math.gamma(b + x) / math.gamma(a + b + x) / beta
    value = first * base / (alpha + T) ** (r + x)
    if x > 0:
        second = math.gamma(a + 1) * math.gamma(b + x - 1) / math.gamma(a + b + x) / beta
        value += second * base / (alpha + tx) ** (r + x)
    return value


def test_bgnbd_log_likelihood_equals_the_closed_form() -> None:
    p = {"r": 0.7, "alpha": 3.0, "a": 1.3, "b": 2.1}
    rows = [(0, 0.0, 6.0), (1, 2.0, 6.0), (4, 5.5, 6.0), (9, 9.0, 9.0)]
    model = BetaGeoModel.from_params(p)
    ours = model.log_likelihood(np.array(rows, dtype=float))
    direct = [math.log(_bgnbd_likelihood_direct(p, *row)) for row in rows]
    np.testing.assert_allclose(ours, direct, rtol=1e-12)
    # x = 0 by hand: (alpha / (alpha + T)) ** r
    assert ours[0] == pytest.approx(0.7 * math.log(3 / 9), rel=1e-12)


def test_bgnbd_probability_alive_by_hand() -> None:
    model = BetaGeoModel.from_params({"r": 1.0, "alpha": 1.0, "a": 1.0, "b": 2.0})
    # 1 / (1 + a/(b+x-1) * ((alpha+T)/(alpha+tx))**(r+x)) = 1 / (1 + 1/2 * 2**2) = 1/3
    p = model.probability_alive(np.array([[1, 1.0, 3.0], [0, 0.0, 3.0]]))
    np.testing.assert_allclose(p, [1 / 3, 1.0], rtol=1e-12)
    # P(no purchase in t) for a one-timer = ((alpha+T)/(alpha+T+t))**r = 4/6
    none = model.probability_no_purchase(np.array([[0, 0.0, 3.0]]), 2.0)
    assert none[0] == pytest.approx(4 / 6, rel=1e-12)


def test_bgnbd_without_dropout_is_the_nbd() -> None:
    # p ~ Beta(2, 1e7) is ~0: E[X(t)] -> r t / alpha (negative binomial distribution)
    model = BetaGeoModel.from_params({"r": 0.5, "alpha": 10.0, "a": 2.0, "b": 1e7})
    np.testing.assert_allclose(model.expected_purchases([1.0, 20.0]), [0.05, 1.0], rtol=1e-4)
    # at the start every customer buys at the mean rate r / alpha
    paper = BetaGeoModel.from_params(PAPER_BGNBD)
    t = 1e-6
    assert paper.expected_purchases(t) / t == pytest.approx(0.243 / 4.414, rel=1e-5)


def test_bgnbd_expected_purchases_near_a_equal_one_is_finite() -> None:
    # (a+b-1)/(a-1) * [...] has a removable singularity at a = 1
    near = BetaGeoModel.from_params({"r": 0.5, "alpha": 5.0, "a": 1.0, "b": 3.0})
    below = BetaGeoModel.from_params({"r": 0.5, "alpha": 5.0, "a": 1.0 - 1e-4, "b": 3.0})
    above = BetaGeoModel.from_params({"r": 0.5, "alpha": 5.0, "a": 1.0 + 1e-4, "b": 3.0})
    e = near.expected_purchases(10.0)
    assert np.isfinite(e)
    assert below.expected_purchases(10.0) > e > above.expected_purchases(10.0)


def _pareto_log_likelihood_by_integration(p: dict, x: float, tx: float, T: float) -> float:
    """Pareto/NBD likelihood from its definition: alive at T, or dropout at y in (tx, T).

    L = G(r+x) a^r b^s / G(r) [ (a+T)^-(r+x) (b+T)^-s + s int_tx^T (a+y)^-(r+x) (b+y)^-(s+1) dy ]
    (Gamma mixtures of the Poisson and exponential likelihoods); the integral is
    scaled by its value at y = tx to avoid underflow.
    """
    r, a, s, b = p["r"], p["alpha"], p["s"], p["beta"]

    def log_f(y: float) -> float:
        return -(r + x) * math.log(a + y) - (s + 1) * math.log(b + y)

    peak = log_f(tx)
    width = (a + tx) / (r + x + s + 1)  # scale on which the integrand decays
    points = [tx + width * k for k in (0.5, 2, 8, 32) if tx + width * k < T]
    integral, _ = integrate.quad(
        lambda y: math.exp(log_f(y) - peak), tx, T, points=points, epsabs=0, epsrel=1e-12, limit=500
    )
    alive = -(r + x) * math.log(a + T) - s * math.log(b + T)
    tail = math.log(s) + peak + math.log(integral) if integral > 0 else -math.inf
    head = math.lgamma(r + x) - math.lgamma(r) + r * math.log(a) + s * math.log(b)
    return head + np.logaddexp(alive, tail)


@pytest.mark.parametrize(
    "params",
    [
        PAPER_PARETO,  # alpha < beta
        {"r": 0.8, "alpha": 30.0, "s": 1.7, "beta": 5.0},  # alpha > beta
        {"r": 2.0, "alpha": 1.0, "s": 0.1, "beta": 5000.0},  # extreme ratio (quadrature path)
        {"r": 0.05, "alpha": 3000.0, "s": 3.0, "beta": 1.0},
    ],
)
def test_pareto_nbd_log_likelihood_equals_its_definition(params: dict) -> None:
    rows = np.array(
        [
            [0, 0.0, 50.0],
            [1, 3.0, 40.0],
            [5, 3.0, 3.0],  # last purchase at the end of observation
            [30, 200.0, 260.0],
            [300, 300.0, 400.0],  # heavy buyers: scipy's 2F1 fails, quadrature takes over
            [1000, 1000.0, 1200.0],
            [100, 100.0, 5000.0],
        ]
    )
    ours = ParetoNBDModel.from_params(params).log_likelihood(rows)
    reference = [_pareto_log_likelihood_by_integration(params, *row) for row in rows]
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, reference, rtol=1e-7, atol=1e-7)


def test_pareto_nbd_expectations_by_hand() -> None:
    # s = 1: E[X(t)] = r beta / alpha * ln(1 + t / beta) (limit of the s != 1 formula)
    model = ParetoNBDModel.from_params({"r": 2.0, "alpha": 4.0, "s": 1.0, "beta": 10.0})
    assert model.expected_purchases(10.0) == pytest.approx(5 * math.log(2), rel=1e-12)
    # s = 2: r beta / (alpha (s-1)) * (1 - beta/(beta+t)) = 2*10/4 * (1 - 1/2) = 2.5
    model = ParetoNBDModel.from_params({"r": 2.0, "alpha": 4.0, "s": 2.0, "beta": 10.0})
    assert model.expected_purchases(10.0) == pytest.approx(2.5, rel=1e-12)
    # a purchase at T means alive at T
    assert model.probability_alive(np.array([[3, 8.0, 8.0]]))[0] == pytest.approx(1.0)
    # conditional for a one-timer observed for T: (r)(beta+T)/((alpha+T)(s-1)) (1 - (beta+T)/(beta+T+t)) P(alive)
    T, t = 6.0, 16.0
    p_alive = model.probability_alive(np.array([[0, 0.0, T]]))[0]
    hand = 2 * 16 / 10 * (1 - 16 / 32) * p_alive
    assert model.conditional_expected_purchases(np.array([[0, 0.0, T]]), t)[0] == pytest.approx(
        hand, rel=1e-12
    )
    # P(alive) of a one-timer: 1 / (1 + s/(r+s) (alpha+T)^r (beta+T)^s A0); here A0 = 0 iff T = 0
    assert 0 < p_alive < 1


def test_pareto_nbd_results_do_not_depend_on_blocks_or_repeated_histories(monkeypatch) -> None:
    """The quadratures run in blocks of customers, once per distinct history: every row
    equals the row computed alone, in the likelihood's gradient too."""
    from ml.btyd import pareto_nbd

    rng = np.random.default_rng(3)
    T = rng.choice([30.0, 90.0, 365.0], 700)
    x = rng.integers(0, 6, 700)
    tx = np.where(x > 0, np.floor(rng.uniform(0, 1, 700) * 10) * T / 10, 0.0)  # many repeats
    rows = np.column_stack([x, tx, T])
    assert len(np.unique(rows, axis=0)) < len(rows) / 2
    model = ParetoNBDModel.from_params(PAPER_PARETO)
    monkeypatch.setattr(pareto_nbd, "_BLOCK_ROWS", 64)  # 11 blocks, the last partial
    alone = [model.probability_alive(row[None, :])[0] for row in rows]
    np.testing.assert_array_equal(model.probability_alive(rows), alone)
    expected = [model.conditional_expected_purchases(row[None, :], 30.0)[0] for row in rows]
    np.testing.assert_array_equal(model.conditional_expected_purchases(rows, 30.0), expected)
    none = [model.probability_no_purchase(row[None, :], 30.0)[0] for row in rows]
    np.testing.assert_array_equal(model.probability_no_purchase(rows, 30.0), none)
    data = model._prepare(rows, None)
    params = np.array([PAPER_PARETO[k] for k in ("r", "alpha", "s", "beta")])
    ll, grad = model._loglik(params, data, gradient=True)
    monkeypatch.setattr(pareto_nbd, "_BLOCK_ROWS", len(rows))
    np.testing.assert_array_equal(ll, model._loglik(params, data, gradient=True)[0])
    np.testing.assert_array_equal(grad, model._loglik(params, data, gradient=True)[1])


def test_gamma_gamma_by_hand() -> None:
    model = GammaGammaModel.from_params({"p": 6.0, "q": 4.0, "gamma": 15.0})
    X = pd.DataFrame({"frequency": [2, 0, 3, 1], "monetary_value": [50.0, 0.0, -10.0, 0.0]})
    spend = model.conditional_expected_average_spend(X)
    # p (gamma + x m) / (p x + q - 1) = 6 * 115 / 15 = 46; population mean 6 * 15 / 3 = 30
    np.testing.assert_allclose(spend, [46.0, 30.0, 30.0, 30.0], rtol=1e-12)
    assert model.population_mean_spend() == pytest.approx(30.0)
    ll = model.log_likelihood(pd.DataFrame({"frequency": [2], "monetary_value": [50.0]}))
    # density of the mean of x Gamma(p, nu) spends with nu ~ Gamma(q, gamma)
    p, q, g, x, m = 6.0, 4.0, 15.0, 2.0, 50.0
    hand = (
        math.lgamma(p * x + q)
        - math.lgamma(p * x)
        - math.lgamma(q)
        + q * math.log(g)
        + (p * x - 1) * math.log(m)
        + p * x * math.log(x)
        - (p * x + q) * math.log(g + m * x)
    )
    assert ll[0] == pytest.approx(hand, rel=1e-12)


def test_customer_lifetime_value_by_hand() -> None:
    bg = BetaGeoModel.from_params(PAPER_BGNBD, time_unit="weeks")
    gg = GammaGammaModel.from_params(PAPER_GG)
    X = pd.DataFrame(
        {
            "frequency": [2, 0],
            "recency": [30.43, 0.0],
            "T": [38.86, 38.86],
            "monetary_value": [40.0, 0],
        }
    )
    spend = gg.conditional_expected_average_spend(X)
    e52 = bg.conditional_expected_purchases(X, 52)
    e26 = bg.conditional_expected_purchases(X, 26)
    # no discounting: expected purchases times expected spend
    clv0 = customer_lifetime_value(bg, gg, X, horizon=52, discount_rate=0.0, discount_period=4.345)
    np.testing.assert_allclose(clv0, e52 * spend, rtol=1e-12)
    # two half-year periods at 10 % per half-year, discounted at the end of each period
    clv = gg.customer_lifetime_value(bg, X, horizon=52, discount_rate=0.1, discount_period=26)
    np.testing.assert_allclose(clv, (e26 / 1.1 + (e52 - e26) / 1.1**2) * spend, rtol=1e-12)


# --------------------------------------------------------------------------- #
# fitting machinery
# --------------------------------------------------------------------------- #
def test_compressed_rows_are_numpys_distinct_rows() -> None:
    """_compress against numpy's own distinct rows: values, order, counts and index."""
    from ml.btyd.inputs import _compress

    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, 5_000).astype(float)
    tx = np.round(rng.uniform(-2, 40, 5_000), 1)  # ties, negatives, floats
    T = rng.choice([1.5, 7.0, 30.25, 365.0], 5_000)
    rows, weights, inverse = _compress([x, tx, T], None)
    distinct, index, counts = np.unique(
        np.column_stack([x, tx, T]), axis=0, return_inverse=True, return_counts=True
    )
    np.testing.assert_array_equal(np.column_stack(rows), distinct)
    np.testing.assert_array_equal(inverse, index.ravel())
    np.testing.assert_array_equal(weights, counts)
    sw = rng.uniform(0, 3, 5_000)
    _, weighted, _ = _compress([x, tx, T], sw)
    np.testing.assert_allclose(weighted, np.bincount(index.ravel(), weights=sw))


def test_compression_equals_weighting_and_row_order(cdnow_summary: pd.DataFrame) -> None:
    X = cdnow_summary[["frequency", "recency", "T"]]
    shuffled = X.sample(frac=1.0, random_state=0)
    a = BetaGeoModel().fit(X).params_
    b = BetaGeoModel().fit(shuffled).params_
    doubled = BetaGeoModel().fit(pd.concat([X, X])).params_
    weighted = BetaGeoModel().fit(X, sample_weight=np.full(len(X), 2.0)).params_
    for name in a:
        assert b[name] == pytest.approx(a[name], rel=1e-6)
        assert doubled[name] == pytest.approx(weighted[name], rel=1e-6)
        assert doubled[name] == pytest.approx(a[name], rel=1e-4)


def test_time_unit_changes_scale_parameters_only(cdnow_summary: pd.DataFrame) -> None:
    weeks = BetaGeoModel(time_unit="weeks").fit(cdnow_summary)
    days_summary = cdnow_summary.assign(recency=cdnow_summary.recency * 7, T=cdnow_summary["T"] * 7)
    days = BetaGeoModel(time_unit="days").fit(days_summary)
    assert days.params_["alpha"] == pytest.approx(7 * weeks.params_["alpha"], rel=1e-4)
    for name in ("r", "a", "b"):
        assert days.params_[name] == pytest.approx(weeks.params_[name], rel=1e-4)
    assert days.expected_purchases(7 * 32) == pytest.approx(weeks.expected_purchases(32), rel=1e-4)


def test_models_follow_the_scikit_learn_parameter_conventions() -> None:
    model = BetaGeoModel(time_unit="weeks", penalizer=0.1)
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    assert not hasattr(twin, "params_")
    assert set(GammaGammaModel().get_params()) == {
        "penalizer",
        "init_params",
        "max_iter",
        "tol",
        "fallback_optimizer",
    }


def test_failed_optimisation_raises_a_clear_error(monkeypatch, cdnow_summary) -> None:
    def failing(fun, x0, **kwargs):
        return optimize.OptimizeResult(
            x=np.full_like(x0, np.nan), fun=np.nan, success=False, message="forced failure", nit=0
        )

    monkeypatch.setattr(btyd.optimize, "minimize", failing)
    with pytest.raises(BTYDConvergenceError, match="did not converge"):
        BetaGeoModel().fit(cdnow_summary)


def test_lbfgsb_failure_falls_back_to_nelder_mead_with_a_warning(cdnow_summary) -> None:
    # one L-BFGS-B iteration cannot converge; Nelder-Mead takes over and reaches the optimum
    with pytest.warns(BTYDConvergenceWarning, match="Nelder-Mead fallback converged"):
        model = BetaGeoModel(max_iter=1).fit(cdnow_summary)
    assert model.optimizer_ == "Nelder-Mead"
    _within(model.params_, PAPER_BGNBD, rel=0.01)


def test_without_the_fallback_optimizer_a_failure_raises_at_once(cdnow_summary) -> None:
    with pytest.raises(BTYDConvergenceError, match="no fallback optimizer requested"):
        BetaGeoModel(max_iter=1, fallback_optimizer=False).fit(cdnow_summary)


def test_non_finite_predictions_are_never_returned_silently() -> None:
    model = ParetoNBDModel.from_params(PAPER_PARETO)
    rows = np.array([[2000, 2500.0, 2600.0], [0, 0.0, 1e6], [50, 1.0e4, 1.0e4]])
    for values in (
        model.probability_alive(rows),
        model.conditional_expected_purchases(rows, 52.0),
        BetaGeoModel.from_params(PAPER_BGNBD).conditional_expected_purchases(rows, 52.0),
    ):
        assert np.all(np.isfinite(values))


# --------------------------------------------------------------------------- #
# edge cases
# --------------------------------------------------------------------------- #
def test_single_purchase_customers() -> None:
    one_timer = pd.DataFrame(
        {"frequency": [0], "recency": [0.0], "T": [20.0], "monetary_value": [0.0]}
    )
    bg = BetaGeoModel.from_params(PAPER_BGNBD)
    assert bg.probability_alive(one_timer)[0] == 1.0  # BG/NBD: no purchase, no chance to drop out
    e = bg.conditional_expected_purchases(one_timer, 10.0)[0]
    assert 0 < e < bg.expected_purchases(10.0)  # they have been quiet for 20: fewer than new
    gg = GammaGammaModel.from_params(PAPER_GG)
    mean = 6.25 * 15.44 / (3.74 - 1)
    assert gg.conditional_expected_average_spend(one_timer)[0] == pytest.approx(mean)


def test_all_purchases_on_one_day_count_as_one_purchase() -> None:
    tx = pd.DataFrame(
        {
            "customer": ["a", "a", "a", "b", "b", "b", "c"],
            "date": pd.to_datetime(["2024-01-05 09:00", "2024-01-05 12:00", "2024-01-05 18:30",
                                    "2024-01-01 00:00", "2024-01-01 00:00", "2024-01-15 00:00",
                                    "2024-01-10 00:00"]),
            "value": [10.0, 20.0, 30.0, 5.0, 5.0, 8.0, 3.0],
        }
    )  # fmt: skip
    s = summary_from_transactions(tx, "customer", "date", "value", "2024-01-29", freq_days=7)
    assert s.loc["a"].tolist() == [0, 0.0, 24 / 7, 0.0]
    # b: days 01-01 and 01-15 -> one repeat purchase two weeks after the first, spend 8
    assert s.loc["b"].tolist() == [1, 2.0, 4.0, 8.0]
    assert list(s.columns) == ["frequency", "recency", "T", "monetary_value"]
    # customers first seen after the calibration end are not in the cohort
    s2 = summary_from_transactions(tx, "customer", "date", "value", "2024-01-07", "2024-01-31")
    assert sorted(s2.index) == ["a", "b"]
    assert s2.loc["b", "frequency_holdout"] == 1 and s2.loc["a", "frequency_holdout"] == 0
    assert s2.loc["b", "monetary_value_holdout"] == 8.0


def test_zero_or_negative_spend_is_left_out_of_the_spend_fit(cdnow_holdout) -> None:
    clean = cdnow_holdout[cdnow_holdout["frequency"] > 0][["frequency", "monetary_value"]]
    returns = pd.DataFrame({"frequency": [3, 1, 2], "monetary_value": [0.0, -25.0, -0.01]})
    with pytest.warns(UserWarning, match="3 repeat buyer"):
        dirty = GammaGammaModel().fit(pd.concat([clean, returns]))
    reference = GammaGammaModel().fit(clean)
    for name in PAPER_GG:
        assert dirty.params_[name] == pytest.approx(reference.params_[name], rel=1e-8)
    spend = dirty.conditional_expected_average_spend(returns)
    np.testing.assert_allclose(spend, dirty.population_mean_spend())


def test_every_customer_a_one_timer_is_a_clear_error() -> None:
    X = pd.DataFrame({"frequency": [0] * 5, "recency": [0.0] * 5, "T": [3.0, 5, 8, 9, 12]})
    for model in (BetaGeoModel(), ParetoNBDModel()):
        with pytest.raises(ValueError, match="no customer has a repeat purchase"):
            model.fit(X)
    with pytest.raises(ValueError, match="no customer has a repeat purchase"):
        GammaGammaModel().fit(X.assign(monetary_value=0.0))


def test_barely_identified_data_warns_instead_of_returning_nan() -> None:
    # one repeat purchase among 200 customers: parameters run to the search bounds
    X = pd.DataFrame(
        {"frequency": [1] + [0] * 199, "recency": [1.0] + [0.0] * 199, "T": [10.0] * 200}
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = BetaGeoModel().fit(X)
    assert all(np.isfinite(v) for v in model.params_.values())
    assert np.all(np.isfinite(model.expected_purchases([1.0, 10.0])))
    # either a clean optimum or an explicit warning, never a silent degenerate fit
    at_bound = any(abs(math.log(v)) > 19.9 for v in model.params_.values())
    assert not at_bound or any(issubclass(w.category, BTYDConvergenceWarning) for w in caught)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([[1, 5.0, 4.0]], "recency must be <= T"),
        ([[1.5, 2.0, 4.0]], "whole number"),
        ([[-1, 0.0, 4.0]], "whole number"),
        ([[0, 2.0, 4.0]], "recency must be 0"),
        ([[1, np.nan, 4.0]], "missing or infinite"),
    ],
)
def test_invalid_summaries_are_rejected(rows, message) -> None:
    with pytest.raises(ValueError, match=message):
        BetaGeoModel().fit(np.array(rows * 3, dtype=float))


def test_summary_from_customer_features_maps_the_dbt_columns() -> None:
    features = pd.DataFrame(
        {
            "lt_frequency": [2, None],
            "lt_recency_days": [30, None],
            "lt_t_days": [60, None],
            "lt_monetary_value": [12.5, None],
            "recency_days": [30, 4],
        },
        index=pd.Index(["a", "returns_only"], name="customer_id"),
    )
    s = summary_from_customer_features(features)
    assert list(s.index) == ["a"]
    assert s.loc["a"].to_dict() == {"frequency": 2, "recency": 30, "T": 60, "monetary_value": 12.5}


# The cross-check against the archived `lifetimes` package lives in
# benchmarks/bench_btyd.py (it is never installed in the project environment).
