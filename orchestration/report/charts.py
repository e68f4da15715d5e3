"""The report's charts: matplotlib figures rendered as inline SVG strings.

This module holds the shared style and the SVG clean-up, and the bar and line
charts; the heat maps are in :mod:`orchestration.report.heatmaps`.

Text stays text (``svg.fonttype = none``) in the page's own font stack, element
ids are prefixed per chart so several SVGs can share one HTML page, and every
chart function returns ``None`` when it has nothing to draw.
"""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: the report renders on servers

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

FONT_STACK = ["Segoe UI", "Helvetica Neue", "Arial", "Liberation Sans", "DejaVu Sans"]
INK, MUTED, GRID = "#1f2933", "#616e7c", "#e4e7eb"
# Qualitative, distinct on screen and in print; given to segments in cluster_id order.
PALETTE = [
    "#1b6ca8",
    "#e07a1f",
    "#2a9d8f",
    "#c2410c",
    "#7b5ea7",
    "#c9a227",
    "#d1495b",
    "#3d7d3a",
    "#8c564b",
    "#4e6e81",
]
NEUTRAL = "#9aa5b1"  # noise group, new / gone customers

RC = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": FONT_STACK,
    "font.size": 10.5,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "axes.titlesize": 11.5,
    "axes.titleweight": "bold",
    "axes.titlecolor": INK,
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
    "text.parse_math": False,  # a "$" in a segment or feature name is text, not TeX
}

_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_STYLE = re.compile(r"<style[^>]*>.*?</style>\s*", re.S)
_ID_REFS = re.compile(r'(\bid="|href="#|url\(#)([^")]+)')


def segment_colors(names: list[str], noise: set[str] = frozenset()) -> dict[str, str]:
    """One colour per segment name, in the given order; the noise group is grey."""
    colors, i = {}, 0
    for name in names:
        if name in noise:
            colors[name] = NEUTRAL
        else:
            colors[name] = PALETTE[i % len(PALETTE)]
            i += 1
    return colors


def to_svg(fig: plt.Figure, name: str) -> str:
    """The figure as an inline ``<svg>`` element (no XML prologue), then closed."""
    buffer = io.StringIO()
    try:
        with matplotlib.rc_context({"svg.hashsalt": name}):
            fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(fig)
    text = _METADATA.sub("", _PROLOGUE.sub("", buffer.getvalue(), count=1))
    # The stroke style rule is in the page's CSS; ids get the chart's name, so they stay unique.
    text = _STYLE.sub("", text)
    return _ID_REFS.sub(lambda m: f"{m.group(1)}{name}-{m.group(2)}", text).strip()


def render_svg(name: str, width: float, height: float, draw, ncols: int = 1, **kw) -> str:
    """Make a figure with the report's style, let ``draw(fig, axes)`` fill it, return SVG."""
    with matplotlib.rc_context(RC):
        fig, axes = plt.subplots(1, ncols, figsize=(width, height), **kw)
        try:
            draw(fig, axes)
        except BaseException:
            plt.close(fig)
            raise
        return to_svg(fig, name)


def segment_profiles(
    segments: pd.DataFrame, colors: dict[str, str], period: str = "predicted"
) -> str | None:
    """Share of customers, revenue and CLV per segment, side by side; ``period`` names
    the CLV horizon ('12-month')."""
    if segments.empty:
        return None
    seg = segments.iloc[::-1]  # the first segment on top
    total_clv = seg["clv"].sum()
    panels = [
        ("Share of customers", seg["customer_share"]),
        ("Share of revenue", seg["revenue_share"].fillna(0)),
        (
            f"Share of predicted {period} CLV",
            seg["clv"] / total_clv if total_clv else 0 * seg["clv"],
        ),
    ]

    def draw(fig, axes):
        bar_colors = [colors[n] for n in seg["segment_name"]]
        for i, (ax, (title, share)) in enumerate(zip(axes, panels, strict=True)):
            ax.barh(seg["segment_name"], share * 100, color=bar_colors, height=0.65)
            for y, v in enumerate(share * 100):
                ax.text(v, y, f" {v:.0f}%", va="center", fontsize=9.5, color=INK)
            ax.set_title(title)
            ax.set_xlim(0, max(float((share * 100).max()) * 1.25, 1))
            ax.xaxis.set_visible(False)
            ax.spines["bottom"].set_visible(False)
            ax.tick_params(axis="y", length=0, labelleft=i == 0, labelcolor=INK)

    height = 0.9 + 0.42 * len(seg)
    return render_svg("profiles", 10, height, draw, ncols=3, sharey=True)


