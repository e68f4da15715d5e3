"""Great Expectations suites: they fail on bad data, pass on good, and scale by sampling."""

from __future__ import annotations

import duckdb
import great_expectations as gx
import pytest

from data_quality import SUITES, validate
from data_quality.suites import StageSuite


def _raw(con, rows_sql: str) -> None:
    con.execute("create schema raw")
    con.execute(
        "create table raw.load_log (run_id varchar, source varchar, file varchar, rows_read bigint,"
        " rows_loaded bigint, rows_rejected bigint, loaded_at timestamp)"
    )
    con.execute(
        "create table raw.transactions as select cast(customer_id as varchar) customer_id, "
        "cast(order_id as varchar) order_id, cast(ordered_at as timestamp) ordered_at, "
        "cast(quantity as double) quantity, cast(amount as double) amount from (" + rows_sql + ")"
    )
    (n,) = con.execute("select count(*) from raw.transactions").fetchone()
    con.execute(
        "insert into raw.load_log values ('r1', 'transactions', 'f.csv', ?, ?, 0, now())", [n, n]
    )


def _run(con, tmp_path, suite="raw_transactions", **kw):
    return validate(con, SUITES[suite](), tmp_path / "gx", tmp_path / "docs", **kw)


def test_good_raw_transactions_pass_and_data_docs_are_built(tmp_path):
    con = duckdb.connect()
    _raw(con, "select 'c' || i customer_id, 'o' || i order_id, timestamp '2024-01-01' ordered_at, "
              "1 quantity, 2.5 amount from range(100) t(i)")  # fmt: skip
    outcome = _run(con, tmp_path)
    assert outcome.passed and not outcome.failed
    assert outcome.rows == outcome.rows_validated == 100
    assert outcome.docs_index and (tmp_path / "docs" / "index.html").exists()
    assert any((tmp_path / "docs" / "validations").rglob("*.html"))


def test_critical_failures_block_and_name_the_bad_values(tmp_path):
    con = duckdb.connect()
    _raw(
        con,
        "select * from (values ('a', '1', timestamp '2024-01-01', 1, 1.0), "
        "('b', '2', timestamp '2999-01-01', 1, 1.0), ('c', '3', timestamp '2024-01-01', 1, "
        "'inf'::double), ('d', '4', timestamp '2024-01-01', 1, null)) "
        "as v(customer_id, order_id, ordered_at, quantity, amount)",
    )
    outcome = _run(con, tmp_path)
    assert not outcome.passed
    failed = {(e.column, e.severity): e.unexpected_count for e in outcome.failed}
    assert failed[("future_dates", "critical")] == 1
    assert failed[("non_finite_amounts", "critical")] == 1
    assert failed[("amount", "critical")] == 1  # the null amount, row-level
    assert [r["customer_id"] for r in outcome.bad_rows_sample] == ["d"]


def test_warning_only_failures_do_not_block(tmp_path):
    con = duckdb.connect()
    _raw(con, "select 'a' customer_id, '1' order_id, timestamp '1960-05-01' ordered_at, "
              "1 quantity, 1.0 amount")  # fmt: skip
    outcome = _run(con, tmp_path)
    assert outcome.passed and outcome.has_warnings
    assert [(e.column, e.severity) for e in outcome.failed] == [("dates_before_1970", "warning")]


def test_large_tables_are_sampled_but_metrics_stay_exact(tmp_path):
    con = duckdb.connect()
    # 300,000 good rows and one infinite amount that a sample will almost surely miss.
    _raw(
        con,
        "select 'c' || i customer_id, 'o' || i order_id, timestamp '2024-01-01' ordered_at, 1 "
        "quantity, case when i = 123457 then 'inf'::double else 1.0 end amount "
        "from range(300000) t(i)",
    )
    outcome = _run(con, tmp_path, sample_rows=20_000)
    assert outcome.sampled and outcome.rows_validated == 20_000 and outcome.rows == 300_000
    assert not outcome.passed
    assert {e.column for e in outcome.failed} == {"non_finite_amounts"}


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_suite_builds_expectations(suite):
    built = SUITES[suite]()
    assert built.row_expectations() and built.metric_expectations()
    assert "{table}" in built.metrics_sql


def test_bad_rows_with_missing_dates_are_reported_as_json(tmp_path):
    """NaT, NaN and dates in a bad row must not break the check's metadata."""
    import json

    con = duckdb.connect()
    _raw(con, "select 'a' customer_id, '1' order_id, null ordered_at, 1 quantity, "
              "cast('nan' as double) amount")  # fmt: skip
    outcome = _run(con, tmp_path)
    assert not outcome.passed
    assert json.loads(json.dumps(outcome.bad_rows_sample)) == [
        {"customer_id": "a", "order_id": "1", "ordered_at": None, "quantity": 1.0, "amount": None}
    ]


