"""Expected spend per purchase: Gamma-Gamma or a credibility mean, chosen out of time.

Pure library (numpy, pandas, :mod:`ml.btyd`, :mod:`ml.evaluation`). Two models:

* ``gamma_gamma`` - :class:`ml.btyd.GammaGammaModel`, lifetimes' convention: the
  first purchase is left out, one-time buyers get the population mean.
* ``shrunk_mean_spend`` - :class:`ShrunkMeanSpend`: each customer's mean spend over
  *all* purchase days (the first included), shrunk toward the population mean by
  credibility weights estimated from the data.
* ``own_mean_spend`` - the same without shrinkage (``ShrunkMeanSpend(k=0)``): what a
  customer spent per purchase day so far.

Gamma-Gamma is **trusted** when maximum likelihood has a finite optimum without a
penalty and its population mean spend is at most :data:`MAX_SPEND_RATIO` times the
observed mean spend per purchase. The choice (:data:`SPEND_RULE`) is judged on what
customers then spent, like every other model: see :func:`choose_spend_model`.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ml.btyd import BTYDConvergenceError, BTYDConvergenceWarning, GammaGammaModel
from ml.evaluation import evidence_rows, no_evidence_rows, spearman
from ml.fitting import fit_with_fallback

__all__ = [
    "SPEND_MODELS",
    "SPEND_RULE",
    "ShrunkMeanSpend",
    "SpendChoice",
    "choose_spend_model",
    "default_spend_model",
    "fit_gamma_gamma",
    "fit_spend_model",
]

SPEND_MODELS = ("gamma_gamma", "shrunk_mean_spend", "own_mean_spend")

#: Gamma-Gamma's population mean spend above this multiple of the observed mean
#: spend per purchase is not believed (the fit extrapolates a heavy tail).
MAX_SPEND_RATIO = 1.5

SPEND_RULE = (
    "Gamma-Gamma, the shrunk mean spend and each customer's own mean spend are fitted at "
    "the evaluation cut-off and judged "
    "by the mean absolute error of expected spend per purchase day against what each "
    "customer spent per purchase day in the horizon (customers who bought); the smaller "
    "error wins. Gamma-Gamma is out when it has no finite maximum-likelihood optimum or a "
    f"population mean above {MAX_SPEND_RATIO:g}x the observed mean, at either cut-off. "
    "Without an evaluation cut-off, Gamma-Gamma when it is trusted."
)


class ShrunkMeanSpend:
    """Expected spend per purchase day: each customer's own mean, shrunk toward everyone's.

    Over all ``n = frequency + 1`` purchase days (``day_spend_mean`` in the summary:
    gross sales per purchase day, the first day included, so a one-time buyer's only
    purchase counts), ``E = (n m + k M) / (n + k)`` with ``M`` the mean spend per
    purchase day of all customers (Bühlmann credibility). ``k = sigma2 / tau2`` comes
    from regressing ``(m - M)^2`` on ``1 / n``, since ``E[(m - M)^2] = tau2 + sigma2 / n``
    (between-customer variance ``tau2``, day-to-day variance ``sigma2``). When the data
    show no day-to-day variance (``sigma2 <= 0``) customers' own means are trusted
    (``k`` at its lower bound); when they show no between-customer variance
    (``tau2 <= 0``) everyone gets ``M`` (``k`` at its upper bound). A given ``k`` is
    used as is (``k=0``: each customer's own mean). Customers without a positive
    spend get ``M``.
    """

    K_BOUNDS = (0.1, 50.0)

    def __init__(self, k: float | None = None) -> None:
        self.k = k

    @staticmethod
    def _columns(X: Any) -> tuple[np.ndarray, np.ndarray]:
        frame = pd.DataFrame(X)
        if "day_spend_mean" not in frame:
            raise ValueError(
                "ShrunkMeanSpend needs a 'day_spend_mean' column (gross sales per purchase "
                "day, first day included): build the summary with ml.value.btyd_summary"
            )
        n = frame["frequency"].to_numpy(float) + 1.0
        m = np.nan_to_num(frame["day_spend_mean"].to_numpy(float))
        return n, m

    def fit(self, X: Any) -> ShrunkMeanSpend:
        n, m = self._columns(X)
        use = m > 0
        if not use.any():
            raise ValueError("no customer with a positive spend: spend is not identified")
        n, m = n[use], m[use]
        mean = float(np.average(m, weights=n))
        design = np.column_stack([np.ones_like(n), 1.0 / n])
        (tau2, sigma2), *_ = np.linalg.lstsq(design, (m - mean) ** 2, rcond=None)
        low, high = self.K_BOUNDS
        if self.k is not None:
            k = self.k
        elif tau2 <= 0:
            k = high
        elif sigma2 <= 0:
            k = low
        else:
            k = float(np.clip(sigma2 / tau2, low, high))
        self.params_ = {"observed_mean_spend": mean, "k": float(k)}
        self.penalizer = 0.0
        self.log_likelihood_ = float("nan")
        self.converged_ = True
        return self

    def population_mean_spend(self) -> float:
        return self.params_["observed_mean_spend"]

    def conditional_expected_average_spend(self, X: Any) -> np.ndarray:
        n, m = self._columns(X)
        mean, k = self.params_["observed_mean_spend"], self.params_["k"]
        return np.where(m > 0, (n * np.clip(m, 0.0, None) + k * mean) / (n + k), mean)


def _observed_mean_spend(summary: pd.DataFrame) -> float:
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if repeat.empty:
        return float("nan")
    return float(np.average(repeat["monetary_value"], weights=repeat["frequency"]))


def fit_gamma_gamma(summary: pd.DataFrame) -> tuple[GammaGammaModel | None, str | None]:
    """Gamma-Gamma and ``None``, or ``None`` and why it is not trusted on ``summary``."""
    with warnings.catch_warnings():
        # What the fit would warn about is in the reason returned. (Repeat buyers whose
        # returns exceed their purchases are left out of the spend model and get the
        # population mean: expected, not news.) The answer never depends on a warning
        # being seen: warning filters are process-wide, and another step's fit may
        # change them meanwhile (orchestration/executor.py).
        warnings.simplefilter("ignore")
        try:
            model = fit_with_fallback(
                lambda pen: GammaGammaModel(penalizer=pen, fallback_optimizer=pen > 0), summary
            )
        except BTYDConvergenceError as exc:
            return None, f"Gamma-Gamma has no finite optimum ({exc})"
        except ValueError as exc:
            return None, str(exc)
    if model.penalizer > 0:
        return None, "Gamma-Gamma has no finite maximum-likelihood optimum (it needed a penalty)"
    observed = _observed_mean_spend(summary)
    try:
        population = model.population_mean_spend()
    except ValueError as exc:
        return None, f"Gamma-Gamma's population mean spend is infinite ({exc})"
    if population > MAX_SPEND_RATIO * observed:
        return None, (
            f"Gamma-Gamma's population mean spend {population:,.2f} is more than "
            f"{MAX_SPEND_RATIO:g}x the observed mean spend per purchase {observed:,.2f}"
        )
    return model, None


def fit_spend_model(summary: pd.DataFrame, name: str) -> Any:
    """Fit spend model ``name`` (:data:`SPEND_MODELS`); Gamma-Gamma must be trusted."""
    if name == "shrunk_mean_spend":
        return ShrunkMeanSpend().fit(summary)
    if name == "own_mean_spend":
        return ShrunkMeanSpend(k=0.0).fit(summary)
    if name != "gamma_gamma":
        raise ValueError(f"unknown spend model {name!r}; expected one of {SPEND_MODELS}")
    model, reason = fit_gamma_gamma(summary)
    if model is None:
        raise ValueError(reason)
    return model


def default_spend_model(summary: pd.DataFrame) -> tuple[str, Any, str | None]:
    """Without an out-of-time judge: Gamma-Gamma when trusted, else the shrunk mean (warned)."""
    model, reason = fit_gamma_gamma(summary)
    if model is not None:
        return "gamma_gamma", model, None
    note = f"{reason}: expected spend per purchase is the shrunk mean spend"
    warnings.warn(note, BTYDConvergenceWarning, stacklevel=2)
    return "shrunk_mean_spend", ShrunkMeanSpend().fit(summary), note


@dataclass
class SpendChoice:
    """The chosen spend model's name, why it was chosen (None for a plain Gamma-Gamma
    win), the judge's table (one row per candidate) and the evidence rows; the fits it
    made, so nothing is fitted twice."""

    name: str
    note: str | None
    table: pd.DataFrame
    evidence: pd.DataFrame
    #: the candidates fitted at the evaluation cut-off (None: not trusted there)
    at_cutoff: dict = field(default_factory=dict)
    #: the chosen model already fitted on today's summary, when the choice needed it
    today: Any = None


def choose_spend_model(
    eval_summary: pd.DataFrame,
    outcomes: pd.DataFrame,
    production_summary: pd.DataFrame,
    *,
    horizon_days: int,
    cutoff: dt.date | None,
) -> SpendChoice:
    """Judge both spend models at the evaluation cut-off (:data:`SPEND_RULE`); pick one.

    ``outcomes`` is aligned with ``eval_summary`` (``purchase_days_in_horizon``,
    ``spend_in_horizon``); ``production_summary`` is today's, where Gamma-Gamma must be
    trusted too.
    """
    days = outcomes["purchase_days_in_horizon"].to_numpy(float)
    bought = days > 0
    if not bought.any():
        name, model, note = default_spend_model(production_summary)
        nobody = no_evidence_rows(
            "spend", "nobody bought in the horizon", horizon_days=horizon_days
        )
        return SpendChoice(name, note, pd.DataFrame(), nobody, today=model)
    actual = outcomes["spend_in_horizon"].to_numpy(float)[bought] / days[bought]
    kw = {"cutoff": cutoff, "horizon_days": horizon_days, "customers": int(bought.sum())}
    gg, gg_reason = fit_gamma_gamma(eval_summary)
    gg_today = None
    if gg is not None:
        gg_today, today = fit_gamma_gamma(production_summary)
        gg_reason = f"{today} (today's fit)" if today else None
    models = {
        "gamma_gamma": gg,
        **{name: fit_spend_model(eval_summary, name) for name in SPEND_MODELS[1:]},
    }
    records = []
    for name, model in models.items():
        row = {"model": name, "trusted": name != "gamma_gamma" or gg_reason is None}
        row["reason"] = None if row["trusted"] else gg_reason
        if model is not None:
            predicted = model.conditional_expected_average_spend(eval_summary)[bought]
            row["mae"] = float(np.mean(np.abs(predicted - actual)))
            row["spearman"] = spearman(predicted, actual)
        records.append(row)
    table = pd.DataFrame(records).set_index("model")
    name = str(table.loc[table["trusted"].astype(bool), "mae"].idxmin())
    gg_row = table.loc["gamma_gamma"]
    note = None
    if name != "gamma_gamma":
        beaten = (
            f"{name.replace('_', ' ')} predicts spend per purchase day better out of time (mean "
            f"absolute error {table.loc[name, 'mae']:,.2f} vs Gamma-Gamma's {gg_row['mae']:,.2f})"
            if pd.notna(gg_row.get("mae", np.nan)) and gg_row["mae"] > table.loc[name, "mae"]
            else None
        )
        note = "; ".join(filter(None, [gg_row["reason"], beaten]))
    frames = []
    for candidate, row in table.iterrows():
        role = "production" if candidate == name else "candidate"
        excluded = "" if row["trusted"] else f"excluded: {row['reason']}"
        if pd.isna(row.get("mae", np.nan)):
            frames.append(no_evidence_rows("spend", excluded, horizon_days=horizon_days))
            frames[-1]["candidate"] = candidate
            frames[-1]["role"] = role
            continue
        metrics = {"mae": row["mae"], "spearman": row["spearman"]}
        frames.append(evidence_rows("spend", candidate, metrics, role=role, note=excluded, **kw))
    everyone = models["shrunk_mean_spend"].population_mean_spend()
    frames.append(
        evidence_rows(
            "spend",
            "everyone's mean spend per purchase day so far",
            {"mae": float(np.mean(np.abs(everyone - actual)))},
            role="baseline",
            note=f"{everyone:,.2f} for everyone; the horizon's actual mean {np.mean(actual):,.2f}",
            **kw,
        )
    )
    evidence = pd.concat(frames, ignore_index=True)
    today = gg_today if name == "gamma_gamma" else None
    return SpendChoice(name, note or None, table, evidence, at_cutoff=models, today=today)