def churn_trend(trend: pd.DataFrame, colors: dict[str, str]) -> str | None:
    """Mean churn probability and revenue at risk per segment at each snapshot date."""
    if trend.empty:
        return None
    dates = pd.to_datetime(trend["snapshot_date"])
    panels = [
        ("Mean churn probability (%)", "mean_churn_probability", 100.0),
        ("Revenue at risk", "revenue_at_risk", 1.0),
    ]

    def draw(fig, axes):
        for ax, (title, column, scale) in zip(axes, panels, strict=True):
            for name, rows in _by_segment(trend.assign(_d=dates), colors):
                ax.plot(
                    rows["_d"],
                    rows[column] * scale,
                    marker="o",
                    markersize=5,
                    color=colors.get(name, NEUTRAL),
                    label=name,
                )
            ax.set_title(title)
            ax.grid(axis="y", color=GRID, linewidth=0.6)
            ax.set_ylim(bottom=0)
            if dates.nunique() == 1:  # one run so far: a point per segment, centred
                d = dates.iloc[0]
                ax.set_xlim(d - pd.Timedelta(days=20), d + pd.Timedelta(days=20))
            ax.set_xticks(sorted(dates.unique()))
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %Y"))
        axes[1].yaxis.set_major_formatter(FuncFormatter(short))
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.02),
            ncol=min(4, len(labels)),
        )

    return render_svg("churn", 10, 3.4, draw, ncols=2)


def ordered(names, order: list[str]) -> list[str]:
    """``names`` in the report's segment ``order``, names not in it after, alphabetically."""
    names = set(names)
    return [n for n in order if n in names] + sorted(names - set(order))


def _by_segment(frame: pd.DataFrame, colors: dict[str, str]):
    """(segment, rows) in the report's segment order."""
    groups = dict(tuple(frame.groupby("segment_name")))
    return [(n, groups[n]) for n in ordered(groups, list(colors))]


def clv_histogram(
    clv: pd.DataFrame, colors: dict[str, str], period: str = "predicted", span: str = ""
) -> str | None:
    """Distribution of predicted CLV, stacked by segment, top 1 % folded in; ``period`` and
    ``span`` name the CLV horizon ('12-month', 'next 12 months')."""
    if clv.empty or clv["clv"].isna().all():
        return None
    cap = float(clv["clv"].quantile(0.99)) or float(clv["clv"].max()) or 1.0
    bins = np.linspace(0, cap, 41)
    present = set(clv["segment_name"].unique())  # not set(column): that iterates in Python
    names = [n for n in colors if n in present]
    data = [clv.loc[clv["segment_name"] == n, "clv"].clip(0, cap).to_numpy() for n in names]

    def draw(fig, ax):
        ax.hist(
            data,
            bins=bins,
            stacked=True,
            histtype="stepfilled",
            color=[colors[n] for n in names],
            label=names,
        )
        ax.set(
            xlabel=f"Predicted {period} CLV per customer (the top 1 % shown at {short(cap)})",
            ylabel="Customers",
            title=f"Customer lifetime value, {span}" if span else "Customer lifetime value",
        )
        ax.xaxis.set_major_formatter(FuncFormatter(short))
        ax.grid(axis="y", color=GRID, linewidth=0.6)
        ax.legend(fontsize=9.5)

    return render_svg("clv", 10, 3.6, draw)


def drivers_chart(drivers: pd.DataFrame) -> str | None:
    """Permutation importance of the churn model's inputs (drop in ROC AUC when shuffled)."""
    if drivers.empty:
        return None
    d = drivers.iloc[::-1]
    labels = [str(f).replace("_", " ") for f in d["feature"]]

    def draw(fig, ax):
        ax.barh(
            labels,
            d["importance_mean"],
            xerr=d["importance_std"].fillna(0),
            color=PALETTE[0],
            height=0.6,
            error_kw={"ecolor": MUTED, "lw": 0.8},
        )
        ax.set(
            xlabel="Drop in ROC AUC when the input is shuffled",
            title="What drives the churn prediction",
        )
        ax.grid(axis="x", color=GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.tick_params(axis="y", length=0, labelcolor=INK)

    return render_svg("drivers", 8, 0.9 + 0.32 * len(d), draw)


def short(value: float, _pos=None) -> str:
    """1234567 -> 1.2M (axis labels)."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"
