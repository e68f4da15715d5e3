"""The report section "How good are these numbers?": each model next to a simple rule.

Reads ``marts.mart_model_evaluation`` (one row per model family, candidate and metric;
the production value and the best baseline value side by side). Per family it says,
in words, how the production model did on its main metric at the evaluation cut-off,
what the best simple rule got, and the note when the family was not evaluated or
the figures are not out of time. The rows flow through as written by the refits, so
a new metric or baseline shows up without a change here; only its wording is nicer
when it has an entry in the label tables below.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from markupsafe import Markup

from orchestration.report.markup import empty, fmt_date, fmt_int, join, metric, para, table

FAMILIES = {
    "segmentation": "The segmentation",
    "purchases": "The purchase forecast",
    "p_alive": "The probability that a customer is still active (P(alive))",
    "spend": "The spend per purchase",
    "clv": "The customer lifetime value (CLV)",
    "churn": "The churn score",
}
#: The metric each family is summed up by, in order of preference; otherwise the first
#: production metric that has a baseline, otherwise the first production metric.
MAIN_METRICS = {
    "churn": ("roc_auc",),
    "p_alive": ("roc_auc",),
    "purchases": ("mae", "spearman"),
    "spend": ("mae", "spearman"),
    "clv": ("spearman", "top_share_captured", "mae"),
    "segmentation": ("eta_squared_churn", "eta_squared", "silhouette"),
}
METRICS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "brier": "Brier score",
    "lift_top_decile": "lift in the top 10%",
    "silhouette": "silhouette",
    "stability": "stability",
    "spearman": "rank correlation",
    "mae": "mean absolute error",
}
BASELINES = {
    "p_alive_baseline": "1 − P(alive) from the BG/NBD model alone",
    "p_no_purchase_baseline": "the BG/NBD probability of no purchase alone",
    "days_since_last_purchase": "days since the last purchase alone",
    "recency_days": "days since the last purchase alone",
}
WHAT = {
    "churn": "ranks who will not buy again in the {h} days after the cut-off",
    "p_alive": "ranks who is still active in the {h} days after the cut-off",
    "purchases": "forecasts purchases in the {h} days after the cut-off",
    "spend": "forecasts what a customer spends per purchase day in the {h} days after the cut-off",
    "clv": "ranks customers by their spend in the {h} days after the cut-off",
}
COLUMNS = [
    "Model", "Candidate", "Metric", "Value", "Best simple rule", "Rule's value", "Better?",
    "Cut-off", "Horizon", "Customers",
]  # fmt: skip

INTRO = (
    "Each model is judged on what happened after an earlier cut-off: it is fitted on the "
    "customers as they were then and scored on what they did in the horizon that followed, "
    "next to simple rules anyone could apply. Where a model does not beat the rule, trust "
    "the rule."
)


def _flag(value) -> bool | None:
    """A nullable boolean from the warehouse as True / False / None."""
    return None if value is None or pd.isna(value) else bool(value)


def _label(table: dict[str, str], key: str) -> str:
    return table.get(key, key.replace("_", " "))


def _number(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.2f}"


def main_row(rows: pd.DataFrame) -> pd.Series | None:
    """The production row of one family that sums it up (see MAIN_METRICS)."""
    production = rows[(rows["role"] == "production") & rows["value"].notna()]
    if production.empty:
        return None
    family = production["model_family"].iloc[0]
    for name in MAIN_METRICS.get(family, ()):
        hit = production[production["metric"] == name]
        if not hit.empty:
            return hit.iloc[0]
    compared = production[production["best_baseline_value"].notna()]
    return (compared if not compared.empty else production).iloc[0]


def _when(row: pd.Series) -> str:
    cutoff = row["cutoff_date"]
    if cutoff is None or pd.isna(cutoff):
        return ""
    when = f"cut-off {fmt_date(pd.Timestamp(cutoff).date())}"
    if not pd.isna(row["horizon_days"]):
        when += f", outcomes over the next {int(row['horizon_days'])} days"
    return f" ({when}, {fmt_int(row['customers'])} customers)"


def family_sentence(family: str, rows: pd.DataFrame) -> Markup:
    """One plain sentence on how far to trust ``family``'s figures."""
    name = _label(FAMILIES, family)
    gone = rows[[_flag(x) is True for x in rows["is_not_evaluated"]]]
    if not gone.empty:
        note = gone["note"].iloc[0] or "no reason recorded"
        return Markup("{} was <strong>{}</strong>: {}.").format(
            name, metric("evidence-not-evaluated", None, "not evaluated", family=family), note
        )
    row = main_row(rows)
    if row is None:
        return Markup("{} has no figures yet.").format(name)
    horizon = 0 if pd.isna(row["horizon_days"]) else int(row["horizon_days"])
    what = WHAT.get(family, "scores")
    value = metric(
        "evidence-production", row["value"], _number(row["value"]), family=family,
        evidence_metric=row["metric"],
    )  # fmt: skip
    text = Markup("{} ({}) {} with {} {}{}").format(
        name,
        row["candidate"],
        what.format(h=horizon) if "{h}" in what else what,
        _label(METRICS, row["metric"]),
        value,
        _when(row),
    )
    if pd.isna(row["best_baseline_value"]):
        note = row["note"] or "no simple rule to compare with"
        return text + Markup("; {}.").format(note)
    rule = metric(
        "evidence-baseline", row["best_baseline_value"], _number(row["best_baseline_value"]),
        family=family, evidence_metric=row["metric"],
    )  # fmt: skip
    verdict = (
        "the model does better"
        if _flag(row["beats_best_baseline"])
        else "the model does <strong>not</strong> do better: trust the rule"
    )
    return text + Markup("; {} gets {}: {}.").format(
        _label(BASELINES, row["best_baseline"]), rule, Markup(verdict)
    )


