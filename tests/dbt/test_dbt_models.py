"""End-to-end tests of the dbt project (dbt_project/) on a tiny hand-made warehouse.

Each warehouse is a fresh DuckDB file in a temporary directory with the raw.*
tables of docs/data_contract.md. dbt runs in-process (dbtRunner) with its
target and log paths in the same temporary directory, so parallel runs do not
collide. Expected values below were computed by hand from the rows in
``TRANSACTIONS`` (see the comments), not by re-running the SQL.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO
from tests.dbt._dbt_helpers import create_ml_stand_ins, run_dbt

POWER_BI_TYPES = {"BIGINT", "INTEGER", "DOUBLE", "BOOLEAN", "VARCHAR", "DATE", "TIMESTAMP"}
MARTS = (
    "dim_customer",
    "dim_date",
    "dim_segment",
    "fct_customer_snapshot",
    "fct_orders",
    "mart_campaign_targets",
    "mart_churn_by_segment",
    "mart_cohort_retention",
    "mart_model_evaluation",
    "mart_segment_migration",
    "mart_segment_retention",
    "mart_segment_summary",
)

# --- raw.* exactly as in docs/data_contract.md -----------------------------------------
RAW_DDL = """
create schema raw;
create table raw.transactions (
    customer_id varchar not null,
    order_id varchar not null,
    ordered_at timestamp not null,
    quantity double not null,
    unit_price double,
    amount double not null,
    product_id varchar,
    category varchar,
    country varchar,
    channel varchar,
    is_cancellation boolean not null,
    _source_file varchar,
    _source_row bigint
);
create table raw.customers (
    customer_id varchar not null,
    signup_at timestamp,
    birth_year integer,
    age integer,
    gender varchar,
    region varchar,
    _source_file varchar,
    _source_row bigint
);
create table raw.events (
    customer_id varchar not null,
    event_at timestamp not null,
    event_type varchar,
    _source_file varchar,
    _source_row bigint
);
"""

F1 = "/data/sales_1.csv"
F2 = "/data/sales_2.csv"
# (customer_id, order_id, ordered_at, quantity, unit_price, amount, product_id,
#  is_cancellation, _source_file, _source_row)
TRANSACTIONS = [
    # A = 00001: purchase days 01-01 (25), 01-11 (5 + 20), 02-20 (30); one return order C4.
    ("00001", "o1", "2024-01-01 10:00:00", 2, 5.0, 10.0, "p1", False, F1, 1),
    ("00001", "o1", "2024-01-01 10:00:00", 2, 5.0, 10.0, "p1", False, F1, 2),  # exact duplicate
    ("00001", "o1", "2024-01-01 10:05:00", 1, 15.0, 15.0, "p2", False, F1, 3),
    ("00001", "o2", "2024-01-11 09:00:00", 1, 5.0, 5.0, "p1", False, F1, 4),
    ("00001", "o3", "2024-01-11 15:00:00", 4, 5.0, 20.0, "p3", False, F1, 5),
    ("00001", "C4", "2024-01-20 12:00:00", -1, 5.0, -5.0, "p1", True, F1, 6),
    ("00001", "o5", "2024-02-20 08:00:00", 2, 15.0, 30.0, "p2", False, F1, 7),
    # B = 00002: o6 on 02-10; o7 on the leap day is a mixed order (purchase 100, return 20).
    ("00002", "o6", "2024-02-10 10:00:00", 1, 100.0, 100.0, "p4", False, F1, 8),
    ("00002", "o7", "2024-02-29 23:59:00", 1, 100.0, 100.0, "p4", False, F1, 9),
    ("00002", "o7", "2024-02-29 23:59:00", -1, 20.0, -20.0, "p5", False, F1, 10),
    # C = 00003: returns only.
    ("00003", "C8", "2024-02-15 11:00:00", -2, 7.0, -14.0, "p1", True, F1, 11),
    # D = 00004: one purchase on the last transaction day, delivered twice in two files.
    ("00004", "o9", "2024-03-05 12:00:00", 1, 50.0, 50.0, "p1", False, F1, 12),
    ("00004", "o9", "2024-03-05 12:00:00", 1, 50.0, 50.0, "p1", False, F2, 1),  # exact duplicate
]
AMOUNT_AFTER_DEDUP = 291.0  # 75 (A) + 180 (B) - 14 (C) + 50 (D)
DEFAULT_AS_OF = dt.date(2024, 3, 6)  # day after the last transaction (2024-03-05)

CUSTOMERS = [
    # A appears twice: the later file wins (region "south"); age from birth_year: 2024 - 1990.
    ("00001", "2023-06-01 00:00:00", 1990, None, "F", "north", "/data/customers_1.csv", 1),
    ("00001", "2023-06-01 00:00:00", 1990, None, "F", "south", "/data/customers_2.csv", 1),
    ("00002", None, None, 50, "M", "west", "/data/customers_1.csv", 2),
    ("00099", None, 1980, None, None, None, "/data/customers_1.csv", 3),  # no transactions
]
EVENTS = [
    # As of 2024-03-06 with a 90-day window starting 2023-12-07.
    ("00001", "2024-03-01 10:00:00", "view", "/data/events.csv", 1),
    ("00001", "2024-03-01 10:01:00", "click", "/data/events.csv", 2),
    ("00001", "2023-10-01 10:00:00", "view", "/data/events.csv", 3),  # before the window
    ("00001", "2024-03-06 09:00:00", "view", "/data/events.csv", 4),  # on the as-of date
    ("00099", "2024-03-01 10:00:00", "view", "/data/events.csv", 5),  # not a customer
    ("00001", "2023-10-02 10:00:00", "search", "/data/events.csv", 6),  # a type only before it
]
CLUSTERS = [
    ("00001", 0, "High value"),
    ("00002", 0, "High value"),
    ("00003", 1, "Low value"),
    ("00004", 1, "Low value"),
]


def _create_raw(db_path: Path, *, with_optional: bool) -> None:
    with duckdb.connect(str(db_path)) as con:
        con.execute(RAW_DDL)
        con.executemany(
            "insert into raw.transactions values (?, ?, ?, ?, ?, ?, ?, null, 'UK', null, ?, ?, ?)",
            TRANSACTIONS,
        )
        if with_optional:
            con.executemany("insert into raw.customers values (?, ?, ?, ?, ?, ?, ?, ?)", CUSTOMERS)
            con.executemany("insert into raw.events values (?, ?, ?, ?, ?)", EVENTS)


def _dbt(tmp: Path, *args: str, variables: dict | None = None) -> None:
    run_dbt(tmp, *args, variables=variables)


def _rows(db_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _features(db_path: Path) -> dict[str, dict]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        cur = con.execute("select * from features.customer_features")
        names = [d[0] for d in cur.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """Default as-of date, optional sources filled.

    Pre-ML build, hand-made ml.customer_clusters, post-ML build.
    """
    tmp = tmp_path_factory.mktemp("dbt_default")
    db_path = tmp / "warehouse.duckdb"
    _create_raw(db_path, with_optional=True)
    variables = {"warehouse_path": str(db_path)}
    _dbt(tmp, "build", "--exclude", "tag:post_ml", variables=variables)
    # Before the ML step nothing post_ml may exist.
    assert _rows(
        db_path, "select count(*) from information_schema.tables where table_schema = 'marts'"
    ) == [(0,)]
    values = ", ".join(f"('{c}', {i}, '{label}')" for c, i, label in CLUSTERS)
    with duckdb.connect(str(db_path)) as con:
        create_ml_stand_ins(
            con,
            f"select * from (values {values}) as t(customer_id, cluster_id, cluster_label)",
        )
    _dbt(tmp, "build", "--select", "tag:post_ml", variables=variables)
    return db_path


def _build_marts_with_one_segment(tmp: Path, db_path: Path, variables: dict) -> None:
    """The ML stand-ins with every customer in one segment, then the post-ML models."""
    with duckdb.connect(str(db_path)) as con:
        create_ml_stand_ins(
            con,
            "select customer_id, 0 as cluster_id, 'Everyone' as cluster_label "
            "from features.customer_features",
        )
    _dbt(tmp, "build", "--select", "tag:post_ml", variables=variables)


@pytest.fixture(scope="module")
def warehouse_as_of(tmp_path_factory) -> Path:
    """as_of_date = 2024-02-20, optional sources empty.

    Features only: the pre-ML build, unit tests included (they must pass with the var set).
    """
    tmp = tmp_path_factory.mktemp("dbt_as_of")
    db_path = tmp / "warehouse.duckdb"
    _create_raw(db_path, with_optional=False)
    _dbt(
        tmp,
        "build",
        "--exclude",
        "tag:post_ml",
        variables={"warehouse_path": str(db_path), "as_of_date": "2024-02-20"},
    )
    return db_path


# --- features ----------------------------------------------------------------------------


def test_warehouse_path_var_selects_the_database_file(warehouse: Path) -> None:
    assert _rows(
        warehouse, "select count(*) from information_schema.schemata where schema_name = 'features'"
    ) == [(1,)]


def test_customers_in_equal_customers_out(warehouse: Path) -> None:
    customers_in = {t[0] for t in TRANSACTIONS}
    assert set(_features(warehouse)) == customers_in
    assert {
        r[0] for r in _rows(warehouse, "select customer_id from marts.dim_customer")
    } == customers_in
    assert _rows(
        warehouse, "select count(*), count(distinct customer_id) from marts.dim_customer"
    ) == [(4, 4)]


def test_rfm_inputs_by_hand(warehouse: Path) -> None:
    f = _features(warehouse)
    assert {r["as_of_date"] for r in f.values()} == {DEFAULT_AS_OF}
    a, b, c, d = f["00001"], f["00002"], f["00003"], f["00004"]
    # A: orders 01-01 (25), 01-11 (5), 01-11 (20), return 01-20 (-5), 02-20 (30).
    assert (a["first_order_date"], a["last_order_date"]) == (
        dt.date(2024, 1, 1),
        dt.date(2024, 2, 20),
    )
    assert (a["recency_days"], a["frequency"], a["monetary_total"], a["tenure_days"]) == (
        15,
        4,
        75.0,
        65,
    )
    assert a["monetary_avg"] == pytest.approx(80 / 4)
    assert (a["return_rate"], a["n_returns"], a["distinct_products"]) == (
        pytest.approx(5 / 80),
        1,
        3,
    )
    assert (a["spend_last_90d"], a["spend_prev_90d"], a["spend_trend_90d"]) == (75.0, 0.0, 75.0)
    # B: 02-10 (100), mixed order 02-29 (100 - 20) -> still a purchase order.
    assert (b["recency_days"], b["frequency"], b["monetary_total"], b["tenure_days"]) == (
        6,
        2,
        180.0,
        25,
    )
    assert (b["monetary_avg"], b["return_rate"], b["distinct_products"]) == (
        100.0,
        pytest.approx(0.1),
        1,
    )
    # C: returns only.
    assert (c["recency_days"], c["frequency"], c["monetary_total"], c["monetary_avg"]) == (
        20,
        0,
        -14.0,
        0.0,
    )
    assert (c["return_rate"], c["n_returns"], c["distinct_products"]) == (0.0, 1, 0)
    # D: one purchase the day before the as-of date.
    assert (d["recency_days"], d["frequency"], d["monetary_total"], d["tenure_days"]) == (
        1,
        1,
        50.0,
        1,
    )
    assert min(r["recency_days"] for r in f.values()) >= 1


def test_purchase_days_by_window_by_hand(warehouse: Path, warehouse_as_of: Path) -> None:
    """Distinct days with a purchase (non-return) order in the last 30/90/180/365 days."""
    windows = ("purchase_days_30d", "purchase_days_90d", "purchase_days_180d", "purchase_days_365d")
    f = _features(warehouse)  # as of 03-06: the 30-day window starts 02-05
    # A: 01-01, 01-11 (two orders, one day), 02-20; the return order of 01-20 is no purchase.
    assert [f["00001"][w] for w in windows] == [1, 3, 3, 3]
    assert [f["00002"][w] for w in windows] == [2, 2, 2, 2]  # 02-10 and the mixed 02-29
    assert [f["00003"][w] for w in windows] == [0, 0, 0, 0]  # returns only
    assert [f["00004"][w] for w in windows] == [1, 1, 1, 1]
    f = _features(warehouse_as_of)  # as of 02-20: the 30-day window starts 01-21
    assert [f["00001"][w] for w in windows] == [0, 2, 2, 2]
    assert [f["00002"][w] for w in windows] == [1, 1, 1, 1]


def test_lifetimes_columns_by_hand(warehouse: Path) -> None:
    f = _features(warehouse)
    lt = ("lt_frequency", "lt_recency_days", "lt_t_days", "lt_monetary_value")
    # A: purchase days 01-01, 01-11, 02-20; repeat-day spend (25 + 30) / 2; gaps 10 and 40,
    # sample std sqrt((15**2 + 15**2) / 1).
    assert tuple(f["00001"][k] for k in lt) == (2, 50, 65, 27.5)
    assert f["00001"]["inter_purchase_days_mean"] == 25.0
    assert f["00001"]["inter_purchase_days_std"] == pytest.approx(450**0.5)
    # B: purchase days 02-10 and 02-29 (the leap day): one gap, so no std.
    assert tuple(f["00002"][k] for k in lt) == (1, 19, 25, 100.0)
    assert (f["00002"]["inter_purchase_days_mean"], f["00002"]["inter_purchase_days_std"]) == (
        19.0,
        None,
    )
    # C has no purchase: no lifetimes summary.
    assert tuple(f["00003"][k] for k in lt) == (None, None, None, None)
    # D: a single purchase day.
    assert tuple(f["00004"][k] for k in lt) == (0, 0, 1, 0.0)
    assert f["00004"]["inter_purchase_days_mean"] is None


def test_rfm_scores_and_segments_by_hand(warehouse: Path) -> None:
    f = _features(warehouse)
    # score = 1 + floor(5 * percent_rank), percent_rank = (rank - 1) / 3 for 4 customers.
    # R by recency desc: C 20, A 15, B 6, D 1 -> 0, 1/3, 2/3, 1 -> 1 2 4 5.
    # F: C 0, D 1, B 2, A 4 -> 1 2 4 5. M: C -14, D 50, A 75, B 180 -> 1 2 4 5.
    # fm = floor((f + m + 1) / 2): A (5+4+1)/2 = 5, B 5, C 1, D 2.
    expected = {
        "00001": (2, 5, 4, 5, "Cannot Lose Them"),
        "00002": (4, 4, 5, 5, "Champions"),
        "00003": (1, 1, 1, 1, "Lost"),
        "00004": (5, 2, 2, 2, "Potential Loyalists"),
    }
    got = {
        k: (r["r_score"], r["f_score"], r["m_score"], r["fm_score"], r["rfm_segment"])
        for k, r in f.items()
    }
    assert got == expected


def test_exactly_one_segment_per_customer(warehouse: Path) -> None:
    rows = _rows(
        warehouse,
        """
        select d.customer_id, count(*) as n
        from marts.dim_customer as d
        join seeds.rfm_segment_map as s
            on d.r_score = s.r_score and d.fm_score = s.fm_score and d.rfm_segment = s.rfm_segment
        group by d.customer_id
        """,
    )
    assert sorted(rows) == [("00001", 1), ("00002", 1), ("00003", 1), ("00004", 1)]
    # The seed itself: 25 cells, each exactly once, 11 segment names.
    assert _rows(
        warehouse,
        "select count(*), count(distinct (r_score, fm_score)), count(distinct rfm_segment)"
        " from seeds.rfm_segment_map",
    ) == [(25, 25, 11)]


def test_engagement_and_demographics(warehouse: Path) -> None:
    f = _features(warehouse)
    a, b = f["00001"], f["00002"]
    assert (a["events_90d"], a["event_types"], a["days_since_last_event"]) == (2, 2, 5)
    assert (b["events_90d"], b["event_types"], b["days_since_last_event"]) == (0, 0, None)
    assert (a["age"], a["gender"], a["region"], a["signup_date"]) == (
        34,
        "F",
        "south",
        dt.date(2023, 6, 1),
    )
    assert (b["age"], b["region"]) == (50, "west")
    assert f["00003"]["age"] is None


def test_as_of_date_var_excludes_later_transactions(warehouse_as_of: Path) -> None:
    f = _features(warehouse_as_of)
    # D (03-05) only bought after 2024-02-20; A's o5 (on 02-20) and B's o7 (02-29) are excluded.
    assert set(f) == {"00001", "00002", "00003"}
    assert {r["as_of_date"] for r in f.values()} == {dt.date(2024, 2, 20)}
    a, b, c = f["00001"], f["00002"], f["00003"]
    assert (a["last_order_date"], a["recency_days"], a["frequency"], a["monetary_total"]) == (
        dt.date(2024, 1, 20),
        31,
        3,
        45.0,
    )
    assert (a["lt_frequency"], a["lt_recency_days"], a["lt_t_days"], a["lt_monetary_value"]) == (
        1,
        10,
        50,
        25.0,
    )
    assert (b["recency_days"], b["frequency"], b["monetary_total"], b["n_returns"]) == (
        10,
        1,
        100.0,
        0,
    )
    assert (c["recency_days"], c["frequency"]) == (5, 0)
    # Empty optional sources: engagement and demographics are empty, not missing.
    assert (a["events_90d"], a["days_since_last_event"], a["age"], a["region"]) == (
        0,
        None,
        None,
        None,
    )


# --- marts -------------------------------------------------------------------------------


def test_fct_orders_totals_and_keys(warehouse: Path) -> None:
    assert _rows(warehouse, "select count(*), count(distinct order_id) from marts.fct_orders") == [
        (9, 9)
    ]
    (total,) = _rows(warehouse, "select sum(net_amount) from marts.fct_orders")[0]
    assert total == pytest.approx(AMOUNT_AFTER_DEDUP)
    assert total == pytest.approx(
        sum(t[5] for t in TRANSACTIONS) - 10.0 - 50.0
    )  # minus the two duplicates
    o7 = _rows(
        warehouse,
        "select date_key, net_amount, gross_amount, returned_amount, is_return_order "
        "from marts.fct_orders where order_id = 'o7'",
    )
    assert o7 == [(20240229, 80.0, 100.0, 20.0, False)]
    assert _rows(
        warehouse, "select is_return_order from marts.fct_orders where order_id = 'C4'"
    ) == [(True,)]
    assert _rows(
        warehouse, "select count(*) from marts.fct_orders where not is_before_as_of_date"
    ) == [(0,)]


def test_dim_date_is_contiguous_and_covers_orders(warehouse: Path) -> None:
    rows = _rows(
        warehouse,
        "select date, date_key, day_of_week, day_name, is_weekend, week_of_year"
        " from marts.dim_date order by date",
    )
    dates = [r[0] for r in rows]
    assert dates[0] == dt.date(2024, 1, 1)
    assert dates[-1] == DEFAULT_AS_OF
    assert len(dates) == 66  # 31 (Jan) + 29 (Feb 2024) + 6 (Mar)
    assert all((b - a).days == 1 for a, b in zip(dates, dates[1:], strict=False))
    assert all(r[1] == int(r[0].strftime("%Y%m%d")) for r in rows)
    first = rows[0]  # 2024-01-01 is a Monday in ISO week 1
    assert (first[2], first[3], first[4], first[5]) == (1, "Monday", False, 1)
    assert _rows(
        warehouse,
        "select count(*) from marts.fct_orders as f"
        " left join marts.dim_date as d using (date_key) where d.date is null",
    ) == [(0,)]


def test_dim_customer_has_clusters(warehouse: Path) -> None:
    rows = _rows(
        warehouse,
        "select customer_id, cluster_id, segment_name from marts.dim_customer order by customer_id",
    )
    assert rows == CLUSTERS


def test_segment_summary_by_hand(warehouse: Path) -> None:
    rows = _rows(
        warehouse,
        "select segment_type, segment_name, customers, revenue, revenue_share, customer_share "
        "from marts.mart_segment_summary order by segment_type, segment_name",
    )
    got = {(r[0], r[1]): r[2:] for r in rows}
    assert got[("cluster", "High value")] == (2, 255.0, pytest.approx(255 / 291), 0.5)
    assert got[("cluster", "Low value")] == (2, 36.0, pytest.approx(36 / 291), 0.5)
    assert {k[1] for k in got if k[0] == "rfm"} == {
        "Cannot Lose Them",
        "Champions",
        "Lost",
        "Potential Loyalists",
    }
    for segment_type in ("cluster", "rfm"):
        assert sum(v[2] for k, v in got.items() if k[0] == segment_type) == pytest.approx(1.0)
        assert sum(v[3] for k, v in got.items() if k[0] == segment_type) == pytest.approx(1.0)


def test_marts_use_power_bi_safe_types(warehouse: Path) -> None:
    rows = _rows(
        warehouse,
        "select table_name, column_name, data_type"
        " from information_schema.columns where table_schema = 'marts'",
    )
    assert {r[0] for r in rows} == set(MARTS)
    bad = [r for r in rows if r[2] not in POWER_BI_TYPES]
    assert not bad, bad


def test_features_money_is_double(warehouse: Path) -> None:
    """Money is summed as DECIMAL upstream; the ML step reads plain DOUBLE columns."""
    rows = dict(
        _rows(
            warehouse,
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'features' and table_name = 'customer_features'",
        )
    )
    money = ("monetary_total", "monetary_avg", "gross_sales", "returned_amount", "spend_trend_90d")
    assert {c: rows[c] for c in money} == dict.fromkeys(money, "DOUBLE")
    assert not [c for c, t in rows.items() if t.startswith("DECIMAL") or t == "HUGEINT"]


# --- parse -------------------------------------------------------------------------------


def test_parse_needs_no_database(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _dbt(tmp_path, "parse")
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    sources = {v["name"]: v["meta"]["dagster"]["asset_key"] for v in manifest["sources"].values()}
    assert sources == {
        "transactions": ["raw_transactions"],
        "customers": ["raw_customers"],
        "events": ["raw_events"],
        "customer_clusters": ["customer_clusters"],
        "customer_scores": ["customer_scores"],
        "segmentation_evidence": ["segmentation_evidence"],
        "value_evidence": ["value_evidence"],
    }
    assert not list(tmp_path.rglob("*.duckdb"))


# --- marts for Power BI: segments and snapshot history -----------------------------------


def test_dim_segment_names_and_actions(warehouse: Path) -> None:
    rows = _rows(
        warehouse,
        "select cluster_id, segment_name, customers, recommended_action from marts.dim_segment "
        "order by cluster_id",
    )
    # From the stand-in clusters: two segments of two customers each.
    assert [r[:3] for r in rows] == [(0, "High value", 2), (1, "Low value", 2)]
    # Neither name matches a specific pattern of seed segment_actions: the catch-all row.
    assert {r[3] for r in rows} == {
        "Monitor; no campaign until the segment's value or risk changes"
    }


def test_customer_snapshot_keeps_earlier_dates_and_replaces_its_own(
    warehouse: Path, tmp_path: Path
) -> None:
    db_path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, db_path)
    first = _rows(
        db_path, "select snapshot_date, count(*) from marts.fct_customer_snapshot group by 1"
    )
    assert len(first) == 1 and first[0][1] == 4
    # The snapshot as an earlier version wrote it: CLV in clv_12m, no horizon columns.
    with duckdb.connect(str(db_path)) as con:
        old_clv = con.execute("select customer_id, clv from marts.fct_customer_snapshot").fetchall()
        con.execute("alter table marts.fct_customer_snapshot rename column clv to clv_12m")
        for column in ("churn_horizon_days", "clv_horizon_days"):
            con.execute(f"alter table marts.fct_customer_snapshot drop column {column}")
    # A later run as of an earlier date adds that date; the earlier snapshot stays.
    variables = {"warehouse_path": str(db_path), "as_of_date": "2024-02-15"}
    _dbt(tmp_path, "build", "--exclude", "tag:post_ml", variables=variables)
    _build_marts_with_one_segment(tmp_path, db_path, variables)
    _dbt(tmp_path, "build", "--select", "tag:post_ml", variables=variables)  # idempotent
    snapshots = dict(
        _rows(db_path, "select snapshot_date, count(*) from marts.fct_customer_snapshot group by 1")
    )
    (customers_then,) = _rows(db_path, "select count(*) from features.customer_features")[0]
    assert snapshots == {first[0][0]: 4, dt.date(2024, 2, 15): customers_then}
    # The old rows keep their CLV under the new name; their horizons are unknown.
    assert sorted(old_clv) == _rows(
        db_path,
        "select customer_id, clv from marts.fct_customer_snapshot "
        f"where snapshot_date = '{first[0][0]}' order by customer_id",
    )
    assert _rows(
        db_path,
        "select snapshot_date, churn_horizon_days, clv_horizon_days, count(*) "
        "from marts.fct_customer_snapshot group by all order by 1",
    ) == [(dt.date(2024, 2, 15), 90, 365, customers_then), (first[0][0], None, None, 4)]


def test_delivery_ending_before_an_older_snapshot_keeps_every_snapshot_date_in_dim_date(
    warehouse: Path, tmp_path: Path
) -> None:
    """After a run on data up to 2024-03-05 (snapshot 2024-03-06), the raw data is replaced
    by a delivery of its first days only (to 2024-02-15): the rebuild passes its tests, the
    old snapshot stays and dim_date covers it (it used to fail the relationships test of
    fct_customer_snapshot.date_key on every run after)."""
    db_path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, db_path)
    with duckdb.connect(str(db_path)) as con:
        con.execute("delete from raw.transactions where ordered_at >= date '2024-02-16'")
    variables = {"warehouse_path": str(db_path)}
    # A full load rebuilds the features from scratch; the marts never are (history).
    _dbt(tmp_path, "build", "--exclude", "tag:post_ml", "--full-refresh", variables=variables)
    _build_marts_with_one_segment(tmp_path, db_path, variables)
    snapshots = _rows(
        db_path,
        "select snapshot_date, count(*) from marts.fct_customer_snapshot group by 1 order by 1",
    )
    assert snapshots == [(dt.date(2024, 2, 16), 3), (DEFAULT_AS_OF, 4)]
    (first, last, days) = _rows(
        db_path, "select min(date), max(date), count(*) from marts.dim_date"
    )[0]
    assert (first, last, days) == (dt.date(2024, 1, 1), DEFAULT_AS_OF, 66)
    assert _rows(
        db_path,
        "select count(*) from marts.fct_customer_snapshot as s"
        " left join marts.dim_date as d using (date_key) where d.date is null",
    ) == [(0,)]


def test_campaign_targets_follow_the_playbook_and_rank_by_expected_value(
    warehouse: Path, tmp_path: Path
) -> None:
    import pandas as pd

    db_path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, db_path)
    labels = {"00001": "Lapsing big spenders", "00002": "Lapsing big spenders"}
    labels |= {"00003": "One-time low-spend buyers", "00004": "High-value loyalists"}
    ids = {"Lapsing big spenders": 0, "One-time low-spend buyers": 1, "High-value loyalists": 2}
    values = ", ".join(f"('{c}', {ids[label]}, '{label}')" for c, label in labels.items())
    with duckdb.connect(str(db_path)) as con:
        create_ml_stand_ins(
            con, f"select * from (values {values}) as t(customer_id, cluster_id, cluster_label)"
        )
    variables = {"warehouse_path": str(db_path), "campaign_min_expected_value": 0.5}
    _dbt(tmp_path, "build", "--select", "tag:post_ml", variables=variables)

    # Expected, from the playbook CSV and dim_customer, computed here.
    playbook = pd.read_csv(REPO / "dbt_project" / "seeds" / "segment_actions.csv")
    save_rate = {"Lapsing big spenders": 0.15, "High-value loyalists": 0.30}
    assert set(playbook.loc[playbook["in_campaign"], "name_pattern"]) >= {"%Lapsing%", "%loyalist%"}
    with duckdb.connect(str(db_path), read_only=True) as con:
        customers = con.execute(
            "select customer_id, segment_name, clv, churn_probability from marts.dim_customer"
        ).df()
        targets = con.execute("select * from marts.mart_campaign_targets order by target_rank").df()
    customers = customers[customers["segment_name"].isin(save_rate)]  # one-timers: not in campaign
    customers["ev"] = (
        customers["clv"] * customers["churn_probability"] * customers["segment_name"].map(save_rate)
    )
    expected = customers[customers["ev"] >= 0.5].sort_values(
        ["ev", "customer_id"], ascending=[False, True]
    )
    assert targets["customer_id"].tolist() == expected["customer_id"].tolist()
    assert targets["target_rank"].tolist() == list(range(1, len(expected) + 1))
    assert targets["expected_value"].tolist() == pytest.approx(expected["ev"].tolist())
    assert "00003" not in set(targets["customer_id"])
    first = targets.iloc[0]
    assert f"assumed save rate {save_rate[first['segment_name']]}" in first["reason"]
    assert first["recommended_action"] in first["reason"]