def test_row_batch_holds_the_named_columns_and_where_each_row_came_from(tmp_path):
    """Only the columns row expectations name are fetched, plus _source_file/_source_row,
    so that a bad row in the check's metadata says which file and line it came from."""
    con = duckdb.connect()
    _raw(con, "select 'a' customer_id, '1' order_id, timestamp '2024-01-01' ordered_at, "
              "1 quantity, null amount")  # fmt: skip
    con.execute("alter table raw.transactions add column note varchar default 'wide text'")
    con.execute("alter table raw.transactions add column _source_file varchar default 'd.csv'")
    con.execute("alter table raw.transactions add column _source_row bigint default 7")
    outcome = _run(con, tmp_path)
    assert not outcome.passed
    (bad,) = outcome.bad_rows_sample
    assert (bad["_source_file"], bad["_source_row"], bad["amount"]) == ("d.csv", 7, None)
    assert "note" not in bad


def test_history_is_bounded_and_each_run_renders_its_own_pages(tmp_path):
    """Daily runs must not make the check slower: old results and their pages are removed."""
    con = duckdb.connect()
    _raw(con, "select 'c' || i customer_id, 'o' || i order_id, timestamp '2024-01-01' ordered_at, "
              "1 quantity, 2.5 amount from range(10) t(i)")  # fmt: skip
    pages = tmp_path / "docs" / "validations"
    for _ in range(4):
        outcome = _run(con, tmp_path, keep_results=2)
        assert outcome.passed
    # One page per stored result: raw_transactions_rows_suite and _metrics_suite, 2 each.
    per_suite = {}
    for page in pages.rglob("*.html"):
        suite = page.relative_to(pages).parts[0]
        per_suite[suite] = per_suite.get(suite, 0) + 1
    assert per_suite == {"raw_transactions_rows_suite": 2, "raw_transactions_metrics_suite": 2}
    stored = [p for p in (tmp_path / "gx").rglob("*.json") if "validations" in p.parts]
    assert len(stored) == 4
    index = (tmp_path / "docs" / "index.html").read_text(encoding="utf-8")
    assert index.count("raw_transactions_rows_suite") >= 1


def test_after_an_append_row_rules_see_every_new_row_and_metrics_the_whole_table(tmp_path):
    """An incremental load's rows are validated in full, not found by luck in a sample."""
    con = duckdb.connect()
    con.execute("create schema raw")
    con.execute(
        "create table raw.load_log (run_id varchar, source varchar, file varchar, "
        "rows_read bigint, rows_loaded bigint, rows_rejected bigint, loaded_at timestamp, "
        "mode varchar, load_seq bigint)"
    )
    con.execute(
        "create table raw.transactions as select 'c' || i customer_id, 'o' || i order_id, "
        "timestamp '2024-01-01' ordered_at, 1.0::double quantity, 2.5::double amount, 'a.csv' _source_file, "
        "i _source_row from range(50000) t(i)"
    )
    con.execute("insert into raw.load_log values ('r1', 'transactions', 'a.csv', 50000, 50000, "
                "0, now(), 'full', 1)")  # fmt: skip
    outcome = _run(con, tmp_path, sample_rows=1_000)
    assert (outcome.row_scope, outcome.rows_validated, outcome.sampled) == ("all rows", 1_000, True)

    con.execute("insert into raw.transactions select 'n' || i, 'm' || i, timestamp '2024-02-01', "
                "1.0, case when i = 1234 then null else 1.0 end, 'b.csv', i from range(2000) t(i)")  # fmt: skip
    con.execute("insert into raw.load_log values ('r2', 'transactions', 'b.csv', 2000, 2000, 0, "
                "now(), 'incremental', 2)")  # fmt: skip
    # An old row gone bad is still found by the table-level metrics.
    con.execute("update raw.transactions set amount = 'inf' where _source_file = 'a.csv' "
                "and _source_row = 10")  # fmt: skip
    outcome = _run(con, tmp_path, sample_rows=5_000)
    assert outcome.row_scope == "rows of the newest load"
    assert (outcome.rows, outcome.rows_validated, outcome.sampled) == (52_000, 2_000, False)
    assert not outcome.passed
    assert sorted((e.column, e.unexpected_count) for e in outcome.failed) == [
        ("amount", 1),
        ("non_finite_amounts", 1),
    ]
    assert [(r["_source_file"], r["_source_row"]) for r in outcome.bad_rows_sample] == [
        ("b.csv", 1234)
    ]


