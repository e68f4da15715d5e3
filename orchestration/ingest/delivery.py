"""Can the transactions be scored as of this run's date? Checked before raw.* changes.

Two deliveries load cleanly and then give nonsense or a deep failure, so the run stops
with a message naming the flag and the dates:

* **An as-of date outside the data.** Features are computed from the transactions
  before the as-of date, so it must be after the first transaction; and it may not be
  after the day after the last one: the churn model learns from the customers at the
  evaluation cut-off (as-of minus the churn horizon) who bought nothing in the horizon
  after it, and days after the data look like days without purchases (``--as-of
  2030-01-01`` on 2011 data scored every customer churned, 0.999). The ingest checks
  the date against the delivery it has staged, before it swaps or appends it into
  ``raw.*`` (:func:`check_staged_as_of`); ``custseg run --as-of`` checks it against the
  files before the run starts (``orchestration/ingest/load.py``, :func:`delivery_range`);
  a run without an ingest checks it against ``raw.*`` (:func:`check_delivery`).
* **Too few customers.** Segments, the purchase (BTYD) models and the churn model learn
  from many customers' histories: a single customer cannot be segmented, and BG/NBD fits
  on a handful of customers diverge (on 1 to 5 customers, measured: "conditional expected
  purchases ... not finite"). Fewer than ``MIN_CUSTOMERS`` customers with a transaction
  before the as-of date stop the run before the features.
"""

from __future__ import annotations

import datetime as dt

import duckdb

MIN_CUSTOMERS = 10
AS_OF = "the as-of date {as_of} (--as-of / CUSTSEG_AS_OF_DATE)"
DAY = dt.timedelta(days=1)


class DeliveryError(ValueError):
    """The transactions cannot be scored as of the run's date."""


def transaction_range(
    con: duckdb.DuckDBPyConnection, *relations: str
) -> tuple[dt.date, dt.date] | None:
    """(first, last) transaction date over ``relations`` (default ``raw.transactions``), or
    None without a dated transaction."""
    union = " union all ".join(
        f"select ordered_at from {r}" for r in relations or ["raw.transactions"]
    )
    first, last = con.execute(f"select min(ordered_at), max(ordered_at) from ({union})").fetchone()
    return None if last is None else (first.date(), last.date())


def check_as_of(as_of: dt.date | None, first: dt.date, last: dt.date) -> None:
    """Raise :class:`DeliveryError` unless ``first < as_of <= last + 1 day`` (None: the
    default, the day after the last transaction, is always in range)."""
    if as_of is None or first < as_of <= last + DAY:
        return
    if as_of <= first:
        why = "is not after the first transaction: no customer has a history before it"
    else:
        why = (
            f"is {(as_of - last).days:,} days after the last transaction: customers would "
            "look inactive for those days and the churn model would learn that everybody churns"
        )
    raise DeliveryError(
        f"{AS_OF.format(as_of=as_of)} {why}. The data's transactions run from {first} to "
        f"{last}: use an as-of date from {first + DAY} to {last + DAY}, or leave --as-of out "
        f"(the day after the last transaction, {last + DAY})"
    )


def check_staged_as_of(
    con: duckdb.DuckDBPyConnection, as_of: dt.date | None, *relations: str
) -> None:
    """:func:`check_as_of` on the transactions a load is about to publish: ``relations``
    are its staging table (and, for an append, ``raw.transactions``)."""
    if as_of is None:
        return
    span = transaction_range(con, *relations)
    if span is not None:
        check_as_of(as_of, *span)


def check_delivery(con: duckdb.DuckDBPyConnection, as_of: dt.date | None) -> None:
    """Raise :class:`DeliveryError` for ``raw.transactions`` the run cannot score as of
    ``as_of`` (None: the day after the last transaction)."""
    span = transaction_range(con)
    if span is None:
        return  # an empty delivery: the raw_transactions checks say so
    first, last = span
    check_as_of(as_of, first, last)
    day = as_of or last + DAY
    where = AS_OF.format(as_of=day) if as_of else f"the day after the last transaction ({day})"
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
