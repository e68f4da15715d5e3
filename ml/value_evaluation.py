"""Out-of-time choice of the purchase model, and the CLV check, at the evaluation cut-off.

Pure library (numpy, pandas, :mod:`ml.btyd`, :mod:`ml.evaluation`). Inputs are the
evaluation cut-off's ``customer_features`` and its ``customer_outcomes`` (aligned
row by row): ``purchase_days_in_horizon``, ``spend_in_horizon``, ``churned``.

**Choice rule** (:data:`CHOICE_RULE`): BG/NBD, MBG/NBD and Pareto/NBD are fitted on
the evaluation cut-off's features; a family whose fit does not identify dropout
(:func:`ml.btyd.dropout_identification`) is out; of the rest, the highest ROC AUC of
1 - P(alive) for "churned" (no purchase in the horizon) wins, and a family within
0.01 AUC of it with a smaller absolute forecast error (|predicted - actual| total
repeat purchase days in the horizon, relative) wins over it. When no family
identifies dropout, none is chosen: P(alive) is withheld, and the purchase
forecasts come from the family with the smallest forecast error.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.btyd import BTYDConvergenceError, dropout_identification
from ml.evaluation import evidence_rows, safe_roc_auc, spearman, top_share_captured
from ml.spend import choose_spend_model, fit_spend_model
from ml.threads import in_parallel
from ml.value import (
    FAMILIES,
    ValueModels,
    btyd_summary,
    fit_purchase_model,
    fit_value_models,
    purchase_summary,
    value_scores,
)

__all__ = ["CHOICE_RULE", "PurchaseChoice", "choose_purchase_model", "clv_evidence"]

AUC_TOLERANCE = 0.01
CHOICE_RULE = (
    "Fits that do not identify dropout are out; the highest out-of-time ROC AUC of "
    "1 - P(alive) for no purchase in the horizon wins; a family within "
    f"{AUC_TOLERANCE} AUC of it with a smaller absolute forecast error of total repeat "
    "purchase days wins over it."
)


@dataclass
class PurchaseChoice:
    """The chosen family (None when none identifies dropout) and the evidence behind it."""

    family: str | None
    forecast_family: str | None
    models: dict
    table: pd.DataFrame  # one row per family: roc_auc, abs_total_error, mae, identified, reason
    evidence: pd.DataFrame
    note: str | None = None


def _rows(features: pd.DataFrame, outcomes: pd.DataFrame) -> np.ndarray:
    """Customers with a purchase before the cut-off and a complete outcome horizon."""
    return (features["lt_frequency"].notna() & outcomes["churned"].notna()).to_numpy()


def choose_purchase_model(
    features: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    horizon_days: int,
    cutoff: dt.date | None,
) -> PurchaseChoice:
    """Fit each family at the evaluation cut-off, judge it on the horizon after, pick one."""
    keep = _rows(features, outcomes)
    summary = btyd_summary(features[keep])
    actual = outcomes.loc[keep, "purchase_days_in_horizon"].to_numpy(float)
    churned = outcomes.loc[keep, "churned"].to_numpy(bool)
    total = float(actual.sum())
    n = int(keep.sum())

    def judged(family: str) -> tuple[dict, object | None]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the production refit reports its own
                model = fit_purchase_model(summary, family)
        except (ValueError, BTYDConvergenceError) as exc:
            return {"family": family, "identified": False, "reason": str(exc)}, None
        p_alive = model.probability_alive(summary)
        verdict = dropout_identification(model, summary, p_alive)
        predicted = model.conditional_expected_purchases(summary, horizon_days)
        return {
            "family": family,
            "identified": verdict.identified,
            "reason": verdict.reason,
            "roc_auc": safe_roc_auc(churned, 1.0 - p_alive),
            "predicted_total": float(predicted.sum()),
            "abs_total_error": abs(predicted.sum() - total) / total if total else np.nan,
            "mae": float(np.mean(np.abs(predicted - actual))),
        }, model

    results = in_parallel(judged, list(FAMILIES), n_rows=n)
    records = [record for record, _ in results]
    models = {r["family"]: model for r, model in results if model is not None}
    table = pd.DataFrame(records).set_index("family")
    ok = table[table["identified"]]
    family = None
    if not ok.empty:
        best = ok["roc_auc"].max()
        close = ok[ok["roc_auc"] >= best - AUC_TOLERANCE]
        family = str(close["abs_total_error"].idxmin())
    fitted = table.dropna(subset=["abs_total_error"]) if "abs_total_error" in table else table
    forecast = family or (str(fitted["abs_total_error"].idxmin()) if not fitted.empty else None)
    note = None
    if family is None:
        reasons = "; ".join(f"{f}: {r}" for f, r in table["reason"].items() if r)
        note = f"No purchase model identifies dropout at the evaluation cut-off ({reasons})"
    evidence = _purchase_evidence(
        table, family, features[keep], actual, churned, horizon_days, cutoff, n
    )
    return PurchaseChoice(family, forecast, models, table, evidence, note)


def _purchase_evidence(table, family, features, actual, churned, h, cutoff, n) -> pd.DataFrame:
    frames = []
    kw = {"cutoff": cutoff, "horizon_days": h, "customers": n}
    for name, row in table.iterrows():
        role = "production" if name == family else "candidate"
        note = "" if row["identified"] else f"excluded: {row['reason']}"
        if "abs_total_error" in row and pd.notna(row.get("abs_total_error")):
            frames.append(
                evidence_rows(
                    "purchases",
                    name,
                    {"abs_total_error": row["abs_total_error"], "mae": row["mae"]},
                    role=role,
                    note=note
                    or f"predicted {row['predicted_total']:,.0f} vs actual "
                    f"{actual.sum():,.0f} repeat purchase days",
                    **kw,
                )
            )
            frames.append(
                evidence_rows(
                    "p_alive", name, {"roc_auc": row["roc_auc"]}, role=role, note=note, **kw
                )
            )
    # Baselines: a naive rate forecast, and one-line rankings for churn.
    x = features["lt_frequency"].to_numpy(float)
    T = features["lt_t_days"].to_numpy(float)
    naive = np.where(T > 0, x / np.maximum(T, 1.0), 0.0) * h
    total = actual.sum()
    frames.append(
        evidence_rows(
            "purchases",
            "past purchase-day rate x horizon",
            {
                "abs_total_error": abs(naive.sum() - total) / total if total else np.nan,
                "mae": float(np.mean(np.abs(naive - actual))),
            },
            role="baseline",
            note="repeat purchase days per day since the first purchase, times the horizon",
            **kw,
        )
    )
    for name, score in (
        ("days since last purchase", features["recency_days"].to_numpy(float)),
        ("-frequency", -features["frequency"].to_numpy(float)),
    ):
        frames.append(
            evidence_rows(
                "p_alive", name, {"roc_auc": safe_roc_auc(churned, score)}, role="baseline", **kw
            )
        )
    return pd.concat(frames, ignore_index=True)


def clv_evidence(
    features: pd.DataFrame,
    outcomes: pd.DataFrame,
    predicted_spend: np.ndarray,
    *,
    horizon_days: int,
    cutoff: dt.date | None,
    candidate: str,
    note: str = "",
) -> pd.DataFrame:
    """CLV judged out of time: predicted spend over the horizon vs ``spend_in_horizon``.

    ``predicted_spend`` is aligned with ``features`` (undiscounted expected spend in the
    horizon). Metrics: relative absolute total error, MAE, Spearman, share of the
    horizon's revenue captured by the top decile; baseline: ranking by past spend
    (``monetary_total``).
    """
    done = outcomes["churned"].notna().to_numpy()
    actual = outcomes.loc[done, "spend_in_horizon"].to_numpy(float)
    predicted = np.asarray(predicted_spend, dtype=float)[done]
    past = features.loc[done, "monetary_total"].to_numpy(float)
    total = actual.sum()
    kw = {"cutoff": cutoff, "horizon_days": horizon_days, "customers": int(done.sum())}
    model = evidence_rows(
        "clv",
        candidate,
        {
            "abs_total_error": abs(predicted.sum() - total) / total if total else np.nan,
            "mae": float(np.mean(np.abs(predicted - actual))),
            "spearman": spearman(predicted, actual),
            "top_decile_share": top_share_captured(actual, predicted),
        },
        role="production",
        note=note
        or f"predicted {predicted.sum():,.0f} vs actual {total:,.0f} spend in the horizon",
        **kw,
    )
    baseline = evidence_rows(
        "clv",
        "past spend (monetary_total)",
        {"spearman": spearman(past, actual), "top_decile_share": top_share_captured(actual, past)},
        role="baseline",
        **kw,
    )
    return pd.concat([model, baseline], ignore_index=True)


#: The family used when nothing can be judged: MBG/NBD does not call every one-time
#: buyer certainly alive, as BG/NBD does.
DEFAULT_FAMILY = "mbg_nbd"
#: The outcome columns of the evaluation cut-off the choice is judged on.
OUTCOMES = ("purchase_days_in_horizon", "spend_in_horizon", "churned")


def choose_value_models(features, eval_f, eval_o, horizon: int, eval_cutoff):
    """Choose the purchase family and the spend model out of time, refit them on
    ``features``; evidence rows.

    Returns ``(models, choice, evidence)``; ``choice`` is None without evaluation data.
    """
    if eval_f.empty or not eval_o["churned"].notna().any():
        return fit_value_models(features, DEFAULT_FAMILY), None, pd.DataFrame()
    choice = choose_purchase_model(eval_f, eval_o, horizon_days=horizon, cutoff=eval_cutoff)
    keep = _rows(eval_f, eval_o)
    spend = choose_spend_model(
        btyd_summary(eval_f[keep]),
        eval_o[keep],
        purchase_summary(features),
        horizon_days=horizon,
        cutoff=eval_cutoff,
    )
    family = choice.forecast_family or DEFAULT_FAMILY
    models = fit_value_models(features, family, spend.name, spend_fitted=spend.today)
    models.spend_note = spend.note
    if choice.family is None:
        models.p_alive_note = choice.note
    # CLV out of time: the chosen family and spend model as fitted at the evaluation cut-off.
    spend_at_eval = spend.at_cutoff.get(spend.name)
    if spend_at_eval is None:
        spend_at_eval = fit_spend_model(purchase_summary(eval_f), spend.name)
    at_eval = ValueModels(choice.models[models.family], spend_at_eval, models.family)
    s = value_scores(
        eval_f,
        at_eval,
        churn_horizon_days=horizon,
        clv_horizon_days=horizon,
        annual_discount_rate=0,
    )
    predicted = s["expected_purchases_churn_horizon"] * s["expected_avg_spend"]
    clv = clv_evidence(
        eval_f,
        eval_o,
        predicted.to_numpy(),
        horizon_days=horizon,
        cutoff=eval_cutoff,
        candidate=f"{models.family} + {spend.name}",
    )
    evidence = pd.concat([choice.evidence, spend.evidence, clv], ignore_index=True)
    return models, choice, evidence
