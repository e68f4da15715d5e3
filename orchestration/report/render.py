"""Assemble the HTML report: charts, sections and the page around them."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from markupsafe import Markup

from orchestration.report import analysis, charts, evidence, heatmaps, quality, sections
from orchestration.report.data import ReportData
from orchestration.report.markup import ENV, fmt_date
from orchestration.report.template import CSS, TEMPLATE

TITLE = "Customer segmentation report"
PAGE = ENV.from_string(TEMPLATE)


class Section(NamedTuple):
    id: str
    title: str
    body: Markup


def colors_for(d: ReportData) -> dict[str, str]:
    """A fixed colour per segment (cluster_id order), shared by every chart and table."""
    seg = d.segments
    if seg.empty:
        return {}
    noise = set(seg.loc[seg["is_noise"].fillna(False).astype(bool), "segment_name"])
    return charts.segment_colors(list(seg["segment_name"]), noise)


def make_charts(d: ReportData, colors: dict[str, str]) -> dict[str, str | None]:
    """Every chart of the report as an SVG string (None when there is no data for it)."""
    return {
        "profiles": charts.segment_profiles(d.segments, colors, d.clv_period),
        "rfm": heatmaps.rfm_heatmap(d.rfm),
        "clv": charts.clv_histogram(d.clv, colors, d.clv_period, d.clv_span),
        "churn": charts.churn_trend(d.churn_trend, colors),
        "drivers": charts.drivers_chart(d.drivers),
        "cohorts": heatmaps.cohort_heatmap(d.cohorts),
        "migration": heatmaps.migration_matrix(d.migration, list(colors)),
    }


def build_sections(d: ReportData, svg: dict, colors: dict[str, str]) -> list[Section]:
    return [
        Section("summary", "Executive summary", sections.summary(d, colors)),
        Section("campaign", "Campaign plan", sections.campaign(d, colors)),
        Section("segments", "Segment profiles", analysis.segments(d, svg, colors)),
        Section("rfm", "RFM: recency × frequency", analysis.rfm(d, svg)),
        Section("value", "Customer lifetime value", analysis.value(d, svg)),
        Section("churn", "Churn outlook and drivers", analysis.churn(d, svg)),
        Section("retention", "Cohort retention", analysis.retention(d, svg)),
        Section("migration", "Segment migration", analysis.migration(d, svg)),
        Section("evidence", "How good are these numbers?", evidence.model_evidence(d.evaluation)),
        Section("quality", "Data quality", quality.data_quality(d)),
        Section("about", "About this report", quality.about(d)),
    ]


def _chips(d: ReportData) -> list[str]:
    h = d.headline
    chips = [f"{h.customers:,} customers", f"{len(d.segments)} segments"]
    if d.segmentation_algorithm:
        chips.append(
            f"segmentation: {d.segmentation_algorithm} {h.segmentation_model_version or ''}"
        )
    for name, days in (("churn", h.churn_horizon_days), ("CLV", h.clv_horizon_days)):
        if days is not None:
            chips.append(f"{name} horizon {days} days")
    return chips


def _header_links(d: ReportData) -> list[dict]:
    labels = {"powerbi": "Power BI export", "data_docs": "Data quality (Data Docs)"}
    return [{"href": d.links[k], "text": text} for k, text in labels.items() if d.links.get(k)]


def render_report(d: ReportData, run_id: str, generated_at: datetime) -> str:
    """The whole report as one self-contained HTML page."""
    colors = colors_for(d)
    svg = make_charts(d, colors)
    return PAGE.render(
        title=TITLE,
        css=Markup(CSS),
        as_of=fmt_date(d.headline.as_of_date),
        generated=f"{generated_at:%Y-%m-%d %H:%M} UTC",
        run_id=run_id[:8],
        chips=_chips(d),
        header_links=_header_links(d),
        sections=build_sections(d, svg, colors),
    )
