"""Evidence rows (ml.evaluation.EVIDENCE_COLUMNS) from what the refits compute today.

Each refit asset writes its own evidence table: ``segmentation_model`` writes
ml.segmentation_evidence (:func:`ml.segmentation.selection.segmentation_evidence`),
``value_models`` writes ml.value_evidence: the purchase, P(alive) and CLV rows of
:mod:`ml.value_evaluation` and the churn rows built here. A family that is not judged,
or whose history is too short for a complete horizon, gets
:func:`ml.evaluation.no_evidence_rows` with the reason, so every place that shows the
figures says so.

Pure library (pandas); no Dagster.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ml.evaluation import EVIDENCE_COLUMNS, evidence_rows, no_evidence_rows

__all__ = [
    "churn_evidence",
    "not_judged_yet",
    "value_evidence",
]

#: Families of ml.value_evidence that have no out-of-time evaluation yet.
VALUE_FAMILIES_NOT_JUDGED = ("purchases", "p_alive", "clv")

#: Rows of the churn evaluation (ml.churn.compare_with_baseline) and their role.
CHURN_ROLES = {
    "churn_model": "production",
    "p_alive_baseline": "baseline",
    "p_no_purchase_baseline": "baseline",
}
CHURN_METRICS = ("roc_auc", "pr_auc", "brier", "lift_top_decile")


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=EVIDENCE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[EVIDENCE_COLUMNS]


def churn_evidence(
    evaluation: pd.DataFrame,
    *,
    fallback: str | None,
    cutoff: dt.date,
    horizon_days: int,
) -> pd.DataFrame:
    """Rows of the churn model and its baselines on the evaluation cut-off.

    ``evaluation`` is indexed by scorer (``churn_model``, ``p_alive_baseline``,
    ``p_no_purchase_baseline``) with the columns of :func:`ml.churn.evaluate_churn`.
    With a ``fallback`` (too few labelled customers at the cut-off, or one class only)
    there is no out-of-time figure: one ``not_evaluated`` row with the reason.
    """
    if fallback or evaluation.empty:
        # The fallback text says what ships instead (e.g. "141 labelled customers < 200:
        # churn probability = BG/NBD P(no purchase in 90 d)"), so it is the note as is.
        reason = fallback or "no out-of-time evaluation"
        return no_evidence_rows("churn", reason, horizon_days=horizon_days)
    frames = []
    for scorer, row in evaluation.iterrows():
        role = CHURN_ROLES.get(str(scorer), "candidate")
        metrics = {m: row[m] for m in CHURN_METRICS if m in row.index}
        frames.append(
            evidence_rows(
                "churn",
                str(scorer),
                metrics,
                role=role,
                cutoff=cutoff,
                horizon_days=horizon_days,
                customers=int(row["n"]) if "n" in row.index else 0,
            )
        )
    return _concat(frames)


def not_judged_yet(families: tuple[str, ...], *, horizon_days: int | None) -> pd.DataFrame:
    """One ``not_evaluated`` row per family that has no out-of-time evaluation yet."""
    return _concat(
        [
            no_evidence_rows(f, "not judged out of time yet", horizon_days=horizon_days)
            for f in families
        ]
    )


def value_evidence(
    value_rows: pd.DataFrame | None,
    churn_evaluation: pd.DataFrame,
    *,
    fallback: str | None,
    cutoff: dt.date,
    horizon: int,
) -> pd.DataFrame:
    """ml.value_evidence: the purchase, P(alive) and CLV rows (``value_rows``; a "not
    evaluated" row per family when there are none) and the churn model against its
    baselines."""
    judged = value_rows is not None and not value_rows.empty
    return _concat(
        [
            value_rows
            if judged
            else not_judged_yet(VALUE_FAMILIES_NOT_JUDGED, horizon_days=horizon),
            churn_evidence(
                churn_evaluation, fallback=fallback, cutoff=cutoff, horizon_days=horizon
            ),
        ]
    )
