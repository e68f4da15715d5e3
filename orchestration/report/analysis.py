"""The analysis sections: segment profiles, RFM, value, churn, retention and migration.

Each returns the section body (chart + a short explanation for a marketer); the
charts are SVG strings made by :mod:`orchestration.report.charts` and
:mod:`orchestration.report.heatmaps`, ``None`` when there was nothing to draw.
"""

from __future__ import annotations

import numpy as np
from markupsafe import Markup

from orchestration.report.data import ReportData
from orchestration.report.markup import (
    empty,
    figure,
    fmt_amount,
    fmt_date,
    fmt_int,
    fmt_money,
    fmt_pct,
    join,
    para,
    swatch,
    table,
)

# Per chart: the explanation under it, and the sentence shown instead when it has no data.
CAPTIONS = {
    "profiles": (
        "How big each segment is, and how much of today's revenue and of the predicted value "
        "over the {clv_span} it holds. A segment whose value share is far above its customer "
        "share deserves protection; the reverse is a growth or cost question.",
        "",
    ),
    "rfm": (
        "RFM scores rank every customer from 1 to 5 on Recency (how recently they bought) and "
        "Frequency (how often). Each cell counts the customers with that pair of scores; the "
        "second line is their mean spend. Top right are the best, most engaged customers; "
        "bottom left, one-off buyers who have not come back; top left, good customers who "
        "have gone quiet and are worth a win-back.",
        "No data yet: no RFM scores in marts.dim_customer.",
    ),
    "clv": (
        "Predicted customer lifetime value (CLV) for the {clv_span}: expected purchases "
        "(BG/NBD model) × expected spend per purchase (Gamma-Gamma model), discounted. Most "
        "customers are worth little; a long tail of valuable ones carries the business.",
        "No data yet: no CLV in marts.dim_customer.",
    ),
    "churn": (
        "Predicted churn per segment at each run date: the mean probability that a customer "
        "places no order in the {churn_span}, and the value at risk over the {clv_span} (CLV "
        "× churn probability). {history}",
        "No data yet: marts.mart_churn_by_segment is empty.",
    ),
    "drivers": (
        "Which customer facts move the churn prediction most: the drop in the model's "
        "accuracy (ROC AUC) on held-out customers when one input is shuffled. The longest "
        "bars are the signals to watch, and to time retention contacts on.",
        "No churn drivers yet: with too little history the churn probability falls back to "
        "the BG/NBD model, which has no drivers.",
    ),
    "cohorts": (
        "Customers grouped by the month of their first order (rows); each cell is the share "
        "of them who ordered again that many months later. Read across a row to see how fast "
        "a cohort fades, down a column to compare cohorts: darker means better retention "
        "(month 0 is always 100 %; the colour scale is set by the later months).",
        "No data yet: marts.mart_cohort_retention is empty.",
    ),
    "migration": (
        "Each row is a segment at the earlier run; each cell the share (and number) of its "
        "customers found in the column's segment at the later run. The diagonal is "
        "stability; moves towards lapsing segments are early churn warnings.",
        "No data yet: segment migration compares two runs (snapshot dates), and this is the "
        "first one. The next run shows where each segment's customers went.",
    ),
}
PROFILE_COLUMNS = [
    "Segment", "Customers", "Customers %", "Revenue %", "Days since last order", "Orders",
    "Spend / customer ({cur})", "CLV / customer ({cur})", "Churn prob.",
]  # fmt: skip


def chart(charts: dict, name: str, **fields) -> Markup:
    """The chart ``name`` with its caption (``fields`` fill its placeholders)."""
    caption, missing = CAPTIONS[name]
    return figure(name, charts.get(name), caption.format(**fields), missing)


def segments(d: ReportData, charts: dict, colors: dict[str, str]) -> Markup:
    if d.segments.empty:
        return empty("No data yet: marts.dim_segment has no segments.")
    rows = [
        [
            swatch(s.segment_name, colors[s.segment_name]),
            fmt_int(s.customers),
            fmt_pct(s.customer_share),
            fmt_pct(s.revenue_share),
            fmt_amount(s.mean_recency_days),
            fmt_amount(s.mean_frequency, 1),
            fmt_amount(s.mean_monetary_total),
            fmt_amount(s.mean_clv),
            fmt_pct(s.mean_churn_probability),
        ]
        for s in d.segments.itertuples()
    ]
    return join(
        para(
            "Segments group customers who buy in a similar way (how recently, how often, how "
            "much, and how their spending moves). Each segment keeps its colour in every chart."
        ),
        chart(charts, "profiles", clv_span=d.clv_span),
        table([c.format(cur=d.currency.code) for c in PROFILE_COLUMNS], rows, num=range(1, 9)),
    )


def rfm(d: ReportData, charts: dict) -> Markup:
    return chart(charts, "rfm")


def value(d: ReportData, charts: dict) -> Markup:
    clv = d.clv["clv"].dropna().to_numpy() if not d.clv.empty else np.zeros(0)
    if not (clv.size and clv.sum() > 0):
        return chart(charts, "clv", clv_span=d.clv_span)
    top = np.sort(clv)[::-1][: max(1, clv.size // 10)]
    intro = Markup(
        "The median customer is expected to spend {} over the {}; the top 10 % "
        "of customers account for {} of the predicted value."
    ).format(
        fmt_money(float(np.median(clv)), d.currency), d.clv_span, fmt_pct(top.sum() / clv.sum())
    )
    return join(para(intro), chart(charts, "clv", clv_span=d.clv_span))


def churn(d: ReportData, charts: dict) -> Markup:
    trend = d.churn_trend
    dates = trend["snapshot_date"].nunique() if not trend.empty else 0
    history = (
        "With one run so far there is one point per segment; each daily run adds one."
        if dates == 1
        else f"{dates} runs so far."
    )
    observed = trend.dropna(subset=["churned_share"]) if not trend.empty else trend
    check = (
        para(
            Markup(
                "For {} snapshot date(s) the horizon is over and the actual churn is known: "
                "see <code>marts.mart_churn_by_segment.churned_share</code>."
            ).format(observed["snapshot_date"].nunique())
        )
        if not observed.empty
        else ""
    )
    return join(
        chart(charts, "churn", churn_span=d.churn_span, clv_span=d.clv_span, history=history),
        check,
        chart(charts, "drivers"),
    )


def retention(d: ReportData, charts: dict) -> Markup:
    return chart(charts, "cohorts")


def migration(d: ReportData, charts: dict) -> Markup:
    m = d.migration
    if m.empty:
        return chart(charts, "migration")
    stayed = m.loc[m["from_segment"] == m["to_segment"], "customers"].sum()
    known = m.loc[m["from_segment"] != "(new customer)", "customers"].sum()
    moved = Markup("From {} to {}, {} of the existing customers ({}) stayed in their segment.")
    return join(
        para(
            moved.format(
                fmt_date(m["from_snapshot_date"].iloc[0]),
                fmt_date(m["to_snapshot_date"].iloc[0]),
                fmt_int(stayed),
                fmt_pct(stayed / known if known else float("nan")),
            )
        ),
        chart(charts, "migration"),
    )
