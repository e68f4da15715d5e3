"""The churn score that ships: its input frame, the out-of-time fit and the fallback.

:func:`churn_frame` builds the model's input at one cut-off (dbt features plus the
BTYD features of the same cut-off); :func:`fit_churn` trains on the earlier cut-off,
judges the model out of time on the later one next to the baselines, and refits on
the later one for production.

Pure library (numpy, pandas, scikit-learn, :mod:`ml.btyd`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone

from ml.btyd import BetaGeoModel, summary_from_customer_features
from ml.churn.baselines import CalibratedBaseline, baseline_score, baselines
from ml.churn.evaluation import (
    P_ALIVE_COLUMN,
    churn_drivers,
    evaluate_churn,
    reliability_curve,
)
from ml.churn.model import ChurnModel
from ml.columns import churn_inputs
from ml.evaluation import evidence_rows, no_evidence_rows
from ml.value import ValueModels
from ml.value import btyd_summary as _summary

__all__ = [
    "CHURN_INPUT_COLUMNS",
    "MIN_AUC_GAIN",
    "ChurnResult",
    "add_btyd_features",
    "churn_evidence",
    "churn_frame",
    "fit_churn",
]

#: Columns added by :func:`add_btyd_features` (``{h}`` is the horizon in days).
EXPECTED_PURCHASES_COLUMN = "expected_purchases_{h}d"
P_NO_PURCHASE_COLUMN = "p_no_purchase_{h}d"

#: dbt ``customer_features`` columns the churn model may use (those present are used):
#: the feature columns of ml/columns.py. Identifiers, dates and the RFM cell name are
#: left out there: dates leak the cut-off, and the scores already carry the RFM information.
CHURN_INPUT_COLUMNS: tuple[str, ...] = churn_inputs()


def add_btyd_features(
    features: pd.DataFrame,
    model: BetaGeoModel,
    *,
    horizon_days: int,
) -> pd.DataFrame:
    """``features`` plus BG/NBD probability alive, expected purchases and P(no purchase).

    Parameters
    ----------
    features : DataFrame
        dbt ``customer_features`` rows (``lt_frequency``, ``lt_recency_days``,
        ``lt_t_days``); returns-only customers (null lifetimes columns) get NaN.
    model : BetaGeoModel
        Fitted on the same cut-off's summary, in days (``time_unit="days"``).
    horizon_days : int
        Window of the expected purchases, in days (the churn horizon; the project's
        default is ``scoring.churn_horizon_days`` of the config).

    Returns
    -------
    features : DataFrame
        A copy with ``p_alive``, ``expected_purchases_<horizon_days>d`` and
        ``p_no_purchase_<horizon_days>d`` (probability of no purchase in the horizon).
    """
    if getattr(model, "time_unit", "days") != "days":
        raise ValueError(
            f"the dbt lifetimes columns are in days, the model is in {model.time_unit!r}"
        )
    summary = summary_from_customer_features(features)[["frequency", "recency", "T"]]
    out = features.copy()
    expected = EXPECTED_PURCHASES_COLUMN.format(h=horizon_days)
    none = P_NO_PURCHASE_COLUMN.format(h=horizon_days)
    for col in (P_ALIVE_COLUMN, expected, none):
        out[col] = np.nan
    if len(summary):
        out.loc[summary.index, P_ALIVE_COLUMN] = model.probability_alive(summary)
        out.loc[summary.index, expected] = model.conditional_expected_purchases(
            summary, horizon_days
        )
        out.loc[summary.index, none] = model.probability_no_purchase(summary, horizon_days)
    return out


def churn_frame(features: pd.DataFrame, models: ValueModels, horizon_days: int) -> pd.DataFrame:
    """The churn model's input: dbt features of one cut-off plus its BG/NBD features."""
    columns = [c for c in CHURN_INPUT_COLUMNS if c in features.columns]
    summary = _summary(features)
    base = features[columns].copy()
    for c in base.columns:
        if c in ("gender", "region"):
            base[c] = base[c].astype(object).where(base[c].notna(), None)
        else:  # nullable integer columns -> float with NaN (imputed in the model)
            base[c] = pd.to_numeric(base[c]).astype("float64")
    lifetimes = features[["lt_frequency", "lt_recency_days", "lt_t_days"]].copy()
    lifetimes["lt_frequency"] = summary["frequency"]
    lifetimes["lt_recency_days"] = summary["recency"]
    lifetimes["lt_t_days"] = summary["T"]
    extra = add_btyd_features(lifetimes, models.purchases, horizon_days=horizon_days)
    for c in (
        P_ALIVE_COLUMN,
        EXPECTED_PURCHASES_COLUMN.format(h=horizon_days),
        P_NO_PURCHASE_COLUMN.format(h=horizon_days),
    ):
        base[c] = extra[c].to_numpy()
    return _add_gap_features(base)


