"""Can the loaded transactions be scored as of this run's date? Checked before the features.

Two deliveries load cleanly and then give nonsense or a deep failure, so the run stops
before dbt with a message naming the flag and the dates:

* **Too few customers.** Segments, the purchase (BTYD) models and the churn model learn
  from many customers' histories: a single customer cannot be segmented, and BG/NBD fits
  on a handful of customers diverge (on 1 to 5 customers, measured: "conditional expected
  purchases ... not finite"). Fewer than ``MIN_CUSTOMERS`` customers with a transaction
  before the as-of date stop the run.
* **An as-of date long after the data.** The churn model learns from the customers at
  the evaluation cut-off (as-of minus the churn horizon) who bought nothing in the horizon
  after it; an as-of date more than ``scoring.churn_horizon_days`` after the last
  transaction puts that whole horizon after the data, so every customer is labelled
  churned and scored near 1 (``--as-of 2030-01-01`` on 2011 data: churn 0.999). Such a
  date stops the run; a smaller gap is allowed (deliveries lag) and logged as a warning.
"""

from __future__ import annotations

import datetime as dt

import duckdb

MIN_CUSTOMERS = 10
AS_OF = "the as-of date {as_of} (--as-of / CUSTSEG_AS_OF_DATE)"


class DeliveryError(ValueError):
    """The transactions cannot be scored as of the run's date."""


def check_delivery(
    con: duckdb.DuckDBPyConnection, as_of: str | None, horizon_days: int
) -> list[str]:
    """Raise :class:`DeliveryError` for a delivery the run cannot score; return warnings.

    ``as_of`` is the configured as-of date (None: the day after the last transaction).
    """
    first, last = con.execute(
        "select min(ordered_at), max(ordered_at) from raw.transactions"
    ).fetchone()
    if last is None:
        return []  # an empty delivery: the raw_transactions checks say so
    first, last = first.date(), last.date()
    day = dt.date.fromisoformat(as_of) if as_of else last + dt.timedelta(days=1)
    where = AS_OF.format(as_of=day) if as_of else f"the day after the last transaction ({day})"
    if day <= first:
        raise DeliveryError(
            f"no transaction before {where}: the first is on {first}; choose a later date"
        )
    latest = last + dt.timedelta(days=horizon_days)
    if day > latest:
        raise DeliveryError(
            f"{where} is {(day - last).days:,} days after the last transaction ({last}): "
            f"the churn horizon after the evaluation cut-off (scoring.churn_horizon_days = "
            f"{horizon_days}) would hold no data and every customer would look churned; "
            f"use a date up to {latest}, or leave --as-of out (the day after the last "
            "transaction)"
        )
    (customers,) = con.execute(
        "select count(distinct customer_id) from raw.transactions "
        "where customer_id is not null and ordered_at < ?",
        [dt.datetime.combine(day, dt.time())],
    ).fetchone()
    if customers < MIN_CUSTOMERS:
        raise DeliveryError(
            f"{customers} customer(s) with a transaction before {where}: segments and the "
            f"CLV and churn models learn from many customers and need at least "
            f"{MIN_CUSTOMERS} (a single customer cannot be segmented); check that "
            "transactions.path names the whole delivery"
        )
    if as_of and (day - last).days > 1:
        return [
            f"{where} is {(day - last).days} days after the last transaction ({last}): "
            "customers look inactive for those days, and the churn labels of the last "
            f"{(day - last).days - 1} days of the horizon are empty"
        ]
    return []
