"""Per-customer value and churn scores from dbt's ``customer_features`` frames.

Pure library (numpy, pandas, scikit-learn, :mod:`ml.btyd`): the
Dagster asset reads the feature tables, calls these functions and writes the
results. Time unit: days everywhere (the dbt lifetimes columns are in days).

* :func:`fit_value_models` - BG/NBD and Gamma-Gamma on one cut-off's features.
* :func:`value_scores` - probability alive, expected purchases, expected spend
  per purchase and discounted CLV per customer.
* The churn score (``churn_frame``, ``fit_churn``, ``ChurnResult``) lives in
  :mod:`ml.churn.production`; the names are still importable from here.
* :func:`risk_band` - ``low`` / ``medium`` / ``high`` from a churn probability.
* :func:`save_value_models` / :func:`load_value_models` - the fitted value and churn
  models under ``<store>/<version>/`` with ``LATEST``, so scoring needs no refit.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from ml.btyd import (
    BetaGeoModel,
    BTYDConvergenceError,
    BTYDConvergenceWarning,
    GammaGammaModel,
    customer_lifetime_value,
)
from ml.segmentation import (
    METADATA_FILE,
    atomic_write,
    new_version_dir,
    point_latest,
    version_dir,
    warn_if_other_sklearn,
)

if TYPE_CHECKING:
    from ml.churn.production import ChurnResult

__all__ = [
    "ValueModels",
    "fit_value_models",
    "risk_band",
    "value_scores",
]

DAYS_PER_MONTH = 365.25 / 12


@dataclass
class ValueModels:
    """BG/NBD (purchases, dropout) and Gamma-Gamma (spend) fitted on one cut-off."""

    purchases: BetaGeoModel
    spend: GammaGammaModel


def _summary(features: pd.DataFrame) -> pd.DataFrame:
    """BTYD summary in days for every row of ``features``.

    Customers whose only transactions are returns have no purchase day (null
    lifetimes columns); they are scored as one-time buyers whose first
    transaction was ``tenure_days`` ago (frequency 0, recency 0, spend unknown).
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


def fit_value_models(features: pd.DataFrame) -> ValueModels:
    """Fit BG/NBD and Gamma-Gamma on the customers of one cut-off (time unit: days).

    Raises
    ------
    ValueError
        If nobody has a repeat purchase (the purchase and dropout rates are not
        identified) or no repeat buyer has a positive spend.
    """
    if features.empty:
        raise ValueError("no customers to fit the value models on")
    summary = _summary(features)
    purchases = _fit_with_fallback(
        lambda pen: BetaGeoModel(time_unit="days", penalizer=pen),
        summary,
    )
    with warnings.catch_warnings():
        # Repeat buyers whose returns exceed their purchases are left out of the
        # spend model (and get the population mean); that is expected, not news.
        warnings.filterwarnings("ignore", message=".*monetary_value <= 0.*")
        spend = _fit_with_fallback(
            lambda pen: GammaGammaModel(penalizer=pen, fallback_optimizer=pen > 0), summary
        )
    return ValueModels(purchases=purchases, spend=spend)


#: Penalizers tried in turn when maximum likelihood does not converge. The
#: Gamma-Gamma MLE runs off to p -> infinity when each customer's spend barely
#: varies between purchases (seen on the generated demo data); a tiny L2 penalty
#: keeps it finite without moving the conditional expectations noticeably.
FALLBACK_PENALIZERS: tuple[float, ...] = (0.0, 1e-6, 1e-4, 1e-2)


