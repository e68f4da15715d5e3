"""Every Great Expectations suite fails on the invariant it guards, with its severity.

Each case breaks one invariant of a real warehouse (the shared demo run's, in a
transaction that is rolled back) and validates the suite that guards it: exactly that
expectation fails, with the severity the README gives it (critical blocks, a warning
does not).
"""

from __future__ import annotations

import shutil

import duckdb
import pytest

from data_quality import SUITES, validate

BETWEEN = "expect_column_values_to_be_between"
NOT_NULL = "expect_column_values_to_not_be_null"
ONE_CUSTOMER = "(select min(customer_id) from features.customer_features)"

# suite, what breaks, the SQL that breaks it, the failed expectation (type, column, severity)
CASES = [
    ("raw_transactions", "a file's rows do not add up in raw.load_log",
     "update raw.load_log set rows_read = rows_read + 1 where source = 'transactions'",
     (BETWEEN, "unreconciled_rows", "critical")),
    ("raw_customers", "an age of 130",
     "update raw.customers set age = 130 where customer_id = " + ONE_CUSTOMER,
     (BETWEEN, "age", "warning")),
    ("int_orders", "net amount != gross - returned",
     "update intermediate.int_orders set net_amount = net_amount + 1 "
     "where order_id = (select min(order_id) from intermediate.int_orders)",
     (BETWEEN, "inconsistent_net_amounts", "critical")),
    ("customer_features", "an R score of 6",
     "update features.customer_features set r_score = 6 where customer_id = " + ONE_CUSTOMER,
     (BETWEEN, "r_score", "critical")),
    ("customer_features", "net spend below zero",
     "update features.customer_features set monetary_total = -5 where customer_id = "
     + ONE_CUSTOMER,
     (BETWEEN, "monetary_total", "warning")),
    ("customer_clusters", "a customer without a segment",
     "delete from ml.customer_clusters where customer_id = " + ONE_CUSTOMER,
     (BETWEEN, "customers_without_segment", "critical")),
    ("customer_scores", "P(alive) withheld without a reason",
     "update ml.customer_scores set p_alive = null, p_alive_note = null where customer_id = "
     + ONE_CUSTOMER,
     (BETWEEN, "p_alive_note_mismatches", "critical")),
    ("marts", "a HUGEINT column Power BI cannot load",
     "alter table marts.dim_customer add column lifetime_cents hugeint default 1",
     (BETWEEN, "non_power_bi_columns", "critical")),
]  # fmt: skip


@pytest.fixture(scope="module")
def warehouse(published_demo, tmp_path_factory):
    path = tmp_path_factory.mktemp("suites") / "warehouse.duckdb"
    shutil.copyfile(published_demo / "warehouse.duckdb", path)
    with duckdb.connect(str(path)) as con:
        yield con


def test_every_suite_has_a_case():
    assert {suite for suite, *_ in CASES} == set(SUITES)


@pytest.mark.parametrize(
    ("suite", "sql", "expected"),
    [
        pytest.param(suite, sql, expected, id=f"{suite}: {what}")
        for suite, what, sql, expected in CASES
    ],
)
def test_suite_fails_on_the_broken_invariant_with_its_severity(
    warehouse, tmp_path, suite, sql, expected
):
    folder = tmp_path / "gx"
    assert validate(warehouse, SUITES[suite](), folder, tmp_path / "docs").failed == []
    warehouse.begin()
    try:
        warehouse.execute(sql)
        outcome = validate(warehouse, SUITES[suite](), folder, tmp_path / "docs")
    finally:
        warehouse.rollback()
    assert [(e.expectation, e.column, e.severity) for e in outcome.failed] == [expected]
    (failed,) = outcome.failed
    assert failed.unexpected_count == 1
    # critical blocks the pipeline, a warning does not
    assert outcome.passed is (expected[2] == "warning")
