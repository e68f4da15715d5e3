"""ml.value_evidence rows: judged families as given, the others said to be not evaluated."""

from __future__ import annotations

import datetime as dt

from ml.evaluation import evidence_rows, no_evidence_rows
from ml.evidence import value_evidence


def test_families_without_rows_say_not_evaluated_and_churn_rows_pass_through() -> None:
    churn = no_evidence_rows("churn", "only 12 labelled customers (< 200)", horizon_days=90)
    rows = value_evidence(None, churn, horizon=90)
    assert list(rows["model_family"]) == ["purchases", "p_alive", "spend", "clv", "churn"]
    assert set(rows["metric"]) == {"not_evaluated"} and rows["value"].isna().all()
    assert rows.iloc[-1]["note"] == "only 12 labelled customers (< 200)"


def test_judged_value_rows_replace_the_not_evaluated_ones() -> None:
    judged = evidence_rows(
        "p_alive", "pareto_nbd", {"roc_auc": 0.72}, role="production",
        cutoff=dt.date(1997, 10, 1), horizon_days=273, customers=23_570,
    )  # fmt: skip
    churn = no_evidence_rows("churn", "fallback", horizon_days=273)
    rows = value_evidence(judged, churn, horizon=273)
    assert list(rows["model_family"]) == ["p_alive", "churn"]
    assert rows.iloc[0]["value"] == 0.72
