"""The project's own generic tests (dbt_project/tests/generic) fail on bad rows and say where."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from orchestration.dbt import invoke_dbt
from tests.dbt._dbt_helpers import PROJECT_DIR


def _test_source(tmp: Path, db: Path, select: str) -> list[tuple[str, str, int]]:
    """``dbt test --store-failures`` on ``select``; (test name, status, failures) per test."""
    args = [
        "test", "--select", select, "--store-failures",
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs"),
        "--vars", json.dumps({"warehouse_path": str(db)}), "--quiet",
    ]  # fmt: skip
    res = invoke_dbt(args)
    return [(r.node.name, str(r.status), r.failures) for r in res.result.results]


def test_not_null_columns_fails_naming_each_column_with_nulls(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema raw")
        con.execute("create table raw.events (customer_id varchar, event_at timestamp, x int)")
        con.execute(
            "insert into raw.events values ('a', timestamp '2024-01-01', null), "
            "(null, timestamp '2024-01-02', 1), (null, null, 2), ('b', timestamp '2024-01-03', 3)"
        )
    (result,) = _test_source(tmp_path, db, "source:raw.events")
    # Failures count null values (3), as the per-column not_null tests did together.
    assert result == ("source_not_null_columns_raw_events_customer_id__event_at", "fail", 3)
    with duckdb.connect(str(db), read_only=True) as con:
        (table,) = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_name like '%not_null_columns%'"
        ).fetchone()
        failures = con.execute(f"select * from {table} order by column_name").fetchall()
    # x has a null but is not in the list; the listed columns are counted exactly.
    assert failures == [("customer_id", 2), ("event_at", 1)]


def test_not_null_columns_passes_on_full_and_on_empty_tables(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("create schema raw")
        con.execute("create table raw.events (customer_id varchar, event_at timestamp)")
    assert _test_source(tmp_path, db, "source:raw.events") == [
        ("source_not_null_columns_raw_events_customer_id__event_at", "pass", 0)
    ]
    with duckdb.connect(str(db)) as con:
        con.execute("insert into raw.events values ('a', timestamp '2024-01-01')")
    assert [s for _, s, _ in _test_source(tmp_path / "2", db, "source:raw.events")] == ["pass"]
