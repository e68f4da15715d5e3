"""A delivery the run cannot score stops before the features, saying why (issue 17, 9).

One customer used to end in ``FloatingPointError: conditional expected purchases: 1
value(s) are not finite`` after a minute of dbt; ``--as-of 2030-01-01`` on 2024 data ran
and scored every customer churned (0.999) without a word.
"""

from __future__ import annotations

import datetime as dt
import io

import duckdb
import pytest

from orchestration.cli import run_pipeline
from orchestration.failures import run_failure_lines
from orchestration.io.delivery import MIN_CUSTOMERS, DeliveryError, check_delivery
from orchestration.settings import Settings

LAST = dt.date(2024, 3, 31)


def _raw(customers: int, first=dt.date(2024, 1, 1), last=LAST) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema raw")
    con.execute("create table raw.transactions (customer_id varchar, ordered_at timestamp)")
    rows = [(f"C{i}", first) for i in range(customers)] + [("C0", last)]
    con.executemany("insert into raw.transactions values (?, ?)", rows)
    return con


def test_one_customer_delivery_is_refused_naming_the_minimum():
    with pytest.raises(DeliveryError, match=rf"^1 customer\(s\) .* need at least {MIN_CUSTOMERS}"):
        check_delivery(_raw(1), None, 90)
    assert check_delivery(_raw(MIN_CUSTOMERS), None, 90) == []


def test_as_of_2030_on_2024_data_is_refused_naming_the_flag_and_the_latest_date():
    with pytest.raises(DeliveryError) as err:
        check_delivery(_raw(50), "2030-01-01", 90)
    assert str(err.value).startswith(
        "the as-of date 2030-01-01 (--as-of / CUSTSEG_AS_OF_DATE) is 2,102 days after the "
        "last transaction (2024-03-31)"
    )
    assert "use a date up to 2024-06-29" in str(err.value)
    check_delivery(_raw(50), "2024-06-29", 90)  # the latest allowed


def test_as_of_a_week_after_the_data_runs_with_a_warning():
    (warning,) = check_delivery(_raw(50), "2024-04-07", 90)
    assert "is 7 days after the last transaction (2024-03-31)" in warning
    assert check_delivery(_raw(50), "2024-04-01", 90) == []  # the default date: no warning


def test_as_of_before_the_first_transaction_is_refused():
    with pytest.raises(DeliveryError, match="no transaction before the as-of date 2023-12-01"):
        check_delivery(_raw(50), "2023-12-01", 90)


def test_as_of_early_in_the_data_counts_only_the_customers_before_it():
    con = _raw(50, first=dt.date(2024, 3, 1))  # C0 alone bought in January
    con.execute("insert into raw.transactions values ('C0', '2024-01-02')")
    with pytest.raises(DeliveryError, match=r"^1 customer\(s\) with a transaction before"):
        check_delivery(con, "2024-02-01", 90)


def test_single_customer_delivery_fails_the_run_in_one_line_before_dbt(tmp_path):
    (tmp_path / "t.csv").write_text(
        "cust,order,when,qty,price\n"
        + "".join(f"A,{i},2024-0{i}-05,1,{5 + i}\n" for i in range(1, 6))
    )
    config = tmp_path / "shop.yaml"
    config.write_text(
        "transactions:\n  path: t.csv\n  columns: {customer_id: cust, order_id: order, "
        "ordered_at: when, quantity: qty, unit_price: price}\n"
    )
    settings = Settings(workdir=str(tmp_path / "wd"), config_path=str(config))
    result = run_pipeline(settings, stream=io.StringIO())
    assert run_failure_lines(result) == [
        "dbt_features: 1 customer(s) with a transaction before the day after the last "
        f"transaction (2024-05-06): segments and the CLV and churn models learn from many "
        f"customers and need at least {MIN_CUSTOMERS} (a single customer cannot be "
        "segmented); check that transactions.path names the whole delivery"
    ]
    assert not (tmp_path / "wd" / "dbt" / "features").exists()  # dbt never started
