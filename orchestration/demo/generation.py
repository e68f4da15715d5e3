"""Synthetic demo data generator for the customer-segmentation warehouse.

This module owns the *demo input files* only: it writes the raw CSVs that the
ingest (``orchestration/io/ingest.py``) reads, plus a ``ground_truth/`` folder
that the pipeline never reads and that exists so that tests and benchmarks can
score clustering (planted personas) and churn prediction (honest future label).

Files written into ``out_dir``:

* ``transactions.csv`` - one row per order line:
  ``order_id,customer_id,order_date,product_id,category,quantity,unit_price,channel,country``.
  Purchase orders are ``O0000001``..., returns are separate orders ``R0000001``...
  with a negative quantity of a product from an earlier order of that customer.
* ``customers.csv`` - ``customer_id,signup_date,age,gender,region``.
* ``events.csv`` - ``customer_id,event_at,event_type``.
* ``ground_truth/personas.csv`` - ``customer_id,persona,churned``.

How customers behave (why the data looks the way it does): every customer
follows a Pareto/NBD-style process - a first order, then repeat orders with
gamma-distributed gaps around a per-customer mean interval, until a
per-customer exponential "dropout" time after which it never orders again.
Two personas (one-time buyers, lapsing regulars) also have a slow, independent
win-back process. The process is run ``horizon_days`` past ``end_date``; ``churned`` is 1
when that simulated future holds no order. Future orders are never written.

Persona definitions condition on the observed history (e.g. a loyal customer
is alive at ``end_date``). Because lifetimes and win-back waits are exponential
(memoryless), conditioning "alive at end_date" is the same as drawing the
remaining lifetime from ``end_date`` on, which is what the code does.

Plain Python only (numpy + pyarrow): ``orchestration/io`` must not import dagster.
Everything is vectorised over customers; 100k customers take a few seconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = ["PERSONAS", "PERSONA_SHARES", "GenerateResult", "generate"]

PERSONAS: tuple[str, ...] = (
    "loyal_high_spender",
    "frequent_bargain_buyer",
    "one_time_buyer",
    "lapsing_regular",
    "new_customer",
    "occasional_mid",
)
PERSONA_SHARES: tuple[float, ...] = (0.12, 0.18, 0.30, 0.15, 0.15, 0.10)

LOYAL, BARGAIN, ONE_TIME, LAPSING, NEW, OCCASIONAL = range(len(PERSONAS))

EVENT_TYPES: tuple[str, ...] = ("email_open", "email_click", "site_visit", "app_session")
CHANNELS: tuple[str, ...] = ("web", "store", "app")
COUNTRIES: tuple[str, ...] = ("United Kingdom", "Germany", "France", "Netherlands", "Spain")
COUNTRY_P: tuple[float, ...] = (0.45, 0.20, 0.15, 0.10, 0.10)
REGIONS: tuple[str, ...] = ("North", "South", "East", "West", "Central")
GENDERS: tuple[str, ...] = ("F", "M", "X")
GENDER_P: tuple[float, ...] = (0.49, 0.47, 0.04)

# Category -> (min, max) base price. Ranges overlap on purpose so that every
# order value from ~1 to ~500 has nearby products; cheap categories feed the
# bargain buyers, expensive ones the high spenders.
CATEGORY_PRICE_RANGES: dict[str, tuple[float, float]] = {
    "Grocery": (0.8, 15.0),
    "Beauty": (3.0, 60.0),
    "Books & Media": (5.0, 40.0),
    "Toys": (5.0, 80.0),
    "Home & Garden": (8.0, 250.0),
    "Fashion": (10.0, 200.0),
    "Sports & Outdoors": (10.0, 300.0),
    "Electronics": (20.0, 600.0),
}
N_PRODUCTS = 500

GAP_SHAPE = 3.0  # gamma shape of the gaps between orders (CV ~0.58)
RETURN_RATE = 0.03  # share of purchase orders that get a later return line
RETURN_MAX_DAYS = 30  # a return happens 1..30 days after the order

# Orders follow an evening/lunch-heavy daily profile (relative weights by hour).
_HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 5, 6, 7, 6.5, 5.5, 5, 5, 5.5, 6.5, 8, 8.5, 7, 4, 2],
    dtype=np.float64,
)


@dataclass(frozen=True)
class _PersonaSpec:
    """Per-persona knobs that are plain distributions (timing rules live in code)."""

    interval_days: tuple[float, float]  # mean days between repeat orders, U(lo, hi)
    aov: tuple[float, float]  # customer's mean order value, log-uniform(lo, hi)
    lines_p: tuple[float, float, float, float]  # P(1..4 lines per order)
    qty_p: tuple[float, float, float, float]  # P(quantity 1..4 per line)
    discount_p: float  # chance a line is bought at a 10-30 % discount
    channel_p: tuple[float, float, float]  # web, store, app
    events_per_30d: tuple[float, float]  # engagement rate while active / after dropout
    event_mix: tuple[float, float, float, float]  # P(event type), order of EVENT_TYPES
    age: tuple[float, float]  # mean, sd


_SPECS: tuple[_PersonaSpec, ...] = (
    _PersonaSpec(  # loyal_high_spender
        interval_days=(20, 32),
        aov=(150, 300),
        lines_p=(0.60, 0.25, 0.10, 0.05),
        qty_p=(0.85, 0.12, 0.03, 0.0),
        discount_p=0.05,
        channel_p=(0.45, 0.40, 0.15),
        events_per_30d=(1.2, 0.1),
        event_mix=(0.35, 0.20, 0.30, 0.15),
        age=(47, 11),
    ),
    _PersonaSpec(  # frequent_bargain_buyer
        interval_days=(8, 15),
        aov=(10, 30),
        lines_p=(0.85, 0.10, 0.04, 0.01),
        qty_p=(0.55, 0.25, 0.12, 0.08),
        discount_p=0.40,
        channel_p=(0.30, 0.15, 0.55),
        events_per_30d=(1.5, 0.1),
        event_mix=(0.15, 0.05, 0.25, 0.55),
        age=(31, 9),
    ),
    _PersonaSpec(  # one_time_buyer: no repeat process at all
        interval_days=(0, 0),
        aov=(20, 50),
        lines_p=(0.70, 0.18, 0.08, 0.04),
        qty_p=(0.85, 0.12, 0.03, 0.0),
        discount_p=0.15,
        channel_p=(0.60, 0.30, 0.10),
        events_per_30d=(0.5, 0.03),
        event_mix=(0.60, 0.05, 0.30, 0.05),
        age=(38, 14),
    ),
    _PersonaSpec(  # lapsing_regular: monthly until dropout
        interval_days=(25, 35),
        aov=(50, 90),
        lines_p=(0.70, 0.18, 0.08, 0.04),
        qty_p=(0.80, 0.15, 0.05, 0.0),
        discount_p=0.15,
        channel_p=(0.45, 0.35, 0.20),
        events_per_30d=(1.0, 0.08),
        event_mix=(0.45, 0.10, 0.35, 0.10),
        age=(42, 13),
    ),
    _PersonaSpec(  # new_customer: curious, engaged, not yet loyal
        interval_days=(25, 45),
        aov=(50, 90),
        lines_p=(0.70, 0.18, 0.08, 0.04),
        qty_p=(0.80, 0.15, 0.05, 0.0),
        discount_p=0.15,
        channel_p=(0.40, 0.20, 0.40),
        events_per_30d=(2.5, 0.2),
        event_mix=(0.30, 0.15, 0.35, 0.20),
        age=(29, 8),
    ),
    _PersonaSpec(  # occasional_mid: every 2-4 months; upper-mid value keeps it apart from lapsing
        interval_days=(60, 120),
        aov=(70, 130),
        lines_p=(0.70, 0.18, 0.08, 0.04),
        qty_p=(0.80, 0.15, 0.05, 0.0),
        discount_p=0.15,
        channel_p=(0.50, 0.35, 0.15),
        events_per_30d=(0.5, 0.05),
        event_mix=(0.45, 0.10, 0.35, 0.10),
        age=(44, 14),
    ),
)


def _spec_array(field: str) -> np.ndarray:
    """One row per persona of a spec field, for fancy-indexing by persona code."""
    return np.array([getattr(s, field) for s in _SPECS], dtype=np.float64)


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate` wrote.

    ``transactions`` counts CSV rows (order lines incl. return lines), ``orders``
    counts distinct purchase orders (``O…``), ``returns`` counts return orders
    (``R…``, one line each), ``events`` counts rows of ``events.csv``.
    """

    out_dir: Path
    transactions_path: Path
    customers_path: Path
    events_path: Path
    ground_truth_path: Path
    customers: int
    transactions: int
    orders: int
    returns: int
    events: int


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Zero-padded text ids (``C000123``); wider if a number needs more digits."""
    digits = pc.utf8_lpad(
        pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width, padding="0"
    )
    return pc.binary_join_element_wise(prefix, digits, "")


def _id_width(min_width: int, largest: int) -> int:
    return max(min_width, len(str(int(largest))))


def _choice(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """Vectorised categorical draw with a *row-specific* probability vector.

    ``probs`` has shape (n, k); returns indices 0..k-1 (one uniform per row).
    """
    cum = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def _timestamps(rng: np.random.Generator, start_epoch: int, day: np.ndarray) -> np.ndarray:
    """Epoch seconds for whole day offsets, with a lunch/evening-heavy time of day."""
    hour = rng.choice(24, size=day.size, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())
    second_in_hour = rng.integers(0, 3600, size=day.size)
    return start_epoch + day.astype(np.int64) * 86400 + hour * 3600 + second_in_hour


def _format_ts(epoch_s: np.ndarray, with_time: bool) -> pa.Array:
    """Epoch seconds -> ``%Y-%m-%d[ %H:%M:%S]`` text.

    Formats each distinct day and each second-of-day once and joins them,
    which is ~4x faster than strftime on a million rows.
    """
    if epoch_s.size == 0:
        return pa.array([], type=pa.string())
    epoch_day = epoch_s // 86400
    first = int(epoch_day.min())
    day_epochs = (first + np.arange(int(epoch_day.max()) - first + 1)) * 86400
    day_text = pc.strftime(pa.array(day_epochs, type=pa.timestamp("s")), format="%Y-%m-%d")
    dates = day_text.take(pa.array(epoch_day - first))
    if not with_time:
        return dates
    clock = pc.strftime(pa.array(np.arange(86400), type=pa.timestamp("s")), format="%H:%M:%S")
    return pc.binary_join_element_wise(dates, clock.take(pa.array(epoch_s % 86400)), " ")


def _format_price(cents: np.ndarray) -> pa.Array:
    """``1250`` -> ``"12.50"``: fixed two decimals read as a price everywhere."""
    whole = pc.cast(pa.array(cents // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(cents % 100), pa.string()), 2, padding="0")
    return pc.binary_join_element_wise(whole, frac, ".")


def _lookup(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.string()).take(pa.array(codes, type=pa.int64()))


def _write_csv(table: pa.Table, path: Path) -> None:
    # No quoting: every value is generated here and never holds a comma, quote
    # or newline (pyarrow raises if one ever does), so files stay diff-friendly.
    opts = pacsv.WriteOptions(batch_size=65536, quoting_style="none", quoting_header="none")
    pacsv.write_csv(table, str(path), write_options=opts)


def _parse_end_date(end_date: str | dt.date) -> dt.date:
    if isinstance(end_date, dt.datetime):
        return end_date.date()
    if isinstance(end_date, dt.date):
        return end_date
    return dt.date.fromisoformat(str(end_date).strip()[:10])


def _allocate_personas(rng: np.random.Generator, n: int) -> np.ndarray:
    """Exact persona counts (largest remainder), shuffled so ids reveal nothing."""
    shares = np.asarray(PERSONA_SHARES)
    raw = shares / shares.sum() * n
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(PERSONAS)), counts))


@dataclass(frozen=True)
class _Catalogue:
    """Products sorted by base price, so a price lookup is a searchsorted."""

    category: np.ndarray  # index into CATEGORY_PRICE_RANGES
    cents: np.ndarray  # base price in cents, ascending
    number: np.ndarray  # the NNNN of product id PNNNN


def _catalogue(rng: np.random.Generator) -> _Catalogue:
    n_cat = len(CATEGORY_PRICE_RANGES)
    per_cat = np.diff(np.linspace(0, N_PRODUCTS, n_cat + 1).round().astype(np.int64))
    cat = np.repeat(np.arange(n_cat), per_cat)
    lo = np.log([r[0] for r in CATEGORY_PRICE_RANGES.values()])[cat]
    hi = np.log([r[1] for r in CATEGORY_PRICE_RANGES.values()])[cat]
    price = np.exp(lo + rng.random(N_PRODUCTS) * (hi - lo))
    # Charm pricing (x.99 / x.49) for realism; never below 0.49.
    ending = np.where(rng.random(N_PRODUCTS) < 0.7, 99, 49)
    cents = np.maximum(np.floor(price) * 100 + ending - 100, 49).astype(np.int64)
    number = rng.permutation(N_PRODUCTS) + 1  # ids reveal neither price nor category
    order = np.lexsort((number, cents))
    return _Catalogue(category=cat[order], cents=cents[order], number=number[order])


@dataclass(frozen=True)
class _Window:
    days: int  # W: history is day offsets 0..W-1, day W-1 == end_date
    horizon: int  # H: churn horizon after end_date, in days
    start_epoch: int  # epoch seconds of day 0, 00:00:00


def _customer_timing(
    rng: np.random.Generator, persona: np.ndarray, w: _Window
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First order ``t0``, dropout ``tau`` and mean gap ``interval`` per customer (days)."""
    W = w.days
    n = persona.size
    t0 = np.empty(n)
    tau = np.empty(n)
    for p in range(len(PERSONAS)):  # six vectorised blocks, not a loop over customers
        m = persona == p
        k = int(m.sum())
        u = rng.random(k)
        if p == LOYAL:  # long tenure: first order in the first 35 % of the window
            t0[m] = u * 0.35 * W
            tau[m] = W + rng.exponential(1500.0, k)  # alive at end_date, long remaining life
        elif p == BARGAIN:  # joined in the second half, still active
            t0[m] = 0.6 * W + u * (0.4 * W - 90)
            tau[m] = W + rng.exponential(500.0, k)
        elif p == ONE_TIME:  # any time except the last 60 days; tau = t0: no repeats
            t0[m] = u * (W - 60)
            tau[m] = t0[m]
        elif p == LAPSING:  # regular for a while, dropped out 150-400 days before end
            t0[m] = (0.1 + u * 0.25) * W
            tau[m] = np.maximum(W - rng.uniform(150, 400, k), t0[m] + 30)
        elif p == NEW:  # first order in the last 60 days; many will not stay
            t0[m] = W - 60 + u * 60
            tau[m] = t0[m] + rng.exponential(150.0, k)
        else:  # OCCASIONAL: spread over the window, alive at end_date
            t0[m] = u * 0.3 * W
            tau[m] = W + rng.exponential(900.0, k)
    lo, hi = _spec_array("interval_days")[persona].T
    interval = lo + rng.random(n) * (hi - lo)
    return t0, tau, interval


