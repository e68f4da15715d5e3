"""One name per concept: the score columns from ml.customer_scores to Power BI (issue 18).

The columns of ``ml.customer_scores`` (written by the Python asset), the dbt staging
model ``stg_ml__customer_scores``, the mart ``dim_customer`` and the Power BI table
``dim_customer`` are tied together on a published run: a score keeps its name through
every layer, its documentation is where the model is, and no score column carries a
horizon in its name (the horizons are the columns ``churn_horizon_days`` and
``clv_horizon_days``).
"""

from __future__ import annotations

import re

import duckdb
import pytest
import yaml

from tests.conftest import REPO
from tests.powerbi_model import m_selected_columns, read_semantic_model

MODEL = REPO / "powerbi" / "CustomerSegmentation.SemanticModel"
STAGING_YAML = REPO / "dbt_project" / "models" / "staging" / "ml" / "_ml__models.yml"
# Bookkeeping of the ML step, not scores: renamed (as_of_date -> scores_as_of) or kept
# in staging only (scored_at); the marts have their own as-of date.
LINEAGE = {"as_of_date", "value_model_version", "scored_at"}
HORIZONS = {"churn_horizon_days", "clv_horizon_days"}
# A length in a name: expected_purchases_90d, clv_12m.
LENGTH_IN_NAME = re.compile(r"_\d+(d|m|w|y)$")


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"describe {table}").fetchall()]


@pytest.fixture(scope="module")
def layers(published_demo) -> dict[str, list[str]]:
    with duckdb.connect(str(published_demo / "warehouse.duckdb"), read_only=True) as con:
        found = {
            "ml": _columns(con, "ml.customer_scores"),
            "staging": _columns(con, "staging.stg_ml__customer_scores"),
            "mart": _columns(con, "marts.dim_customer"),
        }
    model = read_semantic_model(MODEL)
    found["power_bi"] = [c.prop("sourceColumn") for c in model.columns("dim_customer").values()]
    found["power_bi_m"] = m_selected_columns(model.source("dim_customer"))
    return found


def test_every_score_keeps_its_name_from_ml_to_power_bi(layers):
    scores = [c for c in layers["ml"] if c not in LINEAGE]
    assert set(scores) >= HORIZONS
    for layer in ("staging", "mart", "power_bi", "power_bi_m"):
        missing = [c for c in scores if c not in layers[layer]]
        assert not missing, f"{layer} lacks the score column(s) {missing}"
    # Staging renames nothing else and adds nothing but the renamed lineage column.
    assert set(layers["staging"]) == set(scores) | {"scores_as_of", "scored_at"}
    # The Power BI table reads exactly the columns its M query selects, in order.
    assert layers["power_bi"] == layers["power_bi_m"]
    assert set(layers["power_bi"]) <= set(layers["mart"])


def test_no_score_column_names_a_horizon_length(layers):
    scores = [c for c in layers["ml"] if c not in LINEAGE]
    assert not [c for c in scores if LENGTH_IN_NAME.search(c)]
    assert "clv" in scores and "expected_purchases_churn_horizon" in scores


def test_staging_yaml_documents_exactly_the_staging_columns(layers):
    models = yaml.safe_load(STAGING_YAML.read_text(encoding="utf-8"))["models"]
    (staging,) = [m for m in models if m["name"] == "stg_ml__customer_scores"]
    assert [c["name"] for c in staging["columns"]] == layers["staging"]
