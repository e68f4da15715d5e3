"""One Great Expectations suite per stage.

Each :class:`StageSuite` has two parts, so that a 10-million-row table is never
loaded whole into pandas:

* ``row_expectations`` run on the table's rows — all of them up to the sample
  size, a repeatable reservoir sample above it (row-level rules: not null,
  ranges, allowed values);
* ``metrics_sql`` computes table-level numbers in DuckDB in one pass (duplicate
  keys, orphans, reconciliation with upstream, column types), and
  ``metric_expectations`` validate that one-row result — exact at any size.

Severity: ``critical`` expectations block the pipeline; ``warning`` ones are
reported (a WARN asset check) and do not block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import great_expectations as gx

from ml.columns import required_inputs

E = gx.expectations
WARN = "warning"

# Column types Power BI loads without a fight (docs/data_contract.md).
POWER_BI_TYPES = ("BIGINT", "INTEGER", "DOUBLE", "BOOLEAN", "VARCHAR", "DATE", "TIMESTAMP")


@dataclass(frozen=True)
class StageSuite:
    name: str
    table: str  # schema.table in the warehouse
    row_expectations: Callable[[], list] = field(default=lambda: [])
    metrics_sql: str | None = None  # {table} is replaced by the table name
    metric_expectations: Callable[[], list] = field(default=lambda: [])
    # A predicate ({table} replaced) for the rows the newest load wrote. When it selects
    # some rows but not all (an incremental append), row expectations see those rows
    # (all of them up to the sample size) instead of a sample of the whole table: the
    # older rows were validated when they came. Metrics always cover the whole table.
    newest_rows: str | None = None


def _zero(column: str, severity: str = "critical"):
    return E.ExpectColumnValuesToBeBetween(
        column=column, min_value=0, max_value=0, severity=severity
    )


def _not_null(*columns: str):
    return [E.ExpectColumnValuesToNotBeNull(column=c) for c in columns]


def _types_sql(schema: str) -> str:
    allowed = ", ".join(f"'{t}'" for t in POWER_BI_TYPES)
    return (
        "(select count(*) from information_schema.columns where table_schema = "
        f"'{schema}' and data_type not in ({allowed}))"
    )


def raw_transactions() -> StageSuite:
    return StageSuite(
        name="raw_transactions",
        table="raw.transactions",
        row_expectations=lambda: [
            *_not_null("customer_id", "order_id", "ordered_at", "amount", "quantity"),
        ],
        metrics_sql="""
            select
                count(*) as rows_loaded,
                count(*) filter (where not isfinite(amount)) as non_finite_amounts,
                count(*) filter (where ordered_at > current_localtimestamp() + interval 1 day)
                    as future_dates,
                count(*) filter (where ordered_at < timestamp '1970-01-01')
                    as dates_before_1970,
                (select coalesce(sum(rows_read - rows_loaded - rows_rejected), 0)
                 from raw.load_log where run_id = (select max_by(run_id, loaded_at)
                 from raw.load_log)) as unreconciled_rows
            from {table}
        """,
        newest_rows="""
            _source_file in (select file from raw.load_log where source = 'transactions'
                             and load_seq = (select max(load_seq) from raw.load_log))
        """,
        metric_expectations=lambda: [
            E.ExpectColumnValuesToBeBetween(column="rows_loaded", min_value=1),
            _zero("non_finite_amounts"),
            _zero("future_dates"),
            _zero("dates_before_1970", WARN),
            _zero("unreconciled_rows"),
        ],
    )


def raw_customers() -> StageSuite:
    return StageSuite(
        name="raw_customers",
        table="raw.customers",
        row_expectations=lambda: [
            *_not_null("customer_id"),
            E.ExpectColumnValuesToBeBetween(
                column="age", min_value=0, max_value=120, severity=WARN
            ),
        ],
        metrics_sql="""
            select count(*) - count(distinct customer_id) as duplicate_customer_rows from {table}
        """,
        metric_expectations=lambda: [_zero("duplicate_customer_rows", WARN)],
    )


def staging_orders() -> StageSuite:
    return StageSuite(
        name="int_orders",
        table="intermediate.int_orders",
        row_expectations=lambda: [*_not_null("order_id", "customer_id", "order_date")],
        metrics_sql="""
            select
                count(*) - count(distinct order_id) as duplicate_order_ids,
                count(*) filter (where abs(gross_amount - returned_amount - net_amount) > 0.005)
                    as inconsistent_net_amounts
            from {table}
        """,
        metric_expectations=lambda: [
            _zero("duplicate_order_ids"),
            _zero("inconsistent_net_amounts"),
        ],
        # The orders an incremental build aggregated again carry its load_seq.
        newest_rows="load_seq = (select max(load_seq) from {table})",
    )


# The model inputs every customer has (ml/columns.py: required).
MODEL_INPUTS = required_inputs()


def customer_features() -> StageSuite:
    return StageSuite(
        name="customer_features",
        table="features.customer_features",
        row_expectations=lambda: [
            *_not_null("customer_id", *MODEL_INPUTS, "rfm_segment"),
            *[
                E.ExpectColumnValuesToBeBetween(column=c, min_value=1, max_value=5)
                for c in ("r_score", "f_score", "m_score", "fm_score")
            ],
            E.ExpectColumnValuesToBeBetween(column="recency_days", min_value=0),
            E.ExpectColumnValuesToBeBetween(column="tenure_days", min_value=0),
            # Net spend below zero happens (returns exceed purchases): flagged, not blocking.
            E.ExpectColumnValuesToBeBetween(column="monetary_total", min_value=0, severity=WARN),
        ],
        metrics_sql="""
            select
                count(*) - count(distinct customer_id) as duplicate_customer_ids,
                (select count(distinct customer_id) from intermediate.int_transactions_as_of)
                    - count(*) as customers_missing
            from {table}
        """,
        metric_expectations=lambda: [
            _zero("duplicate_customer_ids"),
            _zero("customers_missing"),
        ],
    )


def customer_clusters() -> StageSuite:
    return StageSuite(
        name="customer_clusters",
        table="ml.customer_clusters",
        row_expectations=lambda: [
            *_not_null("customer_id", "cluster_id", "cluster_label", "is_noise", "model_version")
        ],
        metrics_sql="""
            select
                count(*) - count(distinct customer_id) as duplicate_customer_ids,
                count(distinct model_version) - 1 as model_versions_beyond_one,
                (select count(*) from features.customer_features f
                 where not exists (select 1 from {table} c where c.customer_id = f.customer_id))
                    as customers_without_segment,
                count(distinct cluster_id) - count(distinct cluster_label) as labels_not_one_to_one
            from {table}
        """,
        metric_expectations=lambda: [
            _zero("duplicate_customer_ids"),
            _zero("model_versions_beyond_one"),
            _zero("customers_without_segment"),
            _zero("labels_not_one_to_one"),
        ],
    )


def customer_scores(horizons: Mapping[str, int] | None = None) -> StageSuite:
    """``horizons``: the run's configured ``churn_horizon_days`` / ``clv_horizon_days``,
    which every row must carry (None: any one value per column)."""
    probabilities = ("p_alive", "churn_probability")
    configured = [
        E.ExpectColumnValuesToBeInSet(column=c, value_set=[days])
        for c, days in (horizons or {}).items()
    ]
    return StageSuite(
        name="customer_scores",
        table="ml.customer_scores",
        row_expectations=lambda: [
            # p_alive is NULL by design when no purchase model identifies dropout
            *_not_null(
                "customer_id",
                "churn_probability",
                "churn_risk_band",
                "expected_purchases_churn_horizon",
                "expected_purchases_clv_horizon",
                "expected_avg_spend",
                "clv",
                "revenue_at_risk",
                "churn_horizon_days",
                "clv_horizon_days",
            ),
            *[
                E.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=1)
                for c in probabilities
            ],
            *[
                E.ExpectColumnValuesToBeBetween(column=c, min_value=0)
                for c in (
                    "expected_purchases_churn_horizon",
                    "expected_purchases_clv_horizon",
                    "expected_avg_spend",
                    "clv",
                )
            ],
            *[
                E.ExpectColumnValuesToBeBetween(column=c, min_value=1)
                for c in ("churn_horizon_days", "clv_horizon_days")
            ],
            E.ExpectColumnValuesToBeInSet(
                column="churn_risk_band", value_set=["low", "medium", "high"]
            ),
            *configured,
        ],
        metrics_sql="""
            select
                count(*) - count(distinct customer_id) as duplicate_customer_ids,
                (select count(*) from features.customer_features f
                 where not exists (select 1 from {table} s where s.customer_id = f.customer_id))
                    as customers_without_scores,
                count(*) filter (where isnan(clv) or isinf(clv)
                    or isnan(churn_probability)) as non_finite_scores,
                count(*) filter (where abs(revenue_at_risk - clv * churn_probability)
                    > 1e-6 * greatest(1, abs(clv))) as revenue_at_risk_mismatches,
                -- a withheld P(alive) must say why, and a published one carries no note
                count(*) filter (where (p_alive is null)
                    <> (coalesce(p_alive_note, '') <> '')) as p_alive_note_mismatches,
                -- one run scores with one pair of horizons
                count(distinct churn_horizon_days) + count(distinct clv_horizon_days)
                    - least(count(*), 2) as horizons_beyond_one
            from {table}
        """,
        metric_expectations=lambda: [
            _zero("duplicate_customer_ids"),
            _zero("customers_without_scores"),
            _zero("non_finite_scores"),
            _zero("revenue_at_risk_mismatches"),
            _zero("p_alive_note_mismatches"),
            _zero("horizons_beyond_one"),
        ],
    )


def marts() -> StageSuite:
    return StageSuite(
        name="marts",
        table="marts.dim_customer",
        row_expectations=lambda: [*_not_null("customer_id", "rfm_segment", "cluster_id")],
        metrics_sql=f"""
            select
                (select count(*) from features.customer_features) - count(*)
                    as dim_customer_vs_features,
                count(*) - count(distinct customer_id) as duplicate_customer_ids,
                (select count(*) from marts.fct_orders o where o.is_before_as_of_date
                 and not exists (select 1 from {{table}} d where d.customer_id = o.customer_id))
                    as orphan_orders,
                (select count(*) from marts.fct_orders o where not exists
                 (select 1 from marts.dim_date d where d.date_key = o.date_key))
                    as orders_without_date,
                {_types_sql("marts")} as non_power_bi_columns
            from {{table}}
        """,
        metric_expectations=lambda: [
            _zero("dim_customer_vs_features"),
            _zero("duplicate_customer_ids"),
            _zero("orphan_orders"),
            _zero("orders_without_date"),
            _zero("non_power_bi_columns"),
        ],
    )


SUITES: dict[str, Callable[..., StageSuite]] = {
    "raw_transactions": raw_transactions,
    "raw_customers": raw_customers,
    "int_orders": staging_orders,
    "customer_features": customer_features,
    "customer_clusters": customer_clusters,
    "customer_scores": customer_scores,
    "marts": marts,
}
