"""The one list of ``features.customer_features`` columns the Python steps use.

Each column is described once here, with what the steps do with it: which feature
group it belongs to (the clustering), whether it is skewed (log-transformed before
scaling), whether it is categorical, and whether every customer must have it (the Great Expectations ``customer_features`` suite holds those to not-null).
The clustering's groups, the log list, the churn inputs and the not-null checks are
all read from here; ``tests/test_feature_registry.py`` ties the list to the dbt
model's documented columns (``dbt_project/models/features/_features__models.yml``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FEATURE_COLUMNS",
    "FeatureColumn",
    "NOT_FEATURES",
    "categorical_columns",
    "churn_inputs",
    "group_columns",
    "required_inputs",
    "skewed_columns",
]


@dataclass(frozen=True)
class FeatureColumn:
    name: str
    group: str | None  # clustering feature group; None: not offered to the clustering
    skewed: bool = False  # non-negative money/count/days: log1p before scaling
    required: bool = False  # every customer has it: checked not null
    categorical: bool = False  # one-hot encoded


_C = FeatureColumn
#: In the order the churn model sees its inputs (its saved models depend on it).
FEATURE_COLUMNS: tuple[FeatureColumn, ...] = (
    _C("recency_days", "behavioural", skewed=True, required=True),
    _C("frequency", "behavioural", skewed=True, required=True),
    _C("monetary_total", "behavioural", skewed=True, required=True),
    _C("monetary_avg", "behavioural", skewed=True, required=True),
    _C("tenure_days", "behavioural", skewed=True, required=True),
    _C("inter_purchase_days_mean", "behavioural", skewed=True),
    _C("inter_purchase_days_std", None, skewed=True),
    _C("spend_last_90d", None),
    _C("spend_prev_90d", None),
    # Signed: a signed log would blow the many exact zeros apart from small trends.
    _C("spend_trend_90d", "behavioural"),
    _C("purchase_days_30d", None),
    _C("purchase_days_90d", None),
    _C("purchase_days_180d", None),
    _C("purchase_days_365d", None),
    _C("distinct_products", "behavioural", skewed=True),
    _C("return_rate", None),
    _C("n_returns", None),
    _C("events_90d", "engagement", skewed=True),
    _C("event_types", "engagement"),
    _C("days_since_last_event", "engagement", skewed=True),
    _C("age", "demographics"),
    _C("gender", "demographics", categorical=True),
    _C("region", "demographics", categorical=True),
)

#: Columns of ``customer_features`` no model takes as a feature, and why.
NOT_FEATURES: dict[str, str] = {
    "customer_id": "the key",
    "as_of_date": "the run's date, the same for everyone",
    "first_order_date": "a date: leaks the cut-off (tenure_days carries it)",
    "last_order_date": "a date: leaks the cut-off (recency_days carries it)",
    "signup_date": "a date: leaks the cut-off",
    "r_score": "the RFM grid, a baseline and a segment of its own",
    "f_score": "the RFM grid",
    "m_score": "the RFM grid",
    "fm_score": "the RFM grid",
    "rfm_segment": "the RFM grid's cell name",
    "lt_frequency": "the BTYD summary: the value models' input, not a feature",
    "lt_recency_days": "the BTYD summary",
    "lt_t_days": "the BTYD summary",
    "lt_monetary_value": "the BTYD summary",
    "gross_sales": "monetary_total and return_rate carry it",
    "returned_amount": "monetary_total and return_rate carry it",
}


def group_columns(group: str) -> tuple[str, ...]:
    return tuple(c.name for c in FEATURE_COLUMNS if c.group == group)


def skewed_columns() -> tuple[str, ...]:
    return tuple(c.name for c in FEATURE_COLUMNS if c.skewed)


def churn_inputs() -> tuple[str, ...]:
    """Every feature column: the churn model uses those present."""
    return tuple(c.name for c in FEATURE_COLUMNS)


def required_inputs() -> tuple[str, ...]:
    return tuple(c.name for c in FEATURE_COLUMNS if c.required)


def categorical_columns() -> tuple[str, ...]:
    return tuple(c.name for c in FEATURE_COLUMNS if c.categorical)
