"""The report's numbers: small queries on the marts, the ML tables and the load log.

Every number in the HTML report comes from here. Each query returns a small
DataFrame aggregated in DuckDB (only the CLV histogram reads one value per
customer), so the report stays fast on large data; a table that does not exist
yet gives an empty frame, and the renderer says "no data yet" instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from orchestration.io.config import CurrencyConfig
from orchestration.io.tables import table_exists

TOP_ACTIONS = 3
MAX_COHORTS = 18  # the most recent acquisition cohorts shown in the retention heat map
MAX_DRIVERS = 10
ALGORITHMS = {
    "kmeans": "K-Means",
    "ward": "Ward (hierarchical)",
    "hdbscan": "HDBSCAN",
    "dbscan": "DBSCAN",
}

SEGMENTS_SQL = """
select s.cluster_id, s.segment_name, s.is_noise, m.customers, m.customer_share,
       m.revenue, m.revenue_share, m.clv, m.mean_clv, m.mean_churn_probability,
       m.revenue_at_risk, m.mean_recency_days, m.mean_frequency, m.mean_monetary_total,
       s.recommended_action, s.channel, s.campaign_priority, s.save_rate, s.in_campaign
from marts.dim_segment s
join marts.mart_segment_summary m
  on m.segment_type = 'cluster' and m.segment_name = s.segment_name
order by s.cluster_id
"""

HEADLINE_SQL = """
select count(*) as customers, max(as_of_date) as as_of_date,
       coalesce(sum(monetary_total), 0) as revenue, coalesce(sum(clv), 0) as clv,
       coalesce(sum(churn_probability), 0) as expected_churners,
       coalesce(sum(revenue_at_risk), 0) as revenue_at_risk,
       count(*) filter (where churn_risk_band = 'high') as high_risk,
       any_value(segmentation_model_version) as segmentation_model_version,
       count(*) filter (where p_alive is null) as p_alive_withheld,
       max(p_alive_note) as p_alive_note,
       max(churn_horizon_days) as churn_horizon_days, max(clv_horizon_days) as clv_horizon_days
from marts.dim_customer
"""

ACTIONS_SQL = """
select recommended_action as action, segment_name as segment, any_value(channel) as channel,
       count(*) as customers, sum(expected_value) as expected_value,
       any_value(save_rate) as save_rate, sum(clv * churn_probability) as value_at_risk
from marts.mart_campaign_targets
group by recommended_action, segment_name
order by expected_value desc, action, segment
"""

RFM_SQL = """
select r_score, f_score, count(*) as customers, avg(monetary_total) as mean_monetary
from marts.dim_customer
where r_score is not null and f_score is not null
group by r_score, f_score
"""

COHORTS_SQL = f"""
select cohort_month, months_since_first, cohort_customers, retention_rate
from marts.mart_cohort_retention
where cohort_month in (
    select distinct cohort_month from marts.mart_cohort_retention
    order by cohort_month desc limit {MAX_COHORTS})
order by cohort_month, months_since_first
"""

CHURN_TREND_SQL = """
select snapshot_date, segment_name, customers, mean_churn_probability, revenue_at_risk,
       churned_share
from marts.mart_churn_by_segment
order by snapshot_date, segment_name
"""

CLV_SQL = "select segment_name, clv from marts.dim_customer"

MIGRATION_SQL = """
select from_snapshot_date, to_snapshot_date, from_segment, to_segment, customers, share_of_from
from marts.mart_segment_migration
where from_snapshot_date = (select max(from_snapshot_date) from marts.mart_segment_migration)
"""

DRIVERS_SQL = f"""
select feature, importance_mean, importance_std
from ml.churn_drivers
order by importance_mean desc
limit {MAX_DRIVERS}
"""

LOAD_LOG_SQL = """
select source, file, rows_read, rows_loaded, rows_rejected, loaded_at
from raw.load_log
where run_id = (select run_id from raw.load_log order by loaded_at desc limit 1)
order by source, file
"""

MODELS_SQL = """
select model, run_id, trained_at, params, metrics
from ml.model_runs
qualify row_number() over (partition by model order by trained_at desc) = 1
order by model
"""

EVALUATION_SQL = """
select model_family, candidate, metric, role, value, higher_is_better, best_baseline,
       best_baseline_value, beats_best_baseline, is_not_evaluated, cutoff_date, horizon_days,
       customers, note