#: The current gap relative to the customer's own rhythm: a regular buyer who is late
#: is a stronger churn sign than the same gap for an irregular one.
GAP_FEATURES = ("recency_gap_ratio", "recency_gap_z", "inter_purchase_days_cv")


def _add_gap_features(frame: pd.DataFrame) -> pd.DataFrame:
    needed = ("recency_days", "inter_purchase_days_mean", "inter_purchase_days_std")
    if not all(c in frame.columns for c in needed):
        return frame
    gap, mean, std = (frame[c] for c in needed)
    frame["recency_gap_ratio"] = gap / mean
    frame["recency_gap_z"] = (gap - mean) / std
    frame["inter_purchase_days_cv"] = std / mean
    # one gap of 0 days' spread (std 0) makes z infinite; unknown rhythm, not extreme
    frame[list(GAP_FEATURES)] = frame[list(GAP_FEATURES)].replace([np.inf, -np.inf], np.nan)
    return frame


#: How much better than the best baseline (out-of-time ROC AUC) a learned score must be
#: to ship; below it the gain is within what a different cut-off moves.
MIN_AUC_GAIN = 0.01

MODEL, BLEND = "churn_model", "blend"


@dataclass
class ChurnResult:
    """The churn score that ships and the out-of-time evidence for it.

    Attributes
    ----------
    model : ChurnModel or None
        Refitted on the later (evaluation) cut-off when the model or the blend ships.
    evaluation : DataFrame
        One row per scorer - ``churn_model``, ``blend`` (mean of the model's and the
        best baseline's probabilities) and the baselines ``recency_days``,
        ``neg_frequency``, ``p_no_purchase`` - with the columns of
        :func:`~ml.churn.evaluation.evaluate_churn`: learned on the earlier cut-off,
        scored on the later one. Baselines are scored as probabilities (isotonic
        calibration fitted on the earlier cut-off), except ``roc_auc``, which is
        that of the raw column: calibration merges neighbouring values into ties.
    drivers : DataFrame
        Permutation importance on a sample of the evaluation cut-off (``feature``,
        ``importance_mean``, ``importance_std``).
    calibration : DataFrame
        ``mean_predicted``, ``observed_rate``, ``customers`` per probability bin of
        the shipped score on the evaluation cut-off (the calibration plot's points).
    fallback : str or None
        Why the supervised model does not ship, in words.
    baseline : CalibratedBaseline or None
        The best baseline, calibrated on the later cut-off, when it or the blend ships.
    production : str
        The row of ``evaluation`` that ships (``p_no_purchase_raw`` with too little
        history: the BTYD probability as is).
    reliability : DataFrame
        ``scorer`` plus the calibration columns, for every scorer.
    """

    model: ChurnModel | None
    evaluation: pd.DataFrame
    drivers: pd.DataFrame
    calibration: pd.DataFrame
    fallback: str | None = None
    baseline: CalibratedBaseline | None = None
    production: str = MODEL
    reliability: pd.DataFrame | None = None

    def predict(self, X: pd.DataFrame, horizon_days: int) -> np.ndarray:
        """Churn probability of each row of a :func:`churn_frame`."""
        if self.model is None and self.baseline is None:
            return X[P_NO_PURCHASE_COLUMN.format(h=horizon_days)].to_numpy(dtype=float)
        if self.production == MODEL:
            return self.model.predict_proba(X)[:, 1]
        p = self.baseline.predict_proba(X)[:, 1]
        if self.production == BLEND:
            return 0.5 * (p + self.model.predict_proba(X)[:, 1])
        return p


