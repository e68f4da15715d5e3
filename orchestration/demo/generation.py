"""The simulation: each customer's order process, and the tables of orders, customers, events.

Every customer follows a Pareto/NBD-style process: a first order, then repeat orders
with gamma-distributed gaps around a per-customer mean interval, until a per-customer
exponential "dropout" time after which it never orders again. Two personas (one-time
buyers, lapsing regulars) also have a slow, independent win-back process. The process
is run ``horizon_days`` past ``end_date``; a customer is ``churned`` when that simulated
future holds no order. Future orders are never written.

Persona definitions condition on the observed history (e.g. a loyal customer is alive
at ``end_date``). Because lifetimes and win-back waits are exponential (memoryless),
conditioning "alive at end_date" is the same as drawing the remaining lifetime from
``end_date`` on, which is what the code does. Everything is vectorised over customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.demo.formatting import _format_price, _format_ts, _id_width, _ids, _lookup
from orchestration.demo.personas import (
    BARGAIN,
    CHANNELS,
    COUNTRIES,
    COUNTRY_P,
    EVENT_TYPES,
    GENDER_P,
    GENDERS,
    LAPSING,
    LOYAL,
    NEW,
    ONE_TIME,
    PERSONAS,
    REGIONS,
    _spec_array,
)

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