def _table_rows(evaluation: pd.DataFrame, order: list[str]) -> list[list]:
    rows = []
    production = evaluation[evaluation["role"] == "production"]
    rank = production["model_family"].map({f: i for i, f in enumerate(order)})
    for r in production.assign(_rank=rank).sort_values(["_rank", "metric"]).itertuples(index=False):
        if _flag(r.is_not_evaluated):
            continue
        cutoff = None if pd.isna(r.cutoff_date) else pd.Timestamp(r.cutoff_date).date()
        beats = {True: "yes", False: "no"}.get(_flag(r.beats_best_baseline), "–")
        rows.append(
            [
                _label(FAMILIES, r.model_family).removeprefix("The "),
                r.candidate,
                _label(METRICS, r.metric),
                _number(r.value),
                "–" if pd.isna(r.best_baseline) else _label(BASELINES, r.best_baseline),
                _number(r.best_baseline_value),
                beats,
                fmt_date(cutoff) if isinstance(cutoff, date) else "–",
                "–" if pd.isna(r.horizon_days) else f"{int(r.horizon_days)} days",
                fmt_int(r.customers),
            ]
        )
    return rows


def model_evidence(evaluation: pd.DataFrame) -> Markup:
    """The section body: an intro, one sentence per family, the production figures."""
    if evaluation.empty:
        return empty("No model has been judged yet: run the refit (job `refit_models`).")
    order = [f for f in FAMILIES if f in set(evaluation["model_family"])]
    order += sorted(set(evaluation["model_family"]) - set(order))
    items = Markup("").join(
        Markup("<li>{}</li>").format(
            family_sentence(f, evaluation[evaluation["model_family"] == f])
        )
        for f in order
    )
    rows = _table_rows(evaluation, order)
    parts = [para(INTRO), Markup('<ul class="evidence">{}</ul>').format(items)]
    if rows:
        parts.append(table(COLUMNS, rows, num=(3, 5, 9)))
    return join(*parts)
