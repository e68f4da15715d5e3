"""ml/spend.py: the credibility estimate of spend per purchase day, and the out-of-time
choice between Gamma-Gamma, the shrunk and the own mean spend, on simulated customers
whose true mean spend is known."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ml.spend import ShrunkMeanSpend, choose_spend_model, fit_gamma_gamma, fit_spend_model


def _customers(n: int, seed: int, *, tau: float, sigma: float, max_days: int = 6):
    """Summary rows (frequency, monetary_value, day_spend_mean) of customers with a true
    mean spend per purchase day ``mu ~ N(100, tau)`` and daily spends ``N(mu, sigma)``;
    also a horizon of 1-3 purchase days from the same process."""
    rng = np.random.default_rng(seed)
    mu = np.clip(rng.normal(100.0, tau, n), 5.0, None)
    days = rng.integers(1, max_days + 1, n)
    spends = [np.clip(rng.normal(m, sigma, d), 1.0, None) for m, d in zip(mu, days, strict=True)]
    future_days = rng.integers(0, 4, n)
    future = [
        np.clip(rng.normal(m, sigma, d), 1.0, None) for m, d in zip(mu, future_days, strict=True)
    ]
    summary = pd.DataFrame(
        {
            "frequency": days - 1.0,
            "recency": 0.0,
            "T": 100.0,
            "monetary_value": [s[1:].mean() if len(s) > 1 else 0.0 for s in spends],
            "day_spend_mean": [s.mean() for s in spends],
        }
    )
    outcomes = pd.DataFrame(
        {
            "purchase_days_in_horizon": future_days,
            "spend_in_horizon": [f.sum() for f in future],
        }
    )
    return summary, outcomes, mu


def test_credibility_weight_is_estimated_from_the_two_variances() -> None:
    summary, _, _ = _customers(40_000, 1, tau=20.0, sigma=40.0)
    model = ShrunkMeanSpend().fit(summary)
    # k = sigma^2 / tau^2 = 1600 / 400 = 4
    assert model.params_["k"] == pytest.approx(4.0, rel=0.15)
    days = summary["frequency"] + 1
    expected = (
        days * summary["day_spend_mean"] + model.params_["k"] * model.params_["observed_mean_spend"]
    ) / (days + model.params_["k"])
    np.testing.assert_allclose(model.conditional_expected_average_spend(summary), expected)


def test_no_day_to_day_variance_trusts_each_customer_and_none_between_trusts_the_mean() -> None:
    steady, _, mu = _customers(5_000, 2, tau=30.0, sigma=0.0)
    model = ShrunkMeanSpend().fit(steady)
    assert model.params_["k"] == ShrunkMeanSpend.K_BOUNDS[0]
    predicted = model.conditional_expected_average_spend(steady)
    one_time = (steady["frequency"] == 0).to_numpy()
    # a one-time buyer's expected spend is (nearly) what the only purchase cost: it moves
    # toward everyone's mean by k / (1 + k) < 10 % of the distance at most
    mean = model.params_["observed_mean_spend"]
    moved = np.abs(predicted[one_time] - mu[one_time])
    assert np.all(moved <= 0.1 * np.abs(mu[one_time] - mean) + 1e-9)

    alike, _, _ = _customers(5_000, 3, tau=0.0, sigma=30.0)
    model = ShrunkMeanSpend().fit(alike)
    assert model.params_["k"] == ShrunkMeanSpend.K_BOUNDS[1]


def test_own_mean_is_k_zero_and_customers_without_spend_get_the_mean() -> None:
    summary, _, _ = _customers(1_000, 4, tau=20.0, sigma=10.0)
    summary.loc[0, "day_spend_mean"] = 0.0
    model = fit_spend_model(summary, "own_mean_spend")
    predicted = model.conditional_expected_average_spend(summary)
    assert predicted[0] == model.params_["observed_mean_spend"]
    np.testing.assert_allclose(predicted[1:], summary["day_spend_mean"][1:])


def test_errors_name_what_is_missing() -> None:
    summary, _, _ = _customers(100, 5, tau=20.0, sigma=10.0)
    with pytest.raises(ValueError, match="day_spend_mean"):
        ShrunkMeanSpend().fit(summary.drop(columns="day_spend_mean"))
    with pytest.raises(ValueError, match="unknown spend model 'median'"):
        fit_spend_model(summary, "median")
    with pytest.raises(ValueError, match="positive spend"):
        ShrunkMeanSpend().fit(summary.assign(day_spend_mean=0.0))


def test_choice_is_the_smallest_out_of_time_error_recomputed_here() -> None:
    summary, outcomes, _ = _customers(3_000, 6, tau=30.0, sigma=20.0)
    choice = choose_spend_model(
        summary, outcomes, summary, horizon_days=90, cutoff=dt.date(2020, 1, 1)
    )
    bought = (outcomes["purchase_days_in_horizon"] > 0).to_numpy()
    actual = (outcomes["spend_in_horizon"] / outcomes["purchase_days_in_horizon"])[bought]
    errors = {}
    for name in ("gamma_gamma", "shrunk_mean_spend", "own_mean_spend"):
        try:
            model = fit_spend_model(summary, name)
        except ValueError:  # an untrusted Gamma-Gamma
            assert name == "gamma_gamma" and not choice.table.loc[name, "trusted"]
            continue
        predicted = model.conditional_expected_average_spend(summary)
        errors[name] = float(np.mean(np.abs(predicted[bought] - actual)))
    assert choice.name == min(errors, key=errors.get)
    rows = choice.evidence.set_index(["candidate", "metric"])
    for name, mae in errors.items():
        assert rows.loc[(name, "mae"), "value"] == pytest.approx(mae)
    production = choice.evidence[choice.evidence["role"] == "production"]
    assert set(production["candidate"]) == {choice.name}


def test_gamma_gamma_untrusted_today_or_at_the_cut_off_is_out_with_the_reason() -> None:
    summary, outcomes, _ = _customers(3_000, 9, tau=30.0, sigma=20.0)
    one_timers = summary[summary["frequency"] == 0]  # nothing to fit Gamma-Gamma on
    assert fit_gamma_gamma(one_timers)[0] is None

    today = choose_spend_model(summary, outcomes, one_timers, horizon_days=90, cutoff=None)
    assert today.name != "gamma_gamma"
    assert not today.table.loc["gamma_gamma", "trusted"]
    assert today.note.startswith("Gamma-Gamma: no customer has a repeat purchase")
    assert "(today's fit)" in today.note
    measured = today.evidence[today.evidence["candidate"] == "gamma_gamma"]
    assert set(measured["metric"]) == {"mae", "spearman"}
    assert measured["note"].str.startswith("excluded: ").all()

    keep = (summary["frequency"] == 0).to_numpy()
    at_cutoff = choose_spend_model(
        one_timers, outcomes[keep], summary, horizon_days=90, cutoff=None
    )
    assert at_cutoff.name != "gamma_gamma"
    rows = at_cutoff.evidence.set_index(["candidate", "metric"])
    assert rows.loc[("gamma_gamma", "not_evaluated"), "note"].startswith("excluded: Gamma-Gamma")


def test_with_noisy_spend_the_shrunk_mean_beats_the_own_mean() -> None:
    # Day-to-day noise twice the spread between customers: shrinkage pays.
    summary, outcomes, _ = _customers(5_000, 7, tau=20.0, sigma=40.0)
    choice = choose_spend_model(summary, outcomes, summary, horizon_days=90, cutoff=None)
    assert choice.table.loc["shrunk_mean_spend", "mae"] < choice.table.loc["own_mean_spend", "mae"]
    assert choice.name in ("shrunk_mean_spend", "gamma_gamma")


def test_nobody_buying_in_the_horizon_falls_back_and_says_so() -> None:
    summary, outcomes, _ = _customers(1_000, 8, tau=20.0, sigma=10.0)
    none = outcomes.assign(purchase_days_in_horizon=0, spend_in_horizon=0.0)
    choice = choose_spend_model(summary, none, summary, horizon_days=90, cutoff=None)
    assert choice.name == "gamma_gamma"
    assert list(choice.evidence["note"]) == ["nobody bought in the horizon"]
