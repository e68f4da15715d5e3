"""The two real data sets in ../shared/data run end to end with only a config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, built_once
from tests.evidence_checks import assert_churn_rule_holds, assert_clv_judged_out_of_time
from tests.pipeline_utils import query, run
from tests.segment_checks import assert_segments_hold_up

pytestmark = pytest.mark.slow


def online_retail_parquet_run(tmp_path_factory) -> Path:
    """The workdir of one run of examples/online_retail.yaml per test session.

    Shared with tests/test_database_source.py, which compares its marts with a run from
    PostgreSQL; the tests only read it. (A plain session fixture would run once per module
    that uses it, hence ``built_once``.)
    """
    folder = built_once(
        tmp_path_factory,
        "online_retail_parquet",
        lambda base: run(base / "wd", REPO / "examples" / "online_retail.yaml"),
    )
    return folder / "wd"


@pytest.mark.parametrize(
    ("config", "rows_read", "customers", "quarantined", "revenue"),
    [
        # data/README.md: 69,659 rows, 23,570 customers, revenue $2,500,315.63. CDNOW's
        # same-day identical lines are real purchases: nothing may be dropped.
        ("cdnow.yaml", 69_659, 23_570, 0, 2_500_315.63),
        # 525,461 rows, 4,383 distinct customer ids, 107,927 rows without a customer.
        ("online_retail.yaml", 525_461, 4_383, 107_927, None),
    ],
)
def test_real_data_set_end_to_end(
    tmp_path, tmp_path_factory, shared_data, config, rows_read, customers, quarantined, revenue
):
    if config == "online_retail.yaml":
        workdir = online_retail_parquet_run(tmp_path_factory)
    else:
        workdir = tmp_path / "wd"
        run(workdir, REPO / "examples" / config)

    log = query(
        workdir, "select sum(rows_read), sum(rows_loaded), sum(rows_rejected) from raw.load_log"
    )
    read, loaded, rejected = log[0]
    assert read == rows_read
    assert loaded + rejected == read
    assert rejected == quarantined
    assert query(workdir, "select count(*) from raw.quarantine_transactions") == [(rejected,)]
    assert query(workdir, "select count(*) from raw.transactions") == [(loaded,)]

    assert query(
        workdir, "select count(*), count(distinct customer_id) from marts.dim_customer"
    ) == [(customers, customers)]
    assert query(
        workdir,
        "select count(*) from marts.dim_customer where rfm_segment is null or cluster_id is null",
    ) == [(0,)]
    # Segmentation: chosen for action, judged on the horizon after the evaluation cut-off.
    candidates = query(
        workdir,
        "select algorithm, chosen, stability from ml.segmentation_candidates order by candidate",
    )
    assert {c[0] for c in candidates} == {"rfm_grid", "kmeans", "ward", "hdbscan", "dbscan"}
    (chosen,) = [c for c in candidates if c[1]]
    assert chosen[2] >= 0.75
    assert_segments_hold_up(workdir, config)
    assert query(workdir, "select count(distinct customer_id) from ml.customer_clusters") == [
        (customers,)
    ]
    # Value and churn scores for every customer.
    assert query(
        workdir,
        "select count(*) from ml.customer_scores where churn_probability between 0 and 1 "
        "and clv >= 0",
    ) == [(customers,)]
    # Issue 16: churn ships the model only if it beats the best one-line baseline by
    # 0.01 ROC AUC out of time, else that baseline with the reason; CLV is judged too.
    aucs = assert_churn_rule_holds(workdir)
    print(f"\n{config} churn ROC AUC at the evaluation cut-off: {aucs}")
    assert_clv_judged_out_of_time(workdir)
    if revenue is not None:
        assert query(workdir, "select round(sum(net_amount), 2) from marts.fct_orders") == [
            (revenue,)
        ]
