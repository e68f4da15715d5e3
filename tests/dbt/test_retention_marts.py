"""Retention, churn and evaluation marts (mart_cohort_retention, mart_segment_retention,
mart_churn_by_segment, mart_segment_migration, mart_model_evaluation) on a tiny
hand-made warehouse.

One warehouse, two snapshots: a build at the default as-of date (2024-06-11, the day
after the last order), then a backfill as of 2024-03-01 with other segment names.
Expected values come from the rows in ``ORDERS`` (by hand, see the comments, or
recomputed in plain Python), never from the models' own output.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.dbt._dbt_helpers import create_ml_stand_ins, run_dbt
from tests.dbt.test_dbt_models import POWER_BI_TYPES, RAW_DDL

NEW_MARTS = (
    "mart_churn_by_segment",
    "mart_cohort_retention",
    "mart_segment_migration",
    "mart_segment_retention",
    "mart_model_evaluation",
)
DEFAULT_AS_OF = dt.date(2024, 6, 11)  # day after the last order (e, 2024-06-10)
BACKFILL_AS_OF = dt.date(2024, 3, 1)

# (customer_id, order_id, date, amount); a negative amount is a return order (one line).
ORDERS = [
    # a: cohort Jan, buys in Jan, Feb, Mar, Jun.
    ("a", "a1", "2024-01-05", 10.0),
    ("a", "a2", "2024-02-10", 20.0),
    ("a", "a3", "2024-03-15", 30.0),
    ("a", "a4", "2024-06-05", 40.0),
    # b: cohort Jan; only a return in Feb (not active), buys again in Apr.
    ("b", "b1", "2024-01-20", 50.0),
    ("b", "C_b2", "2024-02-05", -5.0),
    ("b", "b3", "2024-04-02", 60.0),
    # c: cohort Jan; buys again on 2024-05-30 = 2024-03-01 + 90 days, just outside
    # the backfill snapshot's churn horizon [03-01, 05-30).
    ("c", "c1", "2024-01-25", 70.0),
    ("c", "c2", "2024-05-30", 5.0),
    # d: cohort Feb, buys in Feb (twice) and May.
    ("d", "d1", "2024-02-14", 15.0),
    ("d", "d2", "2024-02-20", 25.0),
    ("d", "d3", "2024-05-01", 35.0),
    # e: cohort Mar (after the backfill date: a new customer), buys in Mar and Jun.
    ("e", "e1", "2024-03-20", 45.0),
    ("e", "e2", "2024-06-10", 55.0),
    # f: returns only (in no cohort); the return on 03-10 does not count as a purchase.
    ("f", "C_f1", "2024-02-01", -10.0),
    ("f", "C_f2", "2024-03-10", -3.0),
    # g: cohort May, too young for most of the segment retention curve.
    ("g", "g1", "2024-05-15", 65.0),
]
SEGMENTS_NOW = {"a": "Loyal", "d": "Loyal", "e": "Loyal", "b": "Casual", "c": "Casual"}
SEGMENTS_NOW |= {"f": "Casual", "g": "Casual"}
SEGMENTS_BACKFILL = {"a": "Loyal", "b": "Loyal", "c": "Casual", "d": "Casual", "f": "Casual"}


def _create_raw(db_path: Path) -> None:
    rows = [
        (
            customer,
            order,
            f"{day} 12:00:00",
            1.0 if amount > 0 else -1.0,
            abs(amount),
            amount,
            amount < 0,
            i + 1,
        )
        for i, (customer, order, day, amount) in enumerate(ORDERS)
    ]
    with duckdb.connect(str(db_path)) as con:
        con.execute(RAW_DDL)
        con.executemany(
            "insert into raw.transactions values"
            " (?, ?, ?, ?, ?, ?, 'p1', null, 'UK', null, ?, '/data/sales.csv', ?)",
            rows,
        )


def _build(tmp: Path, db_path: Path, segments: dict[str, str], as_of: str | None) -> None:
    variables = {"warehouse_path": str(db_path)}
    if as_of is not None:
        variables["as_of_date"] = as_of
    run_dbt(tmp, "build", "--exclude", "tag:post_ml", variables=variables)
    labels = sorted(set(segments.values()))
    values = ", ".join(f"('{c}', {labels.index(s)}, '{s}')" for c, s in segments.items())
    with duckdb.connect(str(db_path)) as con:
        create_ml_stand_ins(
            con,
            f"select * from (values {values}) as t(customer_id, cluster_id, cluster_label)"
            " where customer_id in (select customer_id from features.customer_features)",
        )
    run_dbt(tmp, "build", "--select", "tag:post_ml", variables=variables)


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory) -> tuple[Path, Path]:
    """(copy after the default build, warehouse after the backfill as of 2024-03-01)."""
    tmp = tmp_path_factory.mktemp("dbt_retention")
    db_path = tmp / "warehouse.duckdb"
    _create_raw(db_path)
    _build(tmp, db_path, SEGMENTS_NOW, as_of=None)
    default_copy = tmp / "default.duckdb"
    shutil.copyfile(db_path, default_copy)
    _build(tmp, db_path, SEGMENTS_BACKFILL, as_of=BACKFILL_AS_OF.isoformat())
    return default_copy, db_path


def _rows(db_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _month_index(first: dt.date, day: dt.date) -> int:
    return (day.year - first.year) * 12 + day.month - first.month


def _cohorts_by_python(as_of: dt.date) -> dict[tuple[dt.date, int], tuple[int, int, float]]:
    """(cohort_month, months_since_first) -> (cohort_customers, active, revenue), from ORDERS."""
    orders = [
        (c, dt.date.fromisoformat(d), amount)
        for c, _, d, amount in ORDERS
        if dt.date.fromisoformat(d) < as_of
    ]
    first = {}
    for c, day, amount in orders:
        if amount > 0 and (c not in first or day < first[c]):
            first[c] = day.replace(day=1)
    last_month = (as_of - dt.timedelta(days=1)).replace(day=1)
    expected = {}
    for cohort in set(first.values()):
        members = {c for c, m in first.items() if m == cohort}
        for k in range(_month_index(cohort, last_month) + 1):
            in_month = [
                (c, amount)
                for c, day, amount in orders
                if c in members and _month_index(cohort, day) == k
            ]
            active = {c for c, amount in in_month if amount > 0}
            expected[(cohort, k)] = (len(members), len(active), sum(a for _, a in in_month))
    return expected


# --- mart_cohort_retention -----------------------------------------------------------


@pytest.mark.parametrize("which", [0, 1])
def test_cohort_retention_matches_the_orders(warehouses, which: int) -> None:
    db_path = warehouses[which]
    as_of = (DEFAULT_AS_OF, BACKFILL_AS_OF)[which]
    rows = _rows(
        db_path,
        "select cohort_month, months_since_first, cohort_customers, active_customers,"
        " retention_rate, revenue from marts.mart_cohort_retention",
    )
    got = {(r[0], r[1]): r[2:] for r in rows}
    expected = _cohorts_by_python(as_of)
    assert set(got) == set(expected)
    for key, (n, active, revenue) in expected.items():
        assert got[key][:2] == (n, active), key
        assert got[key][2] == pytest.approx(active / n), key
        assert got[key][3] == pytest.approx(revenue), key


def test_cohort_retention_by_hand(warehouses) -> None:
    default, _ = warehouses
    rows = _rows(
        default,
        "select months_since_first, cohort_customers, active_customers, retention_rate, revenue"
        " from marts.mart_cohort_retention where cohort_month = date '2024-01-01'"
        " order by months_since_first",
    )
    # January cohort a, b, c (f is returns only, in no cohort). Active: Jan all three;
    # Feb only a (b only returned); Mar a; Apr b; May c; Jun a (the partial month).
    assert [r[:3] for r in rows] == [(k, 3, n) for k, n in enumerate([3, 1, 1, 1, 1, 1])]
    assert rows[0][3] == 1.0  # month 0 retention is 1 by construction
    assert rows[1][3] == pytest.approx(1 / 3)
    # Revenue: Jan 10 + 50 + 70; Feb 20 - 5 (b's return counts); Mar 30; Apr 60; May 5; Jun 40.
    assert [r[4] for r in rows] == pytest.approx([130.0, 15.0, 30.0, 60.0, 5.0, 40.0])
    month0 = _rows(
        default,
        "select distinct retention_rate from marts.mart_cohort_retention"
        " where months_since_first = 0",
    )
    assert month0 == [(1.0,)]


# --- mart_segment_retention ----------------------------------------------------------


def test_segment_retention_counts_only_customers_old_enough(warehouses) -> None:
    default, _ = warehouses
    rows = _rows(
        default,
        "select segment_name, months_since_first, customers, active_customers, retention_rate"
        " from marts.mart_segment_retention",
    )
    got = {(r[0], r[1]): r[2:] for r in rows}
    # As of 2024-06-11 the complete months end with May. Loyal = a (Jan), d (Feb), e (Mar);
    # Casual = b, c (Jan), g (May); f (returns only) has no first purchase.
    # month 3: e's month 3 is June (incomplete) -> only a (Apr, inactive) and d (May, active);
    # month 4: only a (May, inactive). Casual month 1: g's June is incomplete -> b, c only.
    expected = {
        ("Loyal", 0): (3, 3),
        ("Loyal", 1): (3, 1),  # a in Feb; d (Mar) and e (Apr) did not buy
        ("Loyal", 2): (3, 1),  # a in Mar
        ("Loyal", 3): (2, 1),  # d in May
        ("Loyal", 4): (1, 0),
        ("Casual", 0): (3, 3),
        ("Casual", 1): (2, 0),  # b's return in Feb is no purchase
        ("Casual", 2): (2, 0),
        ("Casual", 3): (2, 1),  # b in Apr
        ("Casual", 4): (2, 1),  # c in May
    }
    assert {k: v[:2] for k, v in got.items()} == expected
    for key, (n, active, rate) in got.items():
        assert rate == pytest.approx(active / n), key


# --- mart_churn_by_segment -----------------------------------------------------------


def test_churn_by_segment(warehouses) -> None:
    _, db_path = warehouses
    rows = _rows(
        db_path,
        "select snapshot_date, segment_name, customers, churned_customers, churned_share,"
        " mean_churn_probability, revenue_at_risk from marts.mart_churn_by_segment",
    )
    got = {(r[0], r[1]): r[2:] for r in rows}
    assert set(got) == {
        (d, s) for d in (BACKFILL_AS_OF, DEFAULT_AS_OF) for s in ("Loyal", "Casual")
    }
    # Default snapshot: horizon [06-11, 09-09) ends after 06-11, the day after the last
    # order -> not complete, observed churn NULL.
    assert got[(DEFAULT_AS_OF, "Loyal")][:3] == (3, None, None)
    assert got[(DEFAULT_AS_OF, "Casual")][:3] == (4, None, None)
    # Backfill snapshot: horizon [03-01, 05-30) is complete. Loyal a (03-15), b (04-02)
    # both bought. Casual: d bought (05-01); c only on 05-30 (the excluded end) and f
    # only returned -> 2 of 3 churned.
    assert got[(BACKFILL_AS_OF, "Loyal")][:3] == (2, 0, 0.0)
    assert got[(BACKFILL_AS_OF, "Casual")][:2] == (3, 2)
    assert got[(BACKFILL_AS_OF, "Casual")][2] == pytest.approx(2 / 3)
    # Scores of the stand-in (tests/dbt/_dbt_helpers.py): churn = r / (r + 60) with
    # r = days since the last order; revenue at risk = (gross / orders) * orders * churn.
    # Loyal as of 06-11: a r = 6, gross 100; d r = 41, gross 75; e r = 1, gross 100.
    churn = [6 / 66, 41 / 101, 1 / 61]
    assert got[(DEFAULT_AS_OF, "Loyal")][3] == pytest.approx(sum(churn) / 3, abs=1e-9)
    risk = 100 * churn[0] + 75 * churn[1] + 100 * churn[2]
    assert got[(DEFAULT_AS_OF, "Loyal")][4] == pytest.approx(risk, abs=1e-3)


# --- mart_segment_migration ----------------------------------------------------------


def test_segment_migration_between_the_two_snapshots(warehouses) -> None:
    default, db_path = warehouses
    assert _rows(default, "select count(*) from marts.mart_segment_migration") == [(0,)]
    rows = _rows(
        db_path,
        "select from_snapshot_date, to_snapshot_date, from_segment, to_segment, customers,"
        " share_of_from from marts.mart_segment_migration",
    )
    assert {(r[0], r[1]) for r in rows} == {(BACKFILL_AS_OF, DEFAULT_AS_OF)}
    got = {(r[2], r[3]): r[4:] for r in rows}
    # 03-01: a, b Loyal; c, d, f Casual. 06-11: a, d, e Loyal; b, c, f, g Casual.
    expected = {
        ("Loyal", "Loyal"): (1, 1 / 2),  # a
        ("Loyal", "Casual"): (1, 1 / 2),  # b
        ("Casual", "Casual"): (2, 2 / 3),  # c, f
        ("Casual", "Loyal"): (1, 1 / 3),  # d
        ("(new customer)", "Loyal"): (1, 1 / 2),  # e
        ("(new customer)", "Casual"): (1, 1 / 2),  # g
    }
    assert set(got) == set(expected)
    for key, (n, share) in expected.items():
        assert got[key][0] == n, key
        assert got[key][1] == pytest.approx(share), key


# --- mart_model_evaluation ---------------------------------------------------------------


def test_model_evaluation_puts_production_next_to_the_best_baseline(warehouses) -> None:
    _, db_path = warehouses
    rows = _rows(
        db_path,
        "select model_family, candidate, metric, production_value, best_baseline,"
        " best_baseline_value, beats_best_baseline, is_not_evaluated"
        " from marts.mart_model_evaluation",
    )
    got = {r[:3]: r[3:] for r in rows}
    # The stand-in rows (tests/dbt/_dbt_helpers.EVIDENCE_STAND_IN), compared by hand:
    # ROC AUC higher is better, so the best baseline is p_no_purchase (0.75 > 0.70) and
    # the model's 0.80 beats it; Brier lower is better, so it is p_alive (0.15 < 0.25) and
    # the model's 0.20 does not.
    roc = (0.8, "p_no_purchase_baseline", 0.75)
    brier = (0.2, "p_alive_baseline", 0.15)
    assert got == {
        ("churn", "churn_model", "roc_auc"): (*roc, True, False),
        ("churn", "p_alive_baseline", "roc_auc"): (*roc, None, False),
        ("churn", "p_no_purchase_baseline", "roc_auc"): (*roc, None, False),
        ("churn", "churn_model", "brier"): (*brier, False, False),
        ("churn", "p_alive_baseline", "brier"): (*brier, None, False),
        ("churn", "p_no_purchase_baseline", "brier"): (*brier, None, False),
        # No baseline: nothing to compare with.
        ("segmentation", "kmeans", "silhouette"): (0.5, None, None, None, False),
        ("segmentation", "ward", "silhouette"): (0.5, None, None, None, False),
        ("clv", "(not evaluated)", "not_evaluated"): (None, None, None, None, True),
    }
    (note,) = _rows(
        db_path, "select note from marts.mart_model_evaluation where model_family = 'clv'"
    )[0]
    assert note == "not judged out of time yet"


def test_new_marts_use_power_bi_safe_types(warehouses) -> None:
    _, db_path = warehouses
    rows = _rows(
        db_path,
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = 'marts'",
    )
    assert set(NEW_MARTS) <= {r[0] for r in rows}
    assert not [r for r in rows if r[2] not in POWER_BI_TYPES]
    segment_name = [r for r in rows if r[:2] == ("fct_customer_snapshot", "segment_name")]
    assert segment_name == [("fct_customer_snapshot", "segment_name", "VARCHAR")]