from marts.mart_model_evaluation
order by model_family, role desc, candidate, metric
"""


@dataclass
class Headline:
    customers: int
    as_of_date: date | None
    revenue: float
    clv: float
    expected_churners: float
    revenue_at_risk: float
    high_risk: int
    segmentation_model_version: str | None
    p_alive_withheld: int = 0  # customers whose P(alive) is NULL
    p_alive_note: str | None = None  # why it is withheld
    # The scores' horizons in days, as the marts say (config scoring); None without scores.
    churn_horizon_days: int | None = None
    clv_horizon_days: int | None = None


@dataclass
class ReportData:
    """Everything the report shows; frames may be empty (first run, a fallback model)."""

    headline: Headline
    segments: pd.DataFrame
    actions: pd.DataFrame  # every (action, segment) of mart_campaign_targets, best first
    rfm: pd.DataFrame
    cohorts: pd.DataFrame
    churn_trend: pd.DataFrame
    clv: pd.DataFrame
    migration: pd.DataFrame
    drivers: pd.DataFrame
    load_log: pd.DataFrame
    quarantine: pd.DataFrame
    validations: list[dict]
    models: pd.DataFrame
    min_expected_value: float = 1.0
    segmentation_algorithm: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    evaluation: pd.DataFrame = field(default_factory=pd.DataFrame)  # mart_model_evaluation
    currency: CurrencyConfig = field(default_factory=CurrencyConfig)  # project config currency

    @property
    def top_actions(self) -> pd.DataFrame:
        return self.actions.head(TOP_ACTIONS)

    @property
    def churn_span(self) -> str:
        """'next 90 days': the churn horizon in words."""
        return _span(self.headline.churn_horizon_days, "churn horizon")

    @property
    def clv_span(self) -> str:
        """'next 12 months' (whole years) or 'next 180 days': the CLV horizon in words."""
        return _span(self.headline.clv_horizon_days, "CLV horizon", months=True)

    @property
    def clv_period(self) -> str:
        """'12-month' or '180-day', as in "12-month CLV"."""
        days = self.headline.clv_horizon_days
        if days is None:
            return "predicted"
        return f"{days // 365 * 12}-month" if days % 365 == 0 else f"{days}-day"


def _span(days: int | None, unknown: str, months: bool = False) -> str:
    if days is None:
        return unknown
    if months and days % 365 == 0:
        return f"next {days // 365 * 12} months"
    return f"next {days} days"


def frame(con: duckdb.DuckDBPyConnection, sql: str, *tables: str) -> pd.DataFrame:
    """``sql`` as a DataFrame, or an empty frame when one of ``tables`` does not exist."""
    if not all(table_exists(con, t) for t in tables):
        return pd.DataFrame()
    return con.execute(sql).df()


def _headline(con: duckdb.DuckDBPyConnection) -> Headline:
    row = frame(con, HEADLINE_SQL, "marts.dim_customer")
    if row.empty:
        return Headline(0, None, 0.0, 0.0, 0.0, 0.0, 0, None)
    horizons = {
        k: None if pd.isna(row.iloc[0][k]) else int(row.iloc[0][k])
        for k in ("churn_horizon_days", "clv_horizon_days")
    }
    r = row.iloc[0]
    as_of = r["as_of_date"]
    return Headline(
        customers=int(r["customers"]),
        as_of_date=None if pd.isna(as_of) else pd.Timestamp(as_of).date(),
        revenue=float(r["revenue"]),
        clv=float(r["clv"]),
        expected_churners=float(r["expected_churners"]),
        revenue_at_risk=float(r["revenue_at_risk"]),
        high_risk=int(r["high_risk"]),
        segmentation_model_version=r["segmentation_model_version"],
        p_alive_withheld=int(r["p_alive_withheld"]),
        p_alive_note=None if pd.isna(r["p_alive_note"]) else str(r["p_alive_note"]),
        **horizons,
    )


def _quarantine(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Rows per (source, reason) over every ``raw.quarantine_<source>`` table; a CSV
    record's structural reason is counted without its line (``... (line 12)``)."""
    tables = con.execute(
        "select table_name from information_schema.tables where table_schema = 'raw' "
        "and table_name like 'quarantine\\_%' escape '\\' order by table_name"
    ).fetchall()
    parts = [
        f"select '{t.removeprefix('quarantine_')}' as source, "
        rf"regexp_replace(reason, ' \(line [0-9]+\)', '', 'g') as reason, count(*) as rows "
        f"from raw.{t} group by all"
        for (t,) in tables
    ]
    if not parts:
        return pd.DataFrame(columns=["source", "reason", "rows"])
    return con.execute(" union all ".join(parts) + " order by rows desc, source, reason").df()


def _algorithm(con: duckdb.DuckDBPyConnection) -> str | None:
    chosen = frame(
        con,
        "select any_value(algorithm) as a from ml.segmentation_candidates where chosen",
        "ml.segmentation_candidates",
    )
    if chosen.empty or chosen.iloc[0, 0] is None:
        return None
    return ALGORITHMS.get(chosen.iloc[0, 0], chosen.iloc[0, 0])


def read_validations(folder: Path) -> list[dict]:
    """The latest Great Expectations outcome of every suite (``<suite>.json``)."""
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a half-written or foreign file is not a reason to lose the report
        if isinstance(summary, dict) and summary.get("docs_index"):
            # Written relative to this folder (older summaries: absolute, kept as they are).
            summary["docs_index"] = str(folder / summary["docs_index"])
        out.append(summary)
    return out


def load_report_data(
    con: duckdb.DuckDBPyConnection,
    workdir: Path,
    min_expected_value: float = 1.0,
    currency: CurrencyConfig | None = None,
) -> ReportData:
    """Read everything the report shows from the warehouse ``con`` and ``workdir``."""
    return ReportData(
        currency=currency or CurrencyConfig(),
        headline=_headline(con),
        segments=frame(con, SEGMENTS_SQL, "marts.dim_segment", "marts.mart_segment_summary"),
        actions=frame(con, ACTIONS_SQL, "marts.mart_campaign_targets"),
        rfm=frame(con, RFM_SQL, "marts.dim_customer"),
        cohorts=frame(con, COHORTS_SQL, "marts.mart_cohort_retention"),
        churn_trend=frame(con, CHURN_TREND_SQL, "marts.mart_churn_by_segment"),
        clv=frame(con, CLV_SQL, "marts.dim_customer"),
        migration=frame(con, MIGRATION_SQL, "marts.mart_segment_migration"),
        drivers=frame(con, DRIVERS_SQL, "ml.churn_drivers"),
        load_log=frame(con, LOAD_LOG_SQL, "raw.load_log"),
        quarantine=_quarantine(con),
        validations=read_validations(Path(workdir) / "validation"),
        models=frame(con, MODELS_SQL, "ml.model_runs"),
        min_expected_value=min_expected_value,
        segmentation_algorithm=_algorithm(con),
        evaluation=frame(con, EVALUATION_SQL, "marts.mart_model_evaluation"),
    )
