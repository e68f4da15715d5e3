"""The entry point: :func:`generate` writes the demo data set and says what it wrote.

Files written into ``out_dir``:

* ``transactions.csv`` - one row per order line:
  ``order_id,customer_id,order_date,product_id,category,quantity,unit_price,channel,country``.
  Purchase orders are ``O0000001``..., returns are separate orders ``R0000001``...
  with a negative quantity of a product from an earlier order of that customer.
* ``customers.csv`` - ``customer_id,signup_date,age,gender,region``.
* ``events.csv`` - ``customer_id,event_at,event_type``.
* ``ground_truth/personas.csv`` - ``customer_id,persona,churned``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from orchestration.demo.formatting import _id_width, _ids, _lookup, _write_csv
from orchestration.demo.generation import (
    _customer_timing,
    _customers_table,
    _events_table,
    _simulate_orders,
    _transactions_table,
    _Window,
)
from orchestration.demo.personas import PERSONAS, _allocate_personas
from orchestration.io.config import ScoringConfig

# The planted churn follows the pipeline's default horizon unless told otherwise.
DEFAULT_CHURN_HORIZON_DAYS: int = ScoringConfig.model_fields["churn_horizon_days"].default


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


def _parse_end_date(end_date: str | dt.date) -> dt.date:
    if isinstance(end_date, dt.datetime):
        return end_date.date()
    if isinstance(end_date, dt.date):
        return end_date
    return dt.date.fromisoformat(str(end_date).strip()[:10])


def generate(
    out_dir: str | Path,
    customers: int = 20000,
    seed: int = 42,
    end_date: str = "2025-12-31",
    years: float = 2.0,
    horizon_days: int = DEFAULT_CHURN_HORIZON_DAYS,
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
