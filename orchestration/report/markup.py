"""Number formatting and the small HTML pieces the report sections are made of.

Everything goes through Jinja2's :class:`~markupsafe.Markup` so data text (segment
names, actions, file names) is always escaped; numbers a test or a reader may want
to check carry ``data-metric`` / ``data-value`` attributes with the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date

import jinja2
from markupsafe import Markup, escape

from orchestration.io.config import CurrencyConfig

ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)

TABLE = ENV.from_string(
    """<table>
<thead><tr>{% for h in headers %}<th{% if loop.index0 in num %} class="num"{% endif %}>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in rows %}<tr>{% for cell in row %}<td{% if loop.index0 in num %} class="num"{% endif %}>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>"""
)

FIGURE = ENV.from_string(
    """<figure class="chart" data-chart="{{ name }}">{{ svg }}
<figcaption>{{ caption }}</figcaption></figure>"""
)


def fmt_int(value: float | None) -> str:
    """20000 -> '20,000'."""
    return "–" if _missing(value) else f"{round(value):,}"


def fmt_amount(value: float | None, digits: int = 0) -> str:
    """248872.07 -> '248,872'."""
    return "–" if _missing(value) else f"{value:,.{digits}f}"


def fmt_money(value: float | None, currency: CurrencyConfig | None = None) -> str:
    """Compact for sentences and cards: 2094823.8 -> '2.09M', 248872 -> '249k', 9500 -> '9,500'.

    With a ``currency`` (project config ``currency``) its symbol or code leads: '$2.09M'.
    """
    if _missing(value):
        return "–"
    places, suffix, x = 0, "", value
    # 999,600 is '1.00M', not '1000k': a unit starts where the smaller one would round to 1000.
    for limit, divisor, unit in ((999.5e6, 1e9, "B"), (999.5e3, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(value) >= limit:
            x, suffix = value / divisor, unit
            places = 2 if abs(x) < 10 else 1 if abs(x) < 100 else 0
            break
    if currency is not None:
        return currency.format(x, places, suffix)
    return f"{x:,.{places}f}{suffix}"


def fmt_pct(share: float | None) -> str:
    """0.5528 -> '55%'; small shares keep one decimal: 0.0042 -> '0.4%'."""
    if _missing(share):
        return "–"
    pct = share * 100
    return f"{pct:.1f}%" if 0 < abs(pct) < 10 and round(pct, 1) != round(pct) else f"{pct:.0f}%"


def fmt_date(value: date | None) -> str:
    """2026-01-01 -> '1 January 2026'."""
    return "–" if value is None else f"{value.day} {value:%B %Y}"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def metric(name: str, value: float | int | None, text: str, **attrs: object) -> Markup:
    """A number with its exact value attached: ``<span data-metric=... data-value=...>``."""
    extra = "".join(f' data-{k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    raw = "" if _missing(value) else repr(float(value)) if isinstance(value, float) else value
    return Markup(f'<span data-metric="{escape(name)}" data-value="{escape(raw)}"{extra}>') + (
        Markup(escape(text)) + Markup("</span>")
    )


def swatch(name: str, color: str) -> Markup:
    """A segment name with its chart colour in front."""
    return Markup('<span class="swatch" style="background:{}"></span>{}').format(color, name)


def para(text: str | Markup, cls: str | None = None) -> Markup:
    return Markup("<p{}>{}</p>").format(Markup(f' class="{cls}"') if cls else "", text)


def heading(text: str) -> Markup:
    return Markup("<h3>{}</h3>").format(text)


def empty(text: str) -> Markup:
    """The sentence shown instead of a chart or table that has no data yet."""
    return Markup('<p class="empty">{}</p>').format(text)


def table(headers: Sequence[str], rows: Iterable[Sequence], num: Iterable[int] = ()) -> Markup:
    """A table; cells are text (escaped) or Markup; ``num`` columns are right-aligned."""
    return Markup(TABLE.render(headers=headers, rows=list(rows), num=set(num)))


def figure(name: str, svg: str | None, caption: str, missing: str) -> Markup:
    """An inline SVG chart with its explanation, or the ``missing`` sentence without one."""
    if not svg:
        return empty(missing)
    return Markup(FIGURE.render(name=name, svg=Markup(svg), caption=caption))


def join(*parts: Markup | str) -> Markup:
    return Markup("\n").join(parts)


CARDS = ENV.from_string(
    """<div class="cards">{% for label, value, risk in cards %}
<div class="card{% if risk %} risk{% endif %}"><div class="label">{{ label }}</div>
<div class="value">{{ value }}</div></div>{% endfor %}
</div>"""
)


def cards(items: Sequence[tuple[str, Markup, bool]]) -> Markup:
    """Key figures: (label, value markup, whether it is a risk figure)."""
    return Markup(CARDS.render(cards=items))