#: Fewest customers of the smaller label class the churn model is trained on: each of
#: its calibration folds needs both classes (with fewer than the folds, scikit-learn
#: refuses), and a calibration curve from one or two churners per fold means nothing.
MIN_PER_CLASS = 10


def _usable(y: np.ndarray, min_customers: int) -> str | None:
    if len(y) < min_customers:
        return f"{len(y)} labelled customers < {min_customers}"
    if len(np.unique(y)) < 2:
        return "labels have one class only"
    smaller = int(min(np.sum(y == 0), np.sum(y != 0)))
    if smaller < MIN_PER_CLASS:
        return f"only {smaller} labelled customers in the smaller class (< {MIN_PER_CLASS})"
    return None


def fit_churn(
    train_X: pd.DataFrame,
    train_y: Sequence[bool] | np.ndarray,
    eval_X: pd.DataFrame,
    eval_y: Sequence[bool] | np.ndarray,
    *,
    horizon_days: int,
    min_customers: int = 200,
    max_driver_rows: int = 5_000,
    max_train_rows: int | None = 100_000,
    random_state: int = 0,
) -> ChurnResult:
    """Train on the earlier cut-off, judge on the later one, refit what ships on it.

    ``train_y`` must only use outcomes up to the evaluation cut-off (labels of
    the training cut-off end where the evaluation features start), so the
    evaluation is out of time. The model (or the blend) ships only if its ROC AUC
    beats the best baseline's by :data:`MIN_AUC_GAIN`; otherwise the best baseline,
    made a probability by isotonic calibration, ships and ``fallback`` says so.
    With too little labelled history (``min_customers``) or a single class, churn
    probability is the BTYD probability of no purchase in the horizon as is.

    Both model fits learn from at most ``max_train_rows`` customers, a seeded sample
    stratified by the label (``None`` = all): gradient boosting gains nothing
    measurable beyond that. The evaluation and the scores use every customer.
    """
    train_y = np.asarray(train_y, dtype=np.int64)
    eval_y = np.asarray(eval_y, dtype=np.int64)
    why = _usable(train_y, min_customers) or _usable(eval_y, min_customers)
    if why is not None:
        empty = pd.DataFrame(columns=["feature", "importance_mean", "importance_std"])
        return ChurnResult(
            model=None,
            evaluation=pd.DataFrame(),
            drivers=empty,
            calibration=pd.DataFrame(columns=["mean_predicted", "observed_rate", "customers"]),
            fallback=f"{why}: churn probability = BTYD P(no purchase in {horizon_days} d)",
            production="p_no_purchase_raw",
        )
    learn = _stratified_rows(train_y, max_train_rows, random_state)
    trained = ChurnModel(random_state=random_state).fit(train_X.iloc[learn], train_y[learn])
    probas = {MODEL: trained.predict_proba(eval_X)[:, 1]}
    rows = {MODEL: evaluate_churn(eval_y, probas[MODEL])}
    calibrated = {}
    for name, (column, sign) in baselines(horizon_days).items():
        calibrated[name] = CalibratedBaseline(column=column, sign=sign).fit(train_X, train_y)
        probas[name] = calibrated[name].predict_proba(eval_X)[:, 1]
        rows[name] = evaluate_churn(eval_y, probas[name])
        rows[name]["roc_auc"] = evaluate_churn(eval_y, _unit(baseline_score(eval_X, column, sign)))[
            "roc_auc"
        ]
    best = max(calibrated, key=lambda n: rows[n]["roc_auc"])
    probas[BLEND] = 0.5 * (probas[MODEL] + probas[best])
    rows[BLEND] = evaluate_churn(eval_y, probas[BLEND])
    evaluation = pd.DataFrame.from_dict(
        {k: rows[k] for k in (MODEL, BLEND, *calibrated)}, orient="index"
    )
    production, fallback = _choose(evaluation, best)
    reliability = pd.concat(
        [reliability_curve(eval_y, p).assign(scorer=k) for k, p in probas.items()],
        ignore_index=True,
    )[["scorer", "mean_predicted", "observed_rate", "customers"]]
    # Drivers: permutation importance (ROC AUC drop) of the first calibration fold's
    # pipeline on a sample. ROC AUC ignores the monotone calibration map, and one fold
    # costs a third of the ensemble's predictions.
    sample = np.random.RandomState(random_state).permutation(len(eval_y))[:max_driver_rows]
    fold = trained.calibrated_.calibrated_classifiers_[0].estimator
    drivers = churn_drivers(
        fold, eval_X.iloc[sample], eval_y[sample], n_repeats=3, random_state=random_state
    )
    model = baseline = None
    if production in (MODEL, BLEND):
        learn = _stratified_rows(eval_y, max_train_rows, random_state)
        model = ChurnModel(random_state=random_state).fit(eval_X.iloc[learn], eval_y[learn])
    if production != MODEL:
        baseline = clone(calibrated[best]).fit(eval_X, eval_y)
    return ChurnResult(
        model=model,
        evaluation=evaluation,
        drivers=drivers,
        calibration=reliability[reliability["scorer"] == production]
        .drop(columns="scorer")
        .reset_index(drop=True),
        fallback=fallback,
        baseline=baseline,
        production=production,
        reliability=reliability,
    )


