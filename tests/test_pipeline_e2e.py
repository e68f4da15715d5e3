"""The whole asset graph, materialised for real on generated data in a temp dir."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.pipeline_utils import copy_workdir, published_marts, query, run

N_CUSTOMERS = 800  # the shared published_demo workdir (tests/conftest.py)


@pytest.fixture(scope="module")
def demo_run(published_demo, tmp_path_factory):
    """A private copy of the shared demo run, and that run's progress output."""
    workdir = copy_workdir(published_demo, tmp_path_factory.mktemp("demo") / "wd")
    return workdir, (workdir / "logs" / "progress.txt").read_text(encoding="utf-8")


def _input_transactions(workdir: Path) -> pd.DataFrame:
    return pd.read_csv(workdir / "demo_data" / "transactions.csv", dtype={"customer_id": str})


def test_progress_is_printed_per_stage(demo_run):
    _, output = demo_run
    for stage in (
        "ingest",
        "dbt features",
        "segmentation refit",
        "segment assignment",
        "dbt features as of the churn cut-offs",
        "CLV and churn scores",
        "dbt marts",
        "Power BI export",
    ):
        assert f"✓ {stage}" in output, output


def test_customers_in_equal_customers_out(demo_run):
    workdir, _ = demo_run
    customers_in = _input_transactions(workdir)["customer_id"].nunique()
    assert query(
        workdir, "select count(*), count(distinct customer_id) from marts.dim_customer"
    ) == [(customers_in, customers_in)]
    exported = pq.read_table(workdir / "exports" / "powerbi" / "dim_customer.parquet")
    assert exported.num_rows == customers_in


def test_each_customer_in_exactly_one_rfm_segment_and_one_cluster(demo_run):
    workdir, _ = demo_run
    nulls = query(
        workdir,
        "select count(*) filter (where rfm_segment is null), "
        "count(*) filter (where cluster_id is null or segment_name is null) from marts.dim_customer",
    )
    assert nulls == [(0, 0)]
    # One label per cluster id and vice versa.
    pairs = query(workdir, "select distinct cluster_id, segment_name from marts.dim_customer")
    assert len({p[0] for p in pairs}) == len({p[1] for p in pairs}) == len(pairs) >= 2
    # Segment summary covers every customer once per segmentation.
    sums = query(
        workdir,
        "select segment_type, sum(customers) from marts.mart_segment_summary group by 1 order by 1",
    )
    assert sums == [("cluster", N_CUSTOMERS), ("rfm", N_CUSTOMERS)]


def test_fct_orders_revenue_equals_net_amount_of_accepted_input_rows(demo_run):
    workdir, _ = demo_run
    tx = _input_transactions(workdir)
    expected = float((tx["quantity"] * tx["unit_price"]).sum())
    (revenue,) = query(workdir, "select sum(net_amount) from marts.fct_orders")[0]
    assert revenue == pytest.approx(expected, rel=1e-9)
    (loaded,) = query(
        workdir, "select sum(rows_loaded) from raw.load_log where source = 'transactions'"
    )[0]
    assert loaded == len(tx)


def test_manifest_matches_the_published_files(demo_run):
    workdir, _ = demo_run
    published = workdir / "exports" / "powerbi"
    manifest = json.loads((published / "manifest.json").read_text())
    files = sorted(p.name for p in published.iterdir())
    expected = [t["file"] for t in manifest["tables"]] + ["manifest.json", manifest["duckdb_file"]]
    assert files == sorted(expected)
    assert {t["name"] for t in manifest["tables"]} == {
        "dim_customer", "dim_segment", "dim_date", "fct_orders", "fct_customer_snapshot",
        "mart_segment_summary", "mart_cohort_retention", "mart_segment_retention",
        "mart_churn_by_segment", "mart_segment_migration", "mart_campaign_targets",
        "mart_model_evaluation",
    }  # fmt: skip
    for entry in manifest["tables"]:
        table = pq.read_table(published / entry["file"])
        assert table.num_rows == entry["rows"], entry["name"]
        assert table.column_names == [c["name"] for c in entry["columns"]], entry["name"]
        (rows,) = query(workdir, f"select count(*) from marts.{entry['name']}")[0]
        assert rows == entry["rows"]
    assert manifest["as_of_date"] == "2026-01-01"  # the day after the generator's end date


def test_rerun_on_same_inputs_gives_identical_marts(demo_run):
    workdir, _ = demo_run
    before = published_marts(workdir)
    run(workdir)
    after = published_marts(workdir)
    assert before.keys() == after.keys()
    assert len(before["dim_customer"]) == N_CUSTOMERS
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], check_exact=True, obj=name)
