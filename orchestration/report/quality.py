"""The trust sections: data quality (load reconciliation, quarantine, Great Expectations)
and "about this report" (model versions, definitions, where the files are)."""

from __future__ import annotations

import json
from pathlib import PurePath

import pandas as pd
from markupsafe import Markup

from orchestration.report.data import ReportData
from orchestration.report.markup import empty, fmt_int, heading, join, para, table

MODEL_NAMES = {
    "bg_nbd": "BG/NBD (purchases, probability alive)",
    "mbg_nbd": "MBG/NBD (purchases, probability alive)",
    "pareto_nbd": "Pareto/NBD (purchases, probability alive)",
    "gamma_gamma": "Gamma-Gamma (spend per purchase)",
    "shrunk_mean_spend": "Shrunk mean spend (spend per purchase)",
    "churn_classifier": "Churn classifier",
}


def _ingest(load: pd.DataFrame) -> Markup:
    if load.empty:
        return empty("No data yet: no load is recorded in raw.load_log.")
    ok = load["rows_read"] == load["rows_loaded"] + load["rows_rejected"]
    verdict = (
        "every file reconciles (rows read = loaded + quarantined)"
        if ok.all()
        else f"{int((~ok).sum())} file(s) do NOT reconcile: rows read ≠ loaded + quarantined"
    )
    sentence = Markup(
        "The last load read {} rows from {} file(s): {} loaded and {} quarantined; {}."
    ).format(
        fmt_int(load["rows_read"].sum()),
        len(load),
        fmt_int(load["rows_loaded"].sum()),
        fmt_int(load["rows_rejected"].sum()),
        verdict,
    )
    rows = [
        [
            r.source,
            PurePath(str(r.file)).name,
            fmt_int(r.rows_read),
            fmt_int(r.rows_loaded),
            fmt_int(r.rows_rejected),
            _status(good, "reconciles", "mismatch"),
        ]
        for r, good in zip(load.itertuples(), ok, strict=True)
    ]
    return join(
        para(sentence),
        table(["Source", "File", "Rows read", "Loaded", "Quarantined", "Check"], rows, (2, 3, 4)),
    )


def _quarantine(q: pd.DataFrame) -> Markup:
    if q.empty:
        return para("No rows were quarantined in the last load.")
    rows = [[r.source, r.reason, fmt_int(r.rows)] for r in q.head(15).itertuples()]
    more = f" (the 15 largest of {len(q)} reasons shown)" if len(q) > 15 else ""
    return join(
        para(
            f"{fmt_int(q['rows'].sum())} rows were set aside with a reason{more}; they are in "
            "raw.quarantine_<source> with the file and row number."
        ),
        table(["Source", "Reason", "Rows"], rows, (2,)),
    )


def _status(good: bool, yes: str, no: str, warn: bool = False) -> Markup:
    cls = "warn" if good and warn else "ok" if good else "bad"
    return Markup('<span class="status {}">{}</span>').format(cls, no if not good else yes)


def _expectation(failed: dict) -> str:
    """expect_column_values_to_be_between + monetary_total -> readable, and it can wrap."""
    name = str(failed.get("expectation", "")).removeprefix("expect_").replace("_", " ")
    return f"{name} ({failed['column']})" if failed.get("column") else name


def _verdict(validations: list[dict]) -> str:
    failed = sum(not v.get("passed") for v in validations)
    warned = sum(bool(v.get("passed") and v.get("failed")) for v in validations)
    if failed:
        return f"{failed} of {len(validations)} suites failed at their last run."
    if warned:
        return f"All {len(validations)} suites passed; {warned} with warnings."
    return f"All {len(validations)} suites passed every expectation."


def _validations(d: ReportData) -> Markup:
    if not d.validations:
        return empty("No data yet: no Great Expectations results have been recorded.")
    rows = []
    for v in d.validations:
        failed = v.get("failed") or []
        names = Markup('<span class="wrap">{}</span>').format(
            Markup("<br>").join(_expectation(f) for f in failed)
        )
        rows.append(
            [
                v.get("suite"),
                v.get("table"),
                fmt_int(v.get("rows")),
                fmt_int(v.get("rows_validated")),
                fmt_int(v.get("expectations")),
                _status(
                    bool(v.get("passed")),
                    "warnings" if failed else "passed",
                    "failed",
                    warn=bool(failed),
                ),
                names if failed else "–",
                str(v.get("validated_at", ""))[:19].replace("T", " "),
            ]
        )
    docs = d.links.get("data_docs")
    link = (
        Markup(
            'Full results, expectation by expectation: <a href="{}">Great Expectations Data Docs</a>.'
        ).format(docs)
        if docs
        else "The Data Docs have not been built."
    )
    return join(
        para(
            "Every stage is checked by a Great Expectations suite before the next one runs: a "
            "failed critical expectation stops the pipeline, warnings are reported and do not "
            f"block. {_verdict(d.validations)}"
        ),
        table(
            ["Suite", "Table", "Rows", "Validated", "Expectations", "Result", "Failed", "At (UTC)"],
            rows,
            (2, 3, 4),
        ),
        para(link, "note"),
    )


def data_quality(d: ReportData) -> Markup:
    return join(
        heading("Ingest reconciliation"),
        _ingest(d.load_log),
        heading("Quarantine"),
        _quarantine(d.quarantine),
        heading("Great Expectations"),
        _validations(d),
    )


def _model_detail(model: str, params: str, metrics: str) -> str:
    p, m = json.loads(params or "{}"), json.loads(metrics or "{}")
    if model == "churn_classifier":
        if "fallback" in p:
            return f"fallback: {p['fallback']}"
        auc = (m.get("out_of_time") or {}).get("churn_model", {}).get("roc_auc")
        detail = p.get("estimator", "")
        return f"{detail}; out-of-time ROC AUC {auc:.3f}" if auc is not None else detail
    fitted = ", ".join(f"{k} = {v:.3g}" for k, v in sorted((p.get("params") or {}).items()))
    return fitted + ("" if p.get("converged", True) else " (did not converge)")


def about(d: ReportData) -> Markup:
    h = d.headline
    rows = [["Segmentation", d.segmentation_algorithm or "–", h.segmentation_model_version or "–"]]
    rows += [
        [
            MODEL_NAMES.get(r.model, r.model),
            _model_detail(r.model, r.params, r.metrics),
            f"{pd.Timestamp(r.trained_at):%Y-%m-%d %H:%M} (run {str(r.run_id)[:8]})",
        ]
        for r in d.models.itertuples()
    ]
    glossary = [
        [
            "RFM",
            "Recency, Frequency, Monetary: scores 1–5 for how recently, how often and how "
            "much a customer bought.",
        ],
        [
            "CLV",
            f"Customer lifetime value: the predicted, discounted spend over the {d.clv_span}.",
        ],
        [
            "Churn probability",
            f"The chance of no order in the {d.churn_span} "
            "(calibrated: 0.3 means 3 in 10 such customers churn).",
        ],
        ["Revenue at risk", "CLV × churn probability: the predicted value that churn would lose."],
        ["Expected value", "Revenue at risk × assumed save rate: what a campaign should keep."],
    ]
    return join(
        table(["Model", "Details", "Version / trained"], rows),
        heading("Definitions"),
        table(["Term", "Meaning"], glossary),
        para(
            "All numbers come from the dbt marts (schema marts) of the DuckDB warehouse, the "
            "ML tables (schema ml) and the load log (raw.load_log) of the same run.",
            "note",
        ),
    )
