"""The report's heat maps: RFM grid, cohort retention and segment migration."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.report.charts import INK, ordered, render_svg

HEAT = "Blues"
NEW, GONE = "(new customer)", "(no longer present)"  # labels of mart_segment_migration
RFM_TEXT = (
    "Recency score (5 = bought most recently)",
    "Frequency score (5 = most orders)",
    "Customers per RFM cell (second line: mean spend per customer)",
)
COHORT_TEXT = (
    "Months since the first order",
    "Cohort (month of first order)",
    "Customers buying again (%)",
)
MIGRATION_TEXT = (
    "To segment",
    "From segment",
    "Customers moving between segments (% of the from-segment, count)",
)


def _annotate(ax, values: np.ndarray, labels: np.ndarray, x, y, vmax: float) -> None:
    """Write ``labels`` in the cells of a heat map, white on dark cells."""
    for (i, j), label in np.ndenumerate(labels):
        if label:
            dark = np.isfinite(values[i, j]) and values[i, j] > 0.55 * vmax
            ax.text(
                x[j],
                y[i],
                label,
                ha="center",
                va="center",
                fontsize=8.5,
                color="white" if dark else INK,
            )


def heatmap(
    name: str,
    values: np.ndarray,
    labels: np.ndarray,
    ticks: tuple,
    text: tuple,
    size,
    vmax=None,
    top_down: bool = False,
) -> str:
    """A heat map of ``values`` (rows × columns) with cell ``labels`` and a colour bar.

    ``ticks`` is (column labels, row labels), ``text`` (x label, y label, title). Row 0
    is at the bottom, or at the top with ``top_down`` (tables read from the top).
    """
    xticks, yticks = ticks
    xlabel, ylabel, title = text
    vmax = vmax or (np.nanmax(values) if np.isfinite(values).any() else 1.0) or 1.0

    def draw(fig, ax):
        x, y = np.arange(values.shape[1]), np.arange(values.shape[0])
        mesh = ax.pcolormesh(
            np.ma.masked_invalid(values),
            cmap=HEAT,
            vmin=0,
            vmax=vmax,
            edgecolors="white",
            linewidth=0.6,
        )
        _annotate(ax, values, labels, x + 0.5, y + 0.5, vmax)
        long = max((len(str(t)) for t in xticks), default=0) > 6
        ax.set_xticks(
            x + 0.5,
            [str(t) for t in xticks],
            rotation=25 if long else 0,
            ha="right" if long else "center",
        )
        ax.set_yticks(y + 0.5, [str(t) for t in yticks])
        if top_down:
            ax.invert_yaxis()
        ax.tick_params(length=0)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        for spine in ax.spines.values():
            spine.set_visible(False)
        fig.colorbar(mesh, ax=ax, fraction=0.035, pad=0.02).outline.set_visible(False)

    return render_svg(name, *size, draw)


def rfm_heatmap(rfm: pd.DataFrame) -> str | None:
    """Customers per (recency score, frequency score), mean spend in each cell."""
    if rfm.empty:
        return None
    grid = rfm.pivot_table(index="f_score", columns="r_score", values="customers", aggfunc="sum")
    grid = grid.reindex(index=range(1, 6), columns=range(1, 6))
    spend = rfm.pivot_table(index="f_score", columns="r_score", values="mean_monetary")
    spend = spend.reindex(index=range(1, 6), columns=range(1, 6))
    labels = np.vectorize(lambda n, m: "" if np.isnan(n) else f"{n:,.0f}\n≈{m:,.0f}")(
        grid.to_numpy(float), spend.to_numpy(float)
    )
    ticks = (grid.columns, grid.index)
    return heatmap("rfm", grid.to_numpy(float), labels, ticks, RFM_TEXT, size=(7.5, 4.6))


def cohort_heatmap(cohorts: pd.DataFrame) -> str | None:
    """Share of each acquisition cohort buying again in each month since its first order."""
    if cohorts.empty:
        return None
    grid = cohorts.pivot_table(
        index="cohort_month", columns="months_since_first", values="retention_rate"
    )
    values = grid.to_numpy(float) * 100
    later = values[:, 1:] if values.shape[1] > 1 else values
    vmax = float(np.nanmax(later)) if np.isfinite(later).any() else 100.0
    small = values.shape[1] <= 24
    labels = np.vectorize(lambda v: "" if np.isnan(v) or not small else f"{v:.0f}")(values)
    rows = [pd.Timestamp(m).strftime("%b %Y") for m in grid.index]
    width = min(10.0, 3.0 + 0.36 * values.shape[1])
    size = (width, 1.2 + 0.27 * len(rows))
    ticks = (grid.columns, rows)
    vmax = max(vmax, 1.0)
    return heatmap("cohorts", values, labels, ticks, COHORT_TEXT, size, vmax, top_down=True)


def migration_matrix(migration: pd.DataFrame, order: list[str]) -> str | None:
    """Where the customers of each segment went between the last two snapshot dates.

    Rows and columns follow the report's segment ``order`` (so stayers are on the
    diagonal), new customers in the last row, customers who left in the last column.
    """
    if migration.empty:
        return None
    rows = ordered(set(migration["from_segment"]) - {NEW}, order)
    cols = ordered(set(migration["to_segment"]) - {GONE}, order)
    rows += [NEW] if NEW in set(migration["from_segment"]) else []
    cols += [GONE] if GONE in set(migration["to_segment"]) else []

    def grid(column: str) -> pd.DataFrame:
        return (
            migration.pivot_table(
                index="from_segment", columns="to_segment", values=column, aggfunc="sum"
            )
            .reindex(index=rows, columns=cols, fill_value=0)
            .fillna(0)
        )

    share, count = grid("share_of_from"), grid("customers")
    values = share.to_numpy(float) * 100
    labels = np.vectorize(lambda v, n: f"{v:.0f}%\n{n:,.0f}" if n else "")(
        values, count.to_numpy(float)
    )
    width = min(11.0, 3.5 + 1.2 * values.shape[1])
    size = (width, 1.4 + 0.5 * len(share))
    ticks = (share.columns, share.index)
    return heatmap("migration", values, labels, ticks, MIGRATION_TEXT, size, 100.0, top_down=True)