def _fit_with_fallback(make, summary: pd.DataFrame, probe_rows: int = 20_000):
    """Fit ``make(penalizer)`` with the first penalizer of the ladder that converges.

    A failed fit is slow: the optimiser walks off towards infinity, and then
    Nelder-Mead spends its whole budget, each step a pass over every distinct
    customer (607 s for one cut-off of 649k customers at 10M lines). So on
    more than ``probe_rows`` customers the ladder is walked on a seeded sample of
    ``probe_rows``: the first penalizer that converges there is fitted ONCE on
    all rows, by L-BFGS-B only, started from the sample's optimum (close to the
    full optimum, so it converges in a few iterations). Only if that fit fails
    does the walk continue down the ladder; Nelder-Mead runs over all rows only
    when L-BFGS-B failed at every rung, with a warning saying so.
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
        f"customers at any penalizer that converged on a sample ({last}); running Nelder-Mead over all rows (slow)",
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
        ``customer_id``, ``p_alive``, ``expected_purchases_<short>d``,
        ``expected_purchases_<long>d`` (expected purchase days in the next
        horizon), ``expected_avg_spend`` (per purchase), ``clv_<months>m`` (expected
        spend over ``clv_horizon_days``, discounted monthly at
        ``annual_discount_rate`` per year).
    """
    summary = _summary(features)
    purchases, spend = models.purchases, models.spend
    monthly = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
    months = round(clv_horizon_days / DAYS_PER_MONTH)
    out = pd.DataFrame({"customer_id": features["customer_id"].to_numpy()})
    out["p_alive"] = purchases.probability_alive(summary)
    for h in dict.fromkeys((short_horizon_days, long_horizon_days)):
        out[f"expected_purchases_{h}d"] = purchases.conditional_expected_purchases(summary, h)
    out["expected_avg_spend"] = spend.conditional_expected_average_spend(summary)
    out[f"clv_{months}m"] = customer_lifetime_value(
        purchases,
        spend,
        summary,
        horizon=clv_horizon_days,
        discount_rate=monthly,
        discount_period=DAYS_PER_MONTH,
    )
    bad = [c for c in out.columns[1:] if not np.isfinite(out[c].to_numpy(dtype=float)).all()]
    if bad:
        raise ValueError(f"value scores have NaN or infinite values in {bad}")
    return out


def risk_band(probability: np.ndarray, thresholds: Sequence[float] = (0.3, 0.6)) -> np.ndarray:
    """``low`` below the first threshold, ``high`` at or above the second, else ``medium``."""
    low, high = thresholds
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"risk band thresholds must be 0 <= low <= high <= 1, got {thresholds}")
    p = np.asarray(probability, dtype=float)
    return np.where(p >= high, "high", np.where(p < low, "low", "medium")).astype(object)


VALUE_MODEL_FILE = "value_models.joblib"


def save_value_models(
    directory: str | Path,
    models: ValueModels,
    churn: ChurnResult,
    metadata: Mapping[str, Any],
    version: str | None = None,
) -> Path:
    """Save the value models and the churn result under ``directory/<version>/``.

    Writes ``value_models.joblib`` and ``metadata.json`` (``metadata`` plus version,
    time and library versions), then points ``directory/LATEST`` at the version.
    """
    root = Path(directory)
    target = new_version_dir(root, version)
    meta = {
        **dict(metadata),
        "version": target.name,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "churn_fallback": churn.fallback,
        "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
    }
    payload = {"models": models, "churn": churn}
    atomic_write(target / VALUE_MODEL_FILE, lambda p: joblib.dump(payload, p, compress=3))
    atomic_write(
        target / METADATA_FILE,
        lambda p: Path(p).write_text(json.dumps(meta, indent=2, default=str)),
    )
    point_latest(root, target.name)
    return target


def load_value_models(directory: str | Path) -> tuple[ValueModels, ChurnResult, dict]:
    """``(models, churn, metadata)`` of the ``LATEST`` version saved by :func:`save_value_models`."""
    target = version_dir(Path(directory), None, "value and churn models")
    metadata = json.loads((target / METADATA_FILE).read_text())
    warn_if_other_sklearn(metadata, "value models")
    payload = joblib.load(target / VALUE_MODEL_FILE)
    return payload["models"], payload["churn"], metadata


#: Churn names that used to live here, importable from here without an import cycle
#: (:mod:`ml.churn.production` builds on this module's value models).
_MOVED_TO_CHURN = frozenset(
    {"CHURN_INPUT_COLUMNS", "ChurnModel", "ChurnResult", "churn_frame", "fit_churn"}
)


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_CHURN:
        import ml.churn.production as production

        return getattr(production, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