def test_a_removed_gx_folder_is_made_again_in_the_same_process(tmp_path):
    """The GE context is kept per process; deleting its folder between runs is fine."""
    import shutil

    con = duckdb.connect()
    _raw(con, "select 'c' customer_id, 'o' order_id, timestamp '2024-01-01' ordered_at, "
              "1 quantity, 2.5 amount")  # fmt: skip
    assert _run(con, tmp_path).passed
    shutil.rmtree(tmp_path / "gx")
    shutil.rmtree(tmp_path / "docs")
    outcome = _run(con, tmp_path)
    assert outcome.passed and (tmp_path / "docs" / "index.html").exists()
    assert (tmp_path / "gx" / "gx" / "great_expectations.yml").exists()


def test_scores_must_carry_the_configured_horizons(tmp_path):
    """The scores suite checks the run's horizons (config scoring), not names with 90 in them."""
    con = duckdb.connect()
    con.execute("create schema features; create schema ml")
    con.execute("create table features.customer_features as select 'c' || i as customer_id "
                "from range(5) t(i)")  # fmt: skip
    con.execute(
        "create table ml.customer_scores as select customer_id, 0.5 as p_alive, "
        "null::varchar as p_alive_note, 0.2 as churn_probability, 'low' as churn_risk_band, "
        "1.0 as expected_purchases_churn_horizon, 2.0 as expected_purchases_clv_horizon, "
        "10.0 as expected_avg_spend, 20.0 as clv, 4.0 as revenue_at_risk, "
        "60 as churn_horizon_days, 180 as clv_horizon_days from features.customer_features"
    )
    configured = {"churn_horizon_days": 60, "clv_horizon_days": 180}
    suite = SUITES["customer_scores"]
    ok = validate(con, suite(horizons=configured), tmp_path / "gx", tmp_path / "docs")
    assert ok.passed and not ok.failed
    other = {"churn_horizon_days": 90, "clv_horizon_days": 365}
    bad = validate(con, suite(horizons=other), tmp_path / "gx", tmp_path / "docs")
    assert not bad.passed
    assert {(e.column, e.unexpected_count) for e in bad.failed} == {
        ("churn_horizon_days", 5),
        ("clv_horizon_days", 5),
    }
    con.execute("update ml.customer_scores set clv_horizon_days = 365 where customer_id = 'c0'")
    mixed = validate(con, suite(), tmp_path / "gx", tmp_path / "docs")
    assert [e.column for e in mixed.failed] == ["horizons_beyond_one"]


# ---- README: "Row-level rules see every row up to 200,000 and a repeatable sample above
# that"; "the newest 30 results of each suite are kept".


def _amounts(con, rows: int, null_every: int | None = None) -> StageSuite:
    """A table of ``rows`` amounts (NULL at every ``null_every``-th row, and at the last
    row) and a suite with one row rule: amount is not null."""
    nulls = f"i % {null_every} = 7 or " if null_every else ""
    con.execute(
        f"create or replace table amounts as select i as _source_row, case when {nulls}"
        f"i = {rows - 1} then null else 1.0 end as amount from range({rows}) t(i)"
    )
    return StageSuite(
        name="amounts",
        table="amounts",
        row_expectations=lambda: [gx.expectations.ExpectColumnValuesToNotBeNull(column="amount")],
    )


@pytest.mark.parametrize(("rows", "validated"), [(200_000, 200_000), (200_001, 200_000)])
def test_row_rules_see_every_row_up_to_200000(tmp_path, rows, validated):
    con = duckdb.connect()
    outcome = validate(con, _amounts(con, rows), tmp_path / "gx", tmp_path / "docs")
    assert (outcome.rows, outcome.rows_validated) == (rows, validated)
    assert outcome.sampled is (rows > 200_000)
    if rows == 200_000:  # every row seen: the last one is found
        assert [e.unexpected_count for e in outcome.failed] == [1]


def test_the_sample_above_200000_rows_is_the_same_every_time(tmp_path):
    """Two validations in two connections sample the same rows: the same bad rows are found."""
    path = tmp_path / "w.duckdb"
    found = []
    for _ in range(2):
        with duckdb.connect(str(path)) as con:
            suite = _amounts(con, 300_000, null_every=300)
            outcome = validate(con, suite, tmp_path / "gx", tmp_path / "docs")
        assert outcome.sampled and outcome.rows_validated == 200_000
        (failed,) = outcome.failed
        rows = sorted(r["_source_row"] for r in outcome.bad_rows_sample)
        found.append((failed.unexpected_count, rows))
    # about 2/3 of the 1,001 NULLs are in a sample of 2/3 of the rows
    assert 600 < found[0][0] < 740
    assert found[0] == found[1]


def test_the_newest_30_results_of_each_suite_are_kept(tmp_path):
    con = duckdb.connect()
    suite = _amounts(con, 10)
    for _ in range(31):
        validate(con, suite, tmp_path / "gx", tmp_path / "docs")
    stored = [p for p in (tmp_path / "gx").rglob("*.json") if "validations" in p.parts]
    assert len(stored) == 30
    pages = list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert len(pages) == 30
