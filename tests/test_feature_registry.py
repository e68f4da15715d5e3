"""ml/columns.py is the one list of customer_features columns: it matches the dbt model
(documented and built) and every consumer reads its lists from it."""

from __future__ import annotations

import yaml

from data_quality.suites import MODEL_INPUTS, customer_features
from ml.churn.production import CHURN_INPUT_COLUMNS
from ml.columns import FEATURE_COLUMNS, NOT_FEATURES
from ml.features import DEFAULT_LOG_FEATURES, FEATURE_GROUPS
from tests.conftest import REPO
from tests.pipeline_utils import query

MODELS_YML = REPO / "dbt_project" / "models" / "features" / "_features__models.yml"


def _dbt_columns() -> dict[str, str]:
    models = yaml.safe_load(MODELS_YML.read_text())["models"]
    (model,) = [m for m in models if m["name"] == "customer_features"]
    return {c["name"]: c.get("description", "") for c in model["columns"]}


def test_every_documented_column_is_a_feature_or_left_out_with_a_reason():
    features = [c.name for c in FEATURE_COLUMNS]
    assert len(features) == len(set(features))
    assert not set(features) & set(NOT_FEATURES)
    documented = _dbt_columns()
    assert sorted(documented) == sorted([*features, *NOT_FEATURES])
    assert all(documented[c].strip() for c in features), "a feature without a dbt description"
    assert all(reason.strip() for reason in NOT_FEATURES.values())


def test_the_built_table_has_the_registered_columns(published_demo):
    built = [
        name
        for (name,) in query(
            published_demo,
            "select column_name from information_schema.columns "
            "where table_schema = 'features' and table_name = 'customer_features'",
        )
    ]
    assert sorted(built) == sorted([*(c.name for c in FEATURE_COLUMNS), *NOT_FEATURES])


def test_required_inputs_are_checked_not_null_by_gx_and_dbt():
    suite = customer_features().row_expectations()
    not_null = {e.column for e in suite if type(e).__name__ == "ExpectColumnValuesToNotBeNull"}
    assert set(MODEL_INPUTS) <= not_null
    models = yaml.safe_load(MODELS_YML.read_text())["models"]
    (model,) = [m for m in models if m["name"] == "customer_features"]
    (test,) = [t for t in model["data_tests"] if "not_null_columns" in t]
    assert set(MODEL_INPUTS) <= set(test["not_null_columns"]["arguments"]["columns"])


def test_consumers_read_their_lists_from_the_registry():
    by_name = {c.name: c for c in FEATURE_COLUMNS}
    assert tuple(by_name) == CHURN_INPUT_COLUMNS
    assert set(DEFAULT_LOG_FEATURES) == {n for n, c in by_name.items() if c.skewed}
    for group, columns in FEATURE_GROUPS.items():
        assert columns == tuple(n for n, c in by_name.items() if c.group == group)
    assert tuple(n for n, c in by_name.items() if c.required) == MODEL_INPUTS
