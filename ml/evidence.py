"""Evidence rows (ml.evaluation.EVIDENCE_COLUMNS) from what the refits compute today.

Each refit asset writes its own evidence table: ``segmentation_model`` writes
ml.segmentation_evidence (:func:`ml.segmentation.evidence.segmentation_evidence`),
``value_models`` writes ml.value_evidence: the purchase, P(alive), spend and CLV rows of
:mod:`ml.value_evaluation` and the churn rows built here. A family that is not judged,
or whose history is too short for a complete horizon, gets
:func:`ml.evaluation.no_evidence_rows` with the reason, so every place that shows the
figures says so.

Pure library (pandas); no Dagster.
"""

from __future__ import annotations

import pandas as pd

from ml.evaluation import EVIDENCE_COLUMNS, no_evidence_rows

__all__ = [
    "not_judged_yet",
    "value_evidence",
]

#: Families of ml.value_evidence that have no out-of-time evaluation yet.
VALUE_FAMILIES_NOT_JUDGED = ("purchases", "p_alive", "spend", "clv")


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=EVIDENCE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[EVIDENCE_COLUMNS]


def not_judged_yet(families: tuple[str, ...], *, horizon_days: int | None) -> pd.DataFrame:
    """One ``not_evaluated`` row per family that has no out-of-time evaluation yet."""
    return _concat(
        [
            no_evidence_rows(f, "not judged out of time yet", horizon_days=horizon_days)
            for f in families
        ]
    )


def value_evidence(
    value_rows: pd.DataFrame | None, churn_rows: pd.DataFrame, *, horizon: int
) -> pd.DataFrame:
    """ml.value_evidence: the purchase, P(alive), spend and CLV rows (``value_rows``; a "not
    evaluated" row per family when there are none) and the churn rows
    (:func:`ml.churn.churn_evidence`)."""
    judged = value_rows is not None and not value_rows.empty
    return _concat(
        [
            value_rows
            if judged
            else not_judged_yet(VALUE_FAMILIES_NOT_JUDGED, horizon_days=horizon),
            churn_rows,
        ]
    )
