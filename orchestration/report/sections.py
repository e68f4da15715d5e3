"""The business sections of the report: summary, campaign plan, segments, value and churn.

Each function takes the :class:`~orchestration.report.data.ReportData` (and the
charts / segment colours) and returns the section body as escaped HTML, with a
plain-language sentence instead of a chart when there is no data yet.
"""

from __future__ import annotations

import pandas as pd
from markupsafe import Markup

from orchestration.report.data import ReportData
from orchestration.report.markup import (
    cards,
    empty,
    fmt_amount,
    fmt_date,
    fmt_int,
    fmt_money,
    fmt_pct,
    heading,
    join,
    metric,
    para,
    swatch,
    table,
)

PLAYBOOK = "dbt_project/seeds/segment_actions.csv"
GLANCE_COLUMNS = [
    "Segment", "Customers", "Share", "Revenue ({cur})", "{period} CLV ({cur})", "Churn prob.",
    "Revenue at risk ({cur})",
]  # fmt: skip
PLAN_COLUMNS = [
    "#", "Action", "Segment", "Channel", "Customers", "Value at risk ({cur})", "Save rate",
    "Expected value ({cur})",
]  # fmt: skip


def _largest(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame.loc[frame[column].fillna(0).idxmax()]


def key_figures(d: ReportData) -> Markup:
    h = d.headline
    return cards(
        [
            ("Customers", metric("customers", h.customers, fmt_int(h.customers)), False),
            ("Segments", metric("segments", len(d.segments), fmt_int(len(d.segments))), False),
            (
                "Revenue to date",
                metric("revenue", h.revenue, fmt_money(h.revenue, d.currency)),
                False,
            ),
            (
                f"Predicted {d.clv_period} CLV",
                metric("clv", h.clv, fmt_money(h.clv, d.currency)),
                False,
            ),
            (
                f"Likely churners, {d.churn_span.removeprefix('next ')}",
                metric("expected-churners", h.expected_churners, fmt_int(h.expected_churners)),
                True,
            ),
            (
                "Revenue at risk",
                metric(
                    "revenue-at-risk", h.revenue_at_risk, fmt_money(h.revenue_at_risk, d.currency)
                ),
                True,
            ),
        ]
    )


def _segments_sentence(d: ReportData) -> Markup:
    h, seg = d.headline, d.segments
    largest, richest = _largest(seg, "customers"), _largest(seg, "revenue")
    algorithm = f" {d.segmentation_algorithm}" if d.segmentation_algorithm else ""
    return Markup(
        "Of {} customers with orders before {}, the{} segmentation finds {} segments. The "
        "largest is <strong>{}</strong> with {} customers ({}); the most valuable, "
        "<strong>{}</strong>, brings {} of all revenue with {} of the customers."
    ).format(
        fmt_int(h.customers),
        fmt_date(h.as_of_date),
        algorithm,
        len(seg),
        largest["segment_name"],
        fmt_int(largest["customers"]),
        fmt_pct(largest["customer_share"]),
        richest["segment_name"],
        fmt_pct(richest["revenue_share"]),
        fmt_pct(richest["customer_share"]),
    )


def _top_share(d: ReportData, column: str) -> tuple[pd.Series, float]:
    """The segment with the most of ``column`` and its share of the total."""
    top = _largest(d.segments, column)
    total = d.segments[column].sum()
    return top, (top[column] / total if total else float("nan"))


def _value_sentence(d: ReportData) -> Markup:
    top, share = _top_share(d, "clv")
    return Markup(
        "Customers have spent {} so far. Over the {} the models expect {} more "
        "(predicted customer lifetime value, discounted), {} of it from <strong>{}</strong>."
    ).format(
        fmt_money(d.headline.revenue, d.currency),
        d.clv_span,
        fmt_money(d.headline.clv, d.currency),
        fmt_pct(share),
        top["segment_name"],
    )


def _churn_sentence(d: ReportData) -> Markup:
    h = d.headline
    top, share = _top_share(d, "revenue_at_risk")
    return Markup(
        "Of {} customers, {} ({}) are likely to churn in the {}, putting {} of "
        "{} value at risk. {} customers are in the high-risk band. The most value at "
        "risk is in <strong>{}</strong>: {} ({} of the total)."
    ).format(
        fmt_int(h.customers),
        fmt_int(h.expected_churners),
        fmt_pct(h.expected_churners / h.customers),
        d.churn_span,
        fmt_money(h.revenue_at_risk, d.currency),
        d.clv_period,
        fmt_int(h.high_risk),
        top["segment_name"],
        fmt_money(top["revenue_at_risk"], d.currency),
        fmt_pct(share),
    )


def _p_alive_sentence(d: ReportData) -> Markup | None:
    """Why P(alive) is missing, when it is: a reader of dim_customer sees blanks otherwise."""
    h = d.headline
    if not h.p_alive_withheld:
        return None
    return Markup(
        "<strong>P(alive) is withheld</strong> for {} customers (the probability that a "
        "customer is still active is blank in the data): {}"
    ).format(fmt_int(h.p_alive_withheld), h.p_alive_note or "no reason recorded.")


def top_actions(d: ReportData) -> Markup:
    top = d.top_actions
    if top.empty:
        return empty(
            "No customer qualifies for a campaign yet (no segment in a campaign, or no "
            f"expected value of at least {d.currency.format(d.min_expected_value)})."
        )
    items = []
    for rank, a in enumerate(top.itertuples(), start=1):
        items.append(
            Markup(
                '<li data-metric="action" data-rank="{}"><strong>{}</strong> for <em>{}</em> '
                "({}): {} customers, expected value <strong>{}</strong> (assumed save rate {})."
                "</li>"
            ).format(
                rank,
                a.action,
                a.segment,
                a.channel,
                metric("action-customers", int(a.customers), fmt_int(a.customers), rank=rank),
                metric(
                    "action-value",
                    float(a.expected_value),
                    fmt_money(a.expected_value, d.currency),
                    rank=rank,
                ),
                fmt_pct(a.save_rate),
            )
        )
    customers, value = int(d.actions["customers"].sum()), float(d.actions["expected_value"].sum())
    total = Markup(
        "In all, {} customers are selected, with a total expected value of {}. Expected value "
        "= {} CLV × churn probability × assumed save rate: the value at risk an action is "
        "expected to keep. Customers below {} of expected value and segments the playbook "
        "keeps out of campaigns are left out."
    ).format(
        metric("targets-customers", customers, fmt_int(customers)),
        metric("targets-value", value, fmt_money(value, d.currency)),
        d.clv_period,
        metric("min-expected-value", d.min_expected_value, d.currency.format(d.min_expected_value)),
    )
    return join(Markup('<ol class="actions">{}</ol>').format(join(*items)), para(total, "note"))


def _actions_heading(n: int) -> str:
    if n == 1:
        return "The top action by expected value"
    return f"Top {n} actions by expected value" if n else "Top actions"


def summary(d: ReportData, colors: dict[str, str]) -> Markup:
    if d.headline.customers == 0 or d.segments.empty:
        return empty("No data yet: marts.dim_customer has no customers. Run the pipeline first.")
    rows = [
        [
            swatch(s.segment_name, colors[s.segment_name]),
            metric(
                "segment-customers", int(s.customers), fmt_int(s.customers), segment=s.segment_name
            ),
            fmt_pct(s.customer_share),
            fmt_amount(s.revenue),
            fmt_amount(s.clv),
            fmt_pct(s.mean_churn_probability),
            fmt_amount(s.revenue_at_risk),
        ]
        for s in d.segments.itertuples()
    ]
    return join(
        key_figures(d),
        para(_segments_sentence(d), "lead"),
        para(_value_sentence(d)),
        para(_churn_sentence(d)),
        *([para(p)] if (p := _p_alive_sentence(d)) else []),
        heading(_actions_heading(len(d.top_actions))),
        top_actions(d),
        heading("Segments at a glance"),
        table(
            [c.format(period=d.clv_period, cur=d.currency.code) for c in GLANCE_COLUMNS],
            rows,
            num=range(1, 7),
        ),
    )


def campaign(d: ReportData, colors: dict[str, str]) -> Markup:
    """Every (action, segment) of mart_campaign_targets and the playbook's assumptions."""
    if d.segments.empty:
        return empty("No data yet: marts.dim_segment has no segments.")
    plan = (
        table(
            [c.format(cur=d.currency.code) for c in PLAN_COLUMNS],
            [
                [
                    i,
                    a.action,
                    swatch(a.segment, colors.get(a.segment, "#999")),
                    a.channel,
                    fmt_int(a.customers),
                    fmt_amount(a.value_at_risk),
                    fmt_pct(a.save_rate),
                    fmt_amount(a.expected_value),
                ]
                for i, a in enumerate(d.actions.itertuples(), start=1)
            ],
            num=(0, 4, 5, 6, 7),
        )
        if not d.actions.empty
        else empty("No customers are selected for a campaign in this run.")
    )
    assumptions = table(
        ["Segment", "Recommended action", "Channel", "Priority", "Save rate", "In campaign"],
        [
            [
                swatch(s.segment_name, colors[s.segment_name]),
                s.recommended_action,
                s.channel,
                s.campaign_priority,
                fmt_pct(s.save_rate),
                "yes" if s.in_campaign else "no",
            ]
            for s in d.segments.itertuples()
        ],
        num=(4,),
    )
    return join(
        para(
            "Customers are selected per segment by the campaign playbook and ranked by expected "
            f"value. Value at risk = {d.clv_period} CLV × churn probability, summed over the "
            "selected customers; the save rate is the share of it the action is assumed to keep."
        ),
        plan,
        heading("Assumptions"),
        para(
            Markup(
                "Save rates and actions come from the editable playbook <code>{}</code>; the "
                "minimum expected value per customer is {} (project config "
                "<code>campaign.min_expected_value</code>). They are assumptions: measure the "
                "real save rate with a control group and update the playbook."
            ).format(PLAYBOOK, d.currency.format(d.min_expected_value)),
            "note",
        ),
        assumptions,
    )
