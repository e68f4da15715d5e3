"""The six planted personas: who they are, in what shares, and how each one buys.

A persona's knobs that are plain distributions live in :data:`_SPECS`; its timing
rules (when the first order falls, when the customer drops out) are code, in
:func:`orchestration.demo.generation._customer_timing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def _allocate_personas(rng: np.random.Generator, n: int) -> np.ndarray:
    """Exact persona counts (largest remainder), shuffled so ids reveal nothing."""
    shares = np.asarray(PERSONA_SHARES)
    raw = shares / shares.sum() * n
    counts = np.floor(raw).astype(np.int64)
    counts[np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]] += 1
    return rng.permutation(np.repeat(np.arange(len(PERSONAS)), counts))
