"""Customer value from dbt's ``customer_features``: the purchase model, the spend model, CLV.

Pure library (numpy, pandas, :mod:`ml.btyd`); time unit days everywhere (the dbt
lifetimes columns are in days).

* :func:`fit_value_models` - one purchase model family (BG/NBD, MBG/NBD or
  Pareto/NBD; which one is chosen out of time by :mod:`ml.value_evaluation`) and
  the spend model, on the customers with at least one purchase.
* :func:`value_scores` - P(alive) (NULL with a note when the fit does not identify
  dropout), expected purchases, expected spend per purchase and discounted CLV.

Customers whose only transactions are returns have no purchase day (null lifetimes
columns): they stay out of every fit and their CLV is 0.

The spend model is Gamma-Gamma unless it cannot be trusted: no finite maximum
likelihood (the fit needs a penalty), or a population mean spend far above what
customers actually spend per purchase. Then :class:`ShrunkMeanSpend` is used (see
there) and ``ValueModels.spend_note`` says why.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.btyd import (
    BetaGeoModel,
    BTYDConvergenceError,
    BTYDConvergenceWarning,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    customer_lifetime_value,
    dropout_identification,
)

__all__ = [
    "FAMILIES",
    "ShrunkMeanSpend",
    "ValueModels",
    "btyd_summary",
    "fit_purchase_model",
    "fit_spend_model",
    "fit_value_models",
    "purchase_summary",
    "value_scores",
]

#: The purchase model families, by the name used in metadata and the evidence table.
FAMILIES: dict[str, type] = {
    "bg_nbd": BetaGeoModel,
    "mbg_nbd": ModifiedBetaGeoModel,
    "pareto_nbd": ParetoNBDModel,
}

DAYS_PER_MONTH = 365.25 / 12

#: Gamma-Gamma's population mean spend above this multiple of the observed mean
#: spend per purchase is not believed (the fit extrapolates a heavy tail).
MAX_SPEND_RATIO = 1.5


@dataclass
class ValueModels:
    """The purchase model (one family) and the spend model fitted on one cut-off.

    ``p_alive_note`` is set when the purchase model does not identify dropout
    (P(alive) is then withheld); ``spend_note`` when the spend model is the
    shrinkage fallback instead of Gamma-Gamma.
    """

    purchases: Any
    spend: Any
    family: str = "bg_nbd"
    p_alive_note: str | None = None
    spend_note: str | None = None


def btyd_summary(features: pd.DataFrame) -> pd.DataFrame:
    """BTYD summary in days for every row of ``features``.

    Returns-only customers (null lifetimes columns) become one-time buyers whose
    first transaction was ``tenure_days`` ago (frequency 0, recency 0, spend 0), so
    every customer can be scored; the fits use :func:`purchase_summary` instead.
    """
    out = pd.DataFrame(
        {
            "frequency": features["lt_frequency"],
            "recency": features["lt_recency_days"],
            "T": features["lt_t_days"],
            "monetary_value": features["lt_monetary_value"],
        },
        index=features.index,
    ).astype("float64")
    missing = out["frequency"].isna()
    if missing.any():
        out.loc[missing, ["frequency", "recency", "monetary_value"]] = 0.0
        out.loc[missing, "T"] = features.loc[missing, "tenure_days"].astype("float64")
    out["T"] = out["T"].clip(lower=out["recency"])
    return out


def purchase_summary(features: pd.DataFrame) -> pd.DataFrame:
    """The summary of the customers with at least one purchase (the ones models learn from)."""
    return btyd_summary(features)[features["lt_frequency"].notna().to_numpy()]


#: Penalizers tried in turn when maximum likelihood does not converge. The
#: Gamma-Gamma MLE runs off to p -> infinity when each customer's spend barely
#: varies between purchases (seen on the generated demo data); a tiny L2 penalty
#: keeps it finite without moving the conditional expectations noticeably.
FALLBACK_PENALIZERS: tuple[float, ...] = (0.0, 1e-6, 1e-4, 1e-2)


def _fit_with_fallback(make, summary: pd.DataFrame, probe_rows: int = 20_000):
    """Fit ``make(penalizer)`` with the first penalizer of the ladder that converges.

    A failed fit is slow: the optimiser walks off towards infinity, and then
    Nelder-Mead spends its whole budget, each step a pass over every distinct
    customer. So on more than ``probe_rows`` customers the ladder is walked on a
    seeded sample of ``probe_rows``: the first penalizer that converges there is
    fitted ONCE on all rows, by L-BFGS-B only, started from the sample's optimum.
    Only if that fit fails does the walk continue down the ladder; Nelder-Mead runs
    over all rows only when L-BFGS-B failed at every rung, with a warning saying so.
    """
    if len(summary) <= probe_rows:
        return _walk_ladder(make, summary)
    sample = summary.sample(probe_rows, random_state=0)
    starts: dict[float, dict] = {}
    last: Exception | None = None
    for penalizer in FALLBACK_PENALIZERS:
        try:
            with warnings.catch_warnings():
                # about the sample, not the answer: the full fit warns for itself
                warnings.simplefilter("ignore", BTYDConvergenceWarning)
                starts[penalizer] = make(penalizer).fit(sample).params_
        except BTYDConvergenceError as exc:
            last = exc
            continue
        except ValueError:
            # the sample cannot identify the model (e.g. too few repeat buyers in it)
            return _walk_ladder(make, summary)
        try:
            model = (
                make(penalizer)
                .set_params(init_params=starts[penalizer], fallback_optimizer=False)
                .fit(summary)
            )
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
    return _walk_ladder(make, summary, starts, last)


def _walk_ladder(make, summary: pd.DataFrame, starts=None, last: Exception | None = None):
    """Fit each rung of the ladder on all of ``summary`` until one converges."""
    for penalizer in FALLBACK_PENALIZERS:
        model = make(penalizer)
        if starts and penalizer in starts:
            model.set_params(init_params=starts[penalizer])
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


#: Families whose likelihood has no analytic gradient (Pareto/NBD: each numeric-gradient
#: step is several passes of a hypergeometric function over every customer) learn their
#: four population parameters from a seeded sample of at most this many customers;
#: every customer is still scored.
SAMPLED_FAMILIES = frozenset({"pareto_nbd"})
MAX_SAMPLED_FIT_ROWS = 25_000


def fit_purchase_model(summary: pd.DataFrame, family: str):
    """Fit one purchase model family (``FAMILIES``) on a summary in days."""
    make = FAMILIES[family]
    if family in SAMPLED_FAMILIES and len(summary) > MAX_SAMPLED_FIT_ROWS:
        summary = summary.sample(MAX_SAMPLED_FIT_ROWS, random_state=0)
    return _fit_with_fallback(lambda pen: make(time_unit="days", penalizer=pen), summary)


class ShrunkMeanSpend:
    """Expected spend per purchase when Gamma-Gamma cannot be trusted: a credibility mean.

    Each customer's mean spend per repeat purchase ``m`` (``x`` purchases) is shrunk
    toward the observed mean spend per purchase ``M`` of all repeat buyers:
    ``E = (x m + k M) / (x + k)`` (Bühlmann credibility). ``k = sigma2 / tau2`` is
    estimated from the data by regressing ``(m - M)^2`` on ``1 / x``, since
    ``E[(m - M)^2] = tau2 + sigma2 / x`` (between-customer variance ``tau2``,
    purchase-to-purchase variance ``sigma2``); it is kept within [0.5, 50].
    Customers without a repeat purchase get ``M``.
    """

    def fit(self, X: pd.DataFrame) -> ShrunkMeanSpend:
        x = X["frequency"].to_numpy(float)
        m = X["monetary_value"].to_numpy(float)
        use = (x > 0) & (m > 0)
        x, m = x[use], m[use]
        if not use.any():
            raise ValueError("no repeat buyer with a positive spend: spend is not identified")
        mean = float(np.average(m, weights=x))
        design = np.column_stack([np.ones_like(x), 1.0 / x])
        (tau2, sigma2), *_ = np.linalg.lstsq(design, (m - mean) ** 2, rcond=None)
        k = sigma2 / tau2 if tau2 > 0 and sigma2 > 0 else 50.0
        self.params_ = {"observed_mean_spend": mean, "k": float(np.clip(k, 0.5, 50.0))}
        self.penalizer = 0.0
        self.log_likelihood_ = float("nan")
        self.converged_ = True
        return self

    def population_mean_spend(self) -> float:
        return self.params_["observed_mean_spend"]

    def conditional_expected_average_spend(self, X: Any) -> np.ndarray:
        frame = pd.DataFrame(X)
        x = frame["frequency"].to_numpy(float)
        m = np.where(x > 0, frame["monetary_value"].to_numpy(float), 0.0)
        m = np.clip(np.nan_to_num(m), 0.0, None)
        mean, k = self.params_["observed_mean_spend"], self.params_["k"]
        return (x * m + k * mean) / (x + k)


def fit_spend_model(summary: pd.DataFrame) -> tuple[Any, str | None]:
    """Gamma-Gamma, or :class:`ShrunkMeanSpend` with a warning when it cannot be trusted.

    Returns the model and, for the fallback, the reason (``None`` for Gamma-Gamma).
    """
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    observed = float(np.average(repeat["monetary_value"], weights=repeat["frequency"]))
    reason = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Repeat buyers whose returns exceed their purchases are left out of the
        # spend model (and get the population mean); that is expected, not news.
        warnings.filterwarnings("ignore", message=".*monetary_value <= 0.*")
        try:
            spend = _fit_with_fallback(
                lambda pen: GammaGammaModel(penalizer=pen, fallback_optimizer=pen > 0), summary
            )
        except BTYDConvergenceError as exc:
            spend, reason = None, f"Gamma-Gamma has no finite optimum ({exc})"
    penalised = [w for w in caught if "penalizer=" in str(w.message)]
    for w in caught:
        if w not in penalised:
            warnings.warn(w.message, w.category, stacklevel=2)
    if spend is not None and penalised:
        reason = "Gamma-Gamma has no finite maximum-likelihood optimum (it needed a penalty)"
    elif spend is not None and spend.population_mean_spend() > MAX_SPEND_RATIO * observed:
        reason = (
            f"Gamma-Gamma's population mean spend {spend.population_mean_spend():,.2f} is "
            f"more than {MAX_SPEND_RATIO:g}x the observed mean spend per purchase {observed:,.2f}"
        )
    if reason is None:
        return spend, None
    note = (
        f"{reason}: expected spend per purchase is the shrinkage estimate toward the observed mean"
    )
    warnings.warn(note, BTYDConvergenceWarning, stacklevel=2)
    return ShrunkMeanSpend().fit(summary), note


def fit_value_models(features: pd.DataFrame, family: str = "bg_nbd") -> ValueModels:
    """Fit purchase model ``family`` and the spend model on one cut-off (time unit: days).

    Raises
    ------
    ValueError
        If nobody has a repeat purchase (the purchase and dropout rates are not
        identified) or no repeat buyer has a positive spend.
    """
    summary = purchase_summary(features)
    if summary.empty:
        raise ValueError("no customers with a purchase to fit the value models on")
    purchases = fit_purchase_model(summary, family)
    verdict = dropout_identification(purchases, summary)
    spend, spend_note = fit_spend_model(summary)
    return ValueModels(
        purchases=purchases,
        spend=spend,
        family=family,
        p_alive_note=None if verdict.identified else verdict.reason,
        spend_note=spend_note,
    )


def value_scores(
    features: pd.DataFrame,
    models: ValueModels,
    *,
    short_horizon_days: int = 90,
    long_horizon_days: int = 365,
    clv_horizon_days: int = 365,
    annual_discount_rate: float = 0.10,
) -> pd.DataFrame:
    """Value scores per customer, in the input order.

    Returns
    -------
    scores : DataFrame
        ``customer_id``, ``p_alive`` (NaN when the purchase model does not identify
        dropout), ``p_alive_note`` (why it is withheld, else None),
        ``expected_purchases_<short>d``, ``expected_purchases_<long>d`` (expected
        purchase days in the next horizon), ``expected_avg_spend`` (per purchase),
        ``clv_<months>m`` (expected spend over ``clv_horizon_days``, discounted
        monthly at ``annual_discount_rate`` per year; 0 for returns-only customers).
    """
    summary = btyd_summary(features)
    bought = features["lt_frequency"].notna().to_numpy()
    purchases, spend = models.purchases, models.spend
    monthly = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
    months = round(clv_horizon_days / DAYS_PER_MONTH)
    out = pd.DataFrame({"customer_id": features["customer_id"].to_numpy()})
    out["p_alive"] = purchases.probability_alive(summary)
    if models.p_alive_note:
        out["p_alive"] = np.nan
    out["p_alive_note"] = models.p_alive_note
    for h in dict.fromkeys((short_horizon_days, long_horizon_days)):
        out[f"expected_purchases_{h}d"] = purchases.conditional_expected_purchases(summary, h)
    out["expected_avg_spend"] = np.where(
        bought, spend.conditional_expected_average_spend(summary), 0.0
    )
    clv = customer_lifetime_value(
        purchases,
        spend,
        summary,
        horizon=clv_horizon_days,
        discount_rate=monthly,
        discount_period=DAYS_PER_MONTH,
    )
    out[f"clv_{months}m"] = np.where(bought, clv, 0.0)
    numeric = [c for c in out.columns[1:] if c not in ("p_alive", "p_alive_note")]
    bad = [c for c in numeric if not np.isfinite(out[c].to_numpy(dtype=float)).all()]
    if bad:
        raise ValueError(f"value scores have NaN or infinite values in {bad}")
    return out
