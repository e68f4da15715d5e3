"""A real export carries the dbt descriptions and adds up: every copy, every column.

Reads the session's demo run (``published_demo``) without changing it: the descriptions
in ``marts.duckdb`` (``COMMENT ON``), ``manifest.json`` and the Parquet key-value metadata
are compared with the dbt manifest's, and the customers of every segment table with the
number of customers.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestration.publish.descriptions import from_manifest


@pytest.fixture(scope="module")
def docs(dbt_manifest: Path):
    return from_manifest(dbt_manifest)


@pytest.fixture(scope="module")
def export(published_demo: Path) -> Path:
    return published_demo / "exports" / "powerbi"


def test_marts_duckdb_comments_are_the_dbt_descriptions(export, docs):
    with duckdb.connect(str(export / "marts.duckdb"), read_only=True) as con:
        tables = dict(
            con.execute(
                "select table_name, comment from duckdb_tables() "
                "where database_name = current_database()"
            ).fetchall()
        )
        columns = con.execute(
            "select table_name, column_name, comment from duckdb_columns() "
            "where database_name = current_database()"
        ).fetchall()
    assert set(tables) == set(docs)
    assert {t: c for t, c in tables.items()} == {t: d.description for t, d in docs.items()}
    assert {(t, c): text for t, c, text in columns} == {
        (t, c): text for t, d in docs.items() for c, text in d.columns.items()
    }
    assert all(text for _, _, text in columns)


def test_manifest_json_descriptions_are_the_dbt_descriptions(export, docs):
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    assert {t["name"] for t in manifest["tables"]} == set(docs)
    for table in manifest["tables"]:
        doc = docs[table["name"]]
        assert table["description"] == doc.description
        assert {c["name"]: c["description"] for c in table["columns"]} == doc.columns


def test_parquet_metadata_carries_the_dbt_descriptions(export, docs):
    for name, doc in docs.items():
        metadata = pq.read_schema(export / f"{name}.parquet").metadata
        meta = {k.decode(): v.decode() for k, v in metadata.items()}
        assert meta["description"] == doc.description
        for column, text in doc.columns.items():
            assert meta[f"description:{column}"] == text, f"{name}.{column}"


def _one(con, sql: str):
    return con.execute(sql).fetchone()[0]


def test_summing_customers_over_any_segment_table_gives_the_customers(export):
    """Per grain (segment type, snapshot date, first month), each customer counts once."""
    with duckdb.connect(str(export / "marts.duckdb"), read_only=True) as con:
        customers = _one(con, "select count(*) from dim_customer")
        assert customers > 100
        assert _one(con, "select sum(customers) from dim_segment") == customers
        by_type = con.execute(
            "select segment_type, sum(customers) from mart_segment_summary group by 1 order by 1"
        ).fetchall()
        assert by_type == [("cluster", customers), ("rfm", customers)]
        by_snapshot = con.execute(
            "select snapshot_date, sum(customers) from mart_churn_by_segment group by 1"
        ).fetchall()
        snapshots = dict(
            con.execute(
                "select snapshot_date, count(*) from fct_customer_snapshot group by 1"
            ).fetchall()
        )
        assert dict(by_snapshot) == snapshots
        as_of = _one(con, "select max(as_of_date) from dim_customer")
        assert snapshots[as_of] == customers
        # Customers with a purchase order before the as-of date, by their first purchase month.
        first = (
            "select customer_id, date_trunc('month', min(order_date)) as first_month "
            "from fct_orders where is_before_as_of_date and not is_return_order group by 1"
        )
        buyers = _one(con, f"select count(*) from ({first})")
        assert 0 < buyers <= customers
        assert (
            _one(
                con,
                "select sum(cohort_customers) from mart_cohort_retention "
                "where months_since_first = 0",
            )
            == buyers
        )
        complete = _one(
            con,
            f"select count(*) from ({first}) where first_month < date_trunc('month', "
            f"date '{as_of}')",
        )
        assert (
            _one(
                con,
                "select sum(customers) from mart_segment_retention where months_since_first = 0",
            )
            == complete
        )
        pairs = con.execute(
            "select from_snapshot_date, to_snapshot_date, "
            "sum(customers) filter (where from_segment <> '(new customer)'), "
            "sum(customers) filter (where to_segment <> '(no longer present)') "
            "from mart_segment_migration group by 1, 2"
        ).fetchall()
        assert len(pairs) == len(snapshots) - 1
        for before, after, left, arrived in pairs:
            assert (left, arrived) == (snapshots[before], snapshots[after])
        targets = _one(con, "select count(distinct customer_id) from mart_campaign_targets")
        assert targets == _one(con, "select count(*) from mart_campaign_targets") <= customers