def _simulate_orders(
    rng: np.random.Generator,
    persona: np.ndarray,
    t0: np.ndarray,
    tau: np.ndarray,
    interval: np.ndarray,
    w: _Window,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run every customer's order process to ``end_date + horizon``.

    Returns (customer index, order time in days) of the *history* orders, sorted
    by customer then time, and the churn label computed from the future part.
    """
    n = persona.size
    W, H = w.days, w.horizon
    # Repeat orders on (t0, min(tau, W + H)) as a gamma renewal process. Gamma
    # gaps (shape > 1) keep regular buyers regular, unlike Poisson gaps.
    active_end = np.minimum(tau, W + H)
    span = np.maximum(active_end - t0, 0.0)
    expected = np.divide(span, interval, out=np.zeros(n), where=interval > 0)
    # Draw enough gaps that running out before active_end is negligible
    # (mean + 5 sd of the gap count, plus slack); unused gaps are discarded.
    n_gaps = np.where(interval > 0, np.ceil(expected + 5 * np.sqrt(expected) + 3), 0).astype(
        np.int64
    )
    g_cust = np.repeat(np.arange(n), n_gaps)
    csum = np.cumsum(rng.gamma(GAP_SHAPE, interval[g_cust] / GAP_SHAPE))
    g_start = np.cumsum(n_gaps) - n_gaps
    before = np.concatenate([[0.0], csum])[g_start]  # running total before each customer
    rep_time = t0[g_cust] + (csum - before[g_cust])
    ok = rep_time < active_end[g_cust]
    o_cust = np.concatenate([np.arange(n), g_cust[ok]])
    o_time = np.concatenate([t0, rep_time[ok]])
    srt = np.lexsort((o_time, o_cust))
    o_cust, o_time = o_cust[srt], o_time[srt]

    # New customers have 1-3 orders by definition: drop history orders beyond the
    # third. With 25-45 day gaps and at most 60 days of history this touches ~1 %
    # of new customers, so the future chain is practically unaffected.
    rank = np.arange(o_cust.size) - np.searchsorted(o_cust, np.arange(n))[o_cust]
    in_history = o_time < W
    keep = ~(in_history & (persona[o_cust] == NEW) & (rank >= 3))
    o_cust, o_time, in_history = o_cust[keep], o_time[keep], in_history[keep]

    # Churn label: no order in [end_date + 1 day, end_date + H days].
    future = ~in_history & (o_time < W + H)
    bought = np.bincount(o_cust[future], minlength=n) > 0
    # Win-back: a slow reactivation hazard independent of the dropout. Conditioning
    # on no reactivation during the history (the persona definition) leaves an
    # exponential wait from end_date, by memorylessness.
    winback_p = np.select([persona == ONE_TIME, persona == LAPSING], [0.08, 0.10], 0.0)
    wins = rng.random(n) < winback_p
    bought |= wins & (W + rng.exponential(120.0, n) < W + H)
    churned = (~bought).astype(np.int64)
    return o_cust[in_history], o_time[in_history], churned


def _transactions_table(
    rng: np.random.Generator,
    persona: np.ndarray,
    o_cust: np.ndarray,
    o_time: np.ndarray,
    cust_ids: pa.Array,
    w: _Window,
) -> tuple[pa.Table, int, int]:
    """Order lines and return lines for the history orders; (table, orders, returns)."""
    n = persona.size
    n_orders = o_cust.size
    o_day = np.floor(o_time).astype(np.int64)
    o_ts = _timestamps(rng, w.start_epoch, o_day)
    o_persona = persona[o_cust]

    lo, hi = np.log(_spec_array("aov")).T
    cust_aov = np.exp(lo[persona] + rng.random(n) * (hi[persona] - lo[persona]))
    o_value = cust_aov[o_cust] * rng.lognormal(0.0, 0.25, n_orders)
    o_channel = _choice(rng, _spec_array("channel_p")[o_persona])
    cust_country = rng.choice(len(COUNTRIES), size=n, p=np.asarray(COUNTRY_P))
    # Order numbers follow time, like a real order sequence.
    o_seq = np.empty(n_orders, dtype=np.int64)
    o_seq[np.lexsort((o_cust, o_ts))] = np.arange(1, n_orders + 1)

    # Lines: split the order value over 1-4 lines and pick, for each line, a
    # product priced near value / quantity, jittered so similar orders differ.
    cat = _catalogue(rng)
    n_lines = _choice(rng, _spec_array("lines_p")[o_persona]) + 1
    l_order = np.repeat(np.arange(n_orders), n_lines)
    l_persona = o_persona[l_order]
    l_qty = _choice(rng, _spec_array("qty_p")[l_persona]) + 1
    line_value = o_value[l_order] / n_lines[l_order] * rng.uniform(0.7, 1.3, l_order.size)
    near = np.searchsorted(cat.cents, line_value / l_qty * 100)
    l_prod = np.clip(near + rng.integers(-4, 5, l_order.size), 0, N_PRODUCTS - 1)
    discounted = rng.random(l_order.size) < _spec_array("discount_p")[l_persona]
    factor = np.where(discounted, rng.choice(np.array([0.9, 0.8, 0.7]), l_order.size), 1.0)
    l_cents = np.maximum(np.round(cat.cents[l_prod] * factor), 1).astype(np.int64)
    # The same product twice in one order would be a confusing split (and could
    # be an exact duplicate row): keep the first line of each (order, product).
    keep = np.zeros(l_order.size, dtype=bool)
    keep[np.unique(l_order * N_PRODUCTS + l_prod, return_index=True)[1]] = True
    l_order, l_prod, l_qty, l_cents = l_order[keep], l_prod[keep], l_qty[keep], l_cents[keep]

    # Returns: one line of ~3 % of orders comes back 1..30 days later as its
    # own order R…; returns that would fall after end_date are never written.
    per_order = np.bincount(l_order, minlength=n_orders)
    first_line = np.cumsum(per_order) - per_order
    r_order = np.flatnonzero(rng.random(n_orders) < RETURN_RATE)
    r_line = first_line[r_order] + (rng.random(r_order.size) * per_order[r_order]).astype(np.int64)
    r_day = o_day[r_order] + rng.integers(1, RETURN_MAX_DAYS + 1, r_order.size)
    r_ts = _timestamps(rng, w.start_epoch, r_day)
    r_qty = -(1 + (rng.random(r_order.size) * l_qty[r_line]).astype(np.int64))
    seen = r_day < w.days
    r_order, r_line, r_ts, r_qty = r_order[seen], r_line[seen], r_ts[seen], r_qty[seen]
    n_returns = r_order.size
    r_seq = np.empty(n_returns, dtype=np.int64)
    r_seq[np.lexsort((r_order, r_ts))] = np.arange(1, n_returns + 1)

    # Purchase lines then return lines, sorted by time (returns after purchases
    # at the same second, line order kept within an order).
    t_order = np.concatenate([l_order, r_order])
    t_ts = np.concatenate([o_ts[l_order], r_ts])
    t_is_ret = np.concatenate([np.zeros(l_order.size, bool), np.ones(n_returns, bool)])
    t_seq = np.concatenate([o_seq[l_order], r_seq])
    srt = np.lexsort((np.arange(t_ts.size), t_seq, t_is_ret, t_ts))
    t_order, t_ts, t_is_ret, t_seq = t_order[srt], t_ts[srt], t_is_ret[srt], t_seq[srt]
    t_prod = np.concatenate([l_prod, l_prod[r_line]])[srt]
    t_qty = np.concatenate([l_qty, r_qty])[srt]
    t_cents = np.concatenate([l_cents, l_cents[r_line]])[srt]
    t_cust = o_cust[t_order]

    width = _id_width(7, max(n_orders, n_returns, 1))
    table = pa.table(
        {
            "order_id": pc.if_else(
                pa.array(t_is_ret), _ids("R", t_seq, width), _ids("O", t_seq, width)
            ),
            "customer_id": cust_ids.take(pa.array(t_cust)),
            "order_date": _format_ts(t_ts, with_time=True),
            "product_id": _ids("P", cat.number[t_prod], _id_width(4, N_PRODUCTS)),
            "category": _lookup(tuple(CATEGORY_PRICE_RANGES), cat.category[t_prod]),
            "quantity": pa.array(t_qty, type=pa.int64()),
            "unit_price": _format_price(t_cents),
            "channel": _lookup(CHANNELS, o_channel[t_order]),
            "country": _lookup(COUNTRIES, cust_country[t_cust]),
        }
    )
    return table, n_orders, n_returns


def _customers_table(
    rng: np.random.Generator, persona: np.ndarray, t0: np.ndarray, cust_ids: pa.Array, w: _Window
) -> tuple[pa.Table, np.ndarray]:
    """Customer attributes; also returns the signup day offsets (events start there)."""
    n = persona.size
    # t0 is always a history order, so signup <= first purchase. Many customers
    # sign up at checkout, the rest up to half a year earlier.
    lead = np.where(rng.random(n) < 0.4, 0, rng.integers(1, 181, n))
    signup_day = np.floor(t0).astype(np.int64) - lead
    mean_age, sd_age = _spec_array("age")[persona].T
    age = np.clip(np.round(mean_age + rng.standard_normal(n) * sd_age), 18, 90).astype(np.int64)
    gender = rng.choice(len(GENDERS), size=n, p=np.asarray(GENDER_P))
    region = rng.integers(0, len(REGIONS), n)
    table = pa.table(
        {
            "customer_id": cust_ids,
            "signup_date": _format_ts(w.start_epoch + signup_day * 86400, with_time=False),
            "age": pa.array(age),
            "gender": _lookup(GENDERS, gender),
            "region": _lookup(REGIONS, region),
        }
    )
    return table, signup_day


def _events_table(
    rng: np.random.Generator,
    persona: np.ndarray,
    signup_day: np.ndarray,
    tau: np.ndarray,
    cust_ids: pa.Array,
    w: _Window,
) -> pa.Table:
    """Engagement events from signup to end_date: one rate before dropout, a lower one after."""
    n = persona.size
    W = w.days
    switch = np.clip(tau, signup_day, W)
    seg_start = np.concatenate([signup_day.astype(np.float64), switch])
    seg_len = np.concatenate([switch - signup_day, W - switch])
    rates = _spec_array("events_per_30d")[persona] / 30.0
    seg_n = rng.poisson(np.concatenate([rates[:, 0], rates[:, 1]]) * seg_len)
    e_seg = np.repeat(np.arange(2 * n), seg_n)
    e_cust = e_seg % n
    e_time = seg_start[e_seg] + rng.random(e_seg.size) * seg_len[e_seg]
    # min(): float rounding must never push an event past end_date 23:59:59.
    e_ts = np.minimum(
        w.start_epoch + np.floor(e_time * 86400).astype(np.int64), w.start_epoch + W * 86400 - 1
    )
    e_type = _choice(rng, _spec_array("event_mix")[persona[e_cust]])
    srt = np.lexsort((e_type, e_cust, e_ts))
    e_cust, e_ts, e_type = e_cust[srt], e_ts[srt], e_type[srt]
    # Same customer, second and type twice would be an exact duplicate row.
    dup = np.zeros(e_ts.size, dtype=bool)
    dup[1:] = (e_ts[1:] == e_ts[:-1]) & (e_cust[1:] == e_cust[:-1]) & (e_type[1:] == e_type[:-1])
    e_cust, e_ts, e_type = e_cust[~dup], e_ts[~dup], e_type[~dup]
    return pa.table(
        {
            "customer_id": cust_ids.take(pa.array(e_cust)),
            "event_at": _format_ts(e_ts, with_time=True),
            "event_type": _lookup(EVENT_TYPES, e_type),
        }
    )


def generate(
    out_dir: str | Path,
    customers: int = 20000,
    seed: int = 42,
    end_date: str = "2025-12-31",
    years: float = 2.0,
    horizon_days: int = 90,
) -> GenerateResult:
    """Write a synthetic demo data set into ``out_dir`` and return what was written.

    ``end_date`` is the last day with data (inclusive); the history covers the
    ``years`` before it. ``horizon_days`` is the churn horizon after ``end_date``
    used for ``ground_truth/personas.csv``. Same arguments -> same bytes.
    """
    if customers < 1:
        raise ValueError(f"customers must be >= 1, got {customers}")
    if years < 1.0:
        # Lapsing regulars stop 150-400 days before end_date after months of
        # regular orders; a shorter window cannot hold the planted personas.
        raise ValueError(f"years must be >= 1.0, got {years}")
    if horizon_days < 1:
        raise ValueError(f"horizon_days must be >= 1, got {horizon_days}")

    end = _parse_end_date(end_date)
    days = int(round(years * 365))
    start = dt.datetime.combine(end - dt.timedelta(days=days - 1), dt.time())
    w = _Window(
        days=days,
        horizon=int(horizon_days),
        start_epoch=int((start - dt.datetime(1970, 1, 1)).total_seconds()),
    )

    out = Path(out_dir)
    (out / "ground_truth").mkdir(parents=True, exist_ok=True)
    paths = {
        "transactions": out / "transactions.csv",
        "customers": out / "customers.csv",
        "events": out / "events.csv",
        "truth": out / "ground_truth" / "personas.csv",
    }

    rng = np.random.default_rng(seed)
    n = int(customers)
    persona = _allocate_personas(rng, n)
    cust_ids = _ids("C", np.arange(1, n + 1), _id_width(6, n))
    t0, tau, interval = _customer_timing(rng, persona, w)
    o_cust, o_time, churned = _simulate_orders(rng, persona, t0, tau, interval, w)

    # Build and write one file at a time so only one big table is alive at once.
    transactions, n_orders, n_returns = _transactions_table(
        rng, persona, o_cust, o_time, cust_ids, w
    )
    del o_cust, o_time
    _write_csv(transactions, paths["transactions"])
    n_transactions = transactions.num_rows
    del transactions

    customers_tbl, signup_day = _customers_table(rng, persona, t0, cust_ids, w)
    _write_csv(customers_tbl, paths["customers"])

    events = _events_table(rng, persona, signup_day, tau, cust_ids, w)
    _write_csv(events, paths["events"])
    n_events = events.num_rows
    del events

    truth = pa.table(
        {
            "customer_id": cust_ids,
            "persona": _lookup(PERSONAS, persona),
            "churned": pa.array(churned),
        }
    )
    _write_csv(truth, paths["truth"])

    return GenerateResult(
        out_dir=out,
        transactions_path=paths["transactions"],
        customers_path=paths["customers"],
        events_path=paths["events"],
        ground_truth_path=paths["truth"],
        customers=n,
        transactions=n_transactions,
        orders=n_orders,
        returns=n_returns,
        events=n_events,
    )