def _unit(score: np.ndarray) -> np.ndarray:
    """A raw score squeezed into [0, 1] by rank, so the probability metrics accept it."""
    return pd.Series(score).rank(pct=True).to_numpy()


def _choose(evaluation: pd.DataFrame, best: str) -> tuple[str, str | None]:
    """The scorer that ships and, when it is a baseline, why in words."""
    floor = evaluation.loc[best, "roc_auc"] + MIN_AUC_GAIN
    learned = evaluation.loc[[MODEL, BLEND], "roc_auc"]
    winner = learned.idxmax()
    if learned[winner] >= floor:
        return str(winner), None
    return best, (
        f"the churn model's out-of-time ROC AUC {learned[MODEL]:.4f} (blend "
        f"{learned[BLEND]:.4f}) does not beat the best baseline, {best} "
        f"({evaluation.loc[best, 'roc_auc']:.4f}), by {MIN_AUC_GAIN}: churn probability = "
        f"{best} made a probability by isotonic calibration"
    )


def _stratified_rows(y: np.ndarray, limit: int | None, random_state: int) -> np.ndarray:
    """Sorted positions of at most ``limit`` rows, each class in its share of ``y``."""
    if limit is None or len(y) <= limit:
        return np.arange(len(y))
    rng = np.random.RandomState(random_state)
    picked = []
    for label in np.unique(y):
        where = np.flatnonzero(y == label)
        take = max(1, round(limit * len(where) / len(y)))
        picked.append(rng.choice(where, size=min(take, len(where)), replace=False))
    return np.sort(np.concatenate(picked))


#: The evidence metrics of every churn scorer (columns of ``ChurnResult.evaluation``).
EVIDENCE_METRICS = ("roc_auc", "pr_auc", "brier", "ece", "lift_top_decile", "churn_rate")


def churn_evidence(result: ChurnResult, cutoff, horizon_days: int) -> pd.DataFrame:
    """``result``'s out-of-time figures as rows of :data:`ml.evaluation.EVIDENCE_COLUMNS`.

    The shipped scorer has role ``production`` (a baseline too, when it is the
    fallback), the other learned scores ``candidate``, the rest ``baseline``.
    """
    if result.evaluation.empty:
        return no_evidence_rows(
            "churn", result.fallback or "not evaluated", horizon_days=horizon_days
        )
    parts = []
    for scorer, row in result.evaluation.iterrows():
        if scorer == result.production:
            role = "production"
        else:
            role = "candidate" if scorer in (MODEL, BLEND) else "baseline"
        parts.append(
            evidence_rows(
                "churn",
                str(scorer),
                {m: row[m] for m in EVIDENCE_METRICS},
                role=role,
                cutoff=cutoff,
                horizon_days=horizon_days,
                customers=int(row["n"]),
                note=(result.fallback or "") if role == "production" else "",
            )
        )
    return pd.concat(parts, ignore_index=True)
