"""Re-running dbt on the same input gives bit-identical features and marts.

DuckDB aggregates in parallel, and floating-point addition is not associative,
so a SUM / AVG / STDDEV over DOUBLE values can differ in its last bits from one
run to the next, depending on how rows were split between threads. The dbt
models avoid that (money is summed as DECIMAL, spread statistics come from exact
integer sums); this test builds the same generated input twice into two DuckDB
files and compares every column of features.customer_features and of every
marts table exactly (floats bit for bit, via float.hex).

The input must be large enough for DuckDB to split the aggregations between
threads (~260k transaction lines, 20k customers), and DuckDB gets more threads
than the usual 1-2 cores of a CI machine, so that the split differs between runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from orchestration.demo import generate
from orchestration.ingest.load import ingest
from orchestration.io.config import demo_config
from tests.dbt._dbt_helpers import create_ml_stand_ins, run_dbt

CUSTOMERS = 20_000  # -> ~260k transaction lines, ~180k orders, ~190k events
SEED = 7
DUCKDB_THREADS = 4

# Same target as dbt_project/profiles.yml, plus DuckDB's own thread count.
PROFILE = f"""
custseg:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{{{{ var('warehouse_path') }}}}"
      threads: 1
      settings:
        threads: {DUCKDB_THREADS}
"""

# Every table the test compares, with the key it is sorted by.
TABLES = {
    "features.customer_features": ("customer_id",),
    "features.customer_outcomes": ("customer_id",),
    "marts.dim_customer": ("customer_id",),
    "marts.dim_date": ("date_key",),
    "marts.dim_segment": ("cluster_id",),
    "marts.fct_customer_snapshot": ("customer_id",),
    "marts.fct_orders": ("order_id",),
    "marts.mart_segment_summary": ("segment_type", "segment_name"),
    "marts.mart_cohort_retention": ("cohort_month", "months_since_first"),
    "marts.mart_segment_retention": ("segment_name", "months_since_first"),
    "marts.mart_churn_by_segment": ("snapshot_date", "segment_name"),
    "marts.mart_model_evaluation": ("model_family", "candidate", "metric"),
}


def _build(tmp: Path, data_dir: Path) -> Path:
    """Ingest data_dir into a new warehouse and run the whole dbt project on it."""
    profiles_dir = tmp / "profiles"
    profiles_dir.mkdir()
    (profiles_dir / "profiles.yml").write_text(PROFILE)
    db_path = tmp / "warehouse.duckdb"
    with duckdb.connect(str(db_path)) as con:
        ingest(con, demo_config(data_dir), "determinism", log=lambda *_: None)
    variables = {"warehouse_path": str(db_path)}
    run_dbt(
        tmp, "build", "--exclude", "tag:post_ml", variables=variables, profiles_dir=profiles_dir
    )
    # Stand-in for the ML step: a deterministic clustering, so only dbt can make a difference.
    with duckdb.connect(str(db_path)) as con:
        create_ml_stand_ins(
            con,
            "select customer_id, r_score - 1 as cluster_id, 'R' || r_score as cluster_label"
            " from features.customer_features",
        )
    run_dbt(tmp, "build", "--select", "tag:post_ml", variables=variables, profiles_dir=profiles_dir)
    return db_path


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> tuple[Path, Path]:
    data_dir = tmp_path_factory.mktemp("determinism_data")
    generate(data_dir, customers=CUSTOMERS, seed=SEED)
    return (
        _build(tmp_path_factory.mktemp("determinism_a"), data_dir),
        _build(tmp_path_factory.mktemp("determinism_b"), data_dir),
    )


def _exact(value: object) -> object:
    """A value that compares equal only when bit-identical (floats: hex, so -0.0 != 0.0)."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else value.hex()
    return value


def _table(
    db_path: Path, table: str, key: tuple[str, ...] | None = None
) -> tuple[list[tuple[str, str]], list[tuple]]:
    key = key or TABLES[table]
    with duckdb.connect(str(db_path), read_only=True) as con:
        schema, name = table.split(".")
        columns = con.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, name],
        ).fetchall()
        rows = con.execute(f"select * from {table} order by {', '.join(key)}").fetchall()
    return columns, rows


def _differences(
    columns: list[tuple[str, str]], key: list[int], rows_a: list[tuple], rows_b: list[tuple]
) -> Iterator[str]:
    """One line per column that is not bit-identical: how many rows differ, and an example."""
    for i, (column, data_type) in enumerate(columns):
        diff = [(a, b) for a, b in zip(rows_a, rows_b, strict=True) if _exact(a[i]) != _exact(b[i])]
        if diff:
            a, b = diff[0]
            yield (
                f"{column} ({data_type}): {len(diff)} of {len(rows_a)} rows"
                f" ({len(diff) / len(rows_a):.1%}) differ,"
                f" e.g. {tuple(a[k] for k in key)}: {a[i]!r} vs {b[i]!r}"
            )


def test_input_is_large_enough_for_parallel_aggregation(builds: tuple[Path, Path]) -> None:
    with duckdb.connect(str(builds[0]), read_only=True) as con:
        lines, customers = con.execute(
            "select count(*), count(distinct customer_id) from raw.transactions"
        ).fetchone()
    assert lines >= 200_000
    assert customers >= 15_000


@pytest.mark.parametrize("table", list(TABLES))
def test_rebuild_is_bit_identical(builds: tuple[Path, Path], table: str) -> None:
    columns_a, rows_a = _table(builds[0], table)
    columns_b, rows_b = _table(builds[1], table)
    assert columns_a == columns_b
    assert len(rows_a) == len(rows_b) > 0
    names = [c for c, _ in columns_a]
    key = [names.index(k) for k in TABLES[table]]
    assert [tuple(r[k] for k in key) for r in rows_a] == [tuple(r[k] for k in key) for r in rows_b]
    differences = list(_differences(columns_a, key, rows_a, rows_b))
    assert not differences, f"{table} differs between two builds of the same input:\n" + "\n".join(
        differences
    )


# What the models avoid: money summed as DOUBLE per customer, in parallel.
DOUBLE_SUM = (
    "select customer_id, sum(quantity * cast(unit_price as double)) as spend "
    "from raw.transactions group by customer_id"
)


def test_control_a_double_sum_built_twice_is_caught(builds: tuple[Path, Path]) -> None:
    """The comparison above can fail: the same DOUBLE sum, computed in each build's warehouse
    with the same threads, differs in its last bits for some customers. Which ones depends
    on the threads, so it is computed again (at most 10 times) until a difference shows;
    it shows within two tries on a 2-core machine."""
    table = "control.double_spend"
    for _ in range(10):
        for db_path in builds:
            with duckdb.connect(str(db_path), config={"threads": DUCKDB_THREADS}) as con:
                con.execute("create schema if not exists control")
                con.execute(f"create or replace table {table} as {DOUBLE_SUM}")
        (columns, rows_a), (_, rows_b) = (_table(b, table, ("customer_id",)) for b in builds)
        differences = list(_differences(columns, [0], rows_a, rows_b))
        if differences:
            break
    assert len(differences) == 1 and differences[0].startswith("spend (DOUBLE): "), differences
