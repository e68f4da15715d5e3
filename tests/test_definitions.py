"""The Dagster definitions: loadable, connected, and unchanged unless on purpose."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from orchestration.definitions import defs

    return defs


def _describe(defs: dg.Definitions) -> str:
    graph = defs.resolve_asset_graph()
    lines = ["# assets (key <- upstream keys)"]
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        parents = sorted(p.to_user_string() for p in node.parent_keys)
        lines.append(f"{key.to_user_string()} [{node.group_name}] <- {', '.join(parents)}")
    lines.append("# asset checks")
    lines += sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    lines.append("# jobs")
    lines += sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__"))
    lines.append("# schedules")
    lines += sorted(
        f"{s.name} {s.cron_schedule} {s.default_status.value}" for s in defs.schedules or []
    )
    return "\n".join(lines) + "\n"


def test_definitions_match_the_committed_snapshot(defs):
    """A change detector for review: the snapshot is written on purpose, never by the test
    (``python -m tests.test_definitions``). The facts behind it are checked below."""
    assert SNAPSHOT.read_text(encoding="utf-8") == _describe(defs), (
        "The asset graph changed. Review the difference and, if intended, "
        "regenerate with: .venv/bin/python -m tests.test_definitions"
    )


MODELS = REPO / "dbt_project" / "models"
# README "In Dagster": asset groups follow the stages; intermediate models are features
# work, and the staging models of the ML tables feed the marts.
GROUP_OF_FOLDER = {"staging": "staging", "intermediate": "features", "features": "features",
                   "marts": "marts", "staging/ml": "marts"}  # fmt: skip
# _sources.yml: the Python assets that fill each dbt source table.
SOURCE_ASSETS = {"raw": "raw_{}", "ml": "{}"}


def _sql_models() -> dict[str, tuple[str, str]]:
    """Every dbt model file: asset key (its top folder / name) -> (group, SQL text)."""
    models = {}
    for path in sorted(MODELS.rglob("*.sql")):
        folder = path.parent.relative_to(MODELS).as_posix()
        key = f"{folder.split('/')[0]}/{path.stem}"
        models[key] = (GROUP_OF_FOLDER[folder], path.read_text(encoding="utf-8"))
    return models


def test_every_dbt_model_is_an_asset_in_its_stage_reading_what_its_sql_reads(defs):
    """Keys, groups and upstream assets read from the SQL files themselves."""
    graph = defs.resolve_asset_graph()
    models = _sql_models()
    assert len(models) > 25
    keys = {k.to_user_string(): k for k in graph.get_all_asset_keys()}
    where = {name.split("/")[1]: name for name in models}
    for key, (group, sql) in models.items():
        assert key in keys, f"{key} is no asset"
        node = graph.get(keys[key])
        assert node.group_name == group, key
        parents = {p.to_user_string() for p in node.parent_keys}
        refs = {where.get(r, f"seeds/{r}") for r in re.findall(r"ref\(\s*'(\w+)'\s*\)", sql)}
        sources = {
            SOURCE_ASSETS[schema].format(table)
            for schema, table in re.findall(r"source\(\s*'(\w+)'\s*,\s*'(\w+)'\s*\)", sql)
        }
        assert refs | sources <= parents, (key, (refs | sources) - parents)


def test_every_suite_is_a_blocking_check_on_the_asset_of_its_table(defs):
    """data_quality/suites.py names the table; the check hangs on the asset that writes it."""
    from data_quality import SUITES

    specs = {
        spec.name: spec
        for assets_def in defs.resolve_asset_graph().assets_defs
        for spec in assets_def.check_specs
    }
    models = _sql_models()
    for name, build in SUITES.items():
        schema, table = build().table.split(".")
        if schema in SOURCE_ASSETS:  # filled by a Python asset
            expected = SOURCE_ASSETS[schema].format(table)
        else:  # a dbt model
            (expected,) = [k for k in models if k.endswith(f"/{table}")]
        spec = specs[f"gx_{name}"]
        assert spec.asset_key.to_user_string() == expected, name
        assert spec.blocking, name


def test_graph_is_connected_across_dbt_python_dbt(defs):
    graph = defs.resolve_asset_graph()

    def parents(key: str) -> set[str]:
        node = graph.get(dg.AssetKey.from_user_string(key))
        return {p.to_user_string() for p in node.parent_keys}

    # Segments are judged on the horizon after the evaluation cut-off, built by
    # churn_training_features.
    assert parents("segmentation_model") == {
        "features/customer_features",
        "churn_training_features",
    }
    assert parents("customer_clusters") == {"features/customer_features", "segmentation_model"}
    assert "customer_clusters" in parents("staging/stg_ml__customer_clusters")
    assert "raw_transactions" in parents("staging/stg_transactions")
    marts = {
        "marts/dim_customer",
        "marts/fct_orders",
        "marts/dim_date",
        "marts/mart_segment_summary",
    }
    assert marts <= parents("powerbi_export")


def test_scoring_job_never_refits_and_refit_job_republishes(defs):
    def keys(job: str) -> set[str]:
        graph = defs.resolve_job_def(job).asset_layer.asset_graph
        return {k.to_user_string() for k in graph.executable_asset_keys}

    everything = keys("full_pipeline")
    fits = {
        "segmentation_model",
        "churn_training_features",
        "value_models",
        "model_runs",
        "churn_drivers",
        "segmentation_evidence",
        "value_evidence",
    }
    assert fits <= everything
    assert keys("scoring_pipeline") == everything - fits
    refit = keys("refit_models")
    assert (
        fits
        | {
            "customer_clusters",
            "customer_scores",
            "marts/dim_customer",
            "powerbi_export",
            "customer_report",
        }
        <= refit
    )
    assert "raw_transactions" not in refit and "features/customer_features" not in refit


def test_dbt_tests_are_asset_checks_and_schedules_are_off(defs):
    graph = defs.resolve_asset_graph()
    checked = {c.asset_key.to_user_string() for c in graph.asset_check_keys}
    assert {"features/customer_features", "marts/dim_customer", "marts/fct_orders"} <= checked
    schedules = {s.name: s for s in defs.schedules}
    # README: daily_scoring at 03:00 runs scoring_pipeline, weekly_refit Sundays at 02:00
    assert (schedules["daily_scoring"].job_name, schedules["daily_scoring"].cron_schedule) == (
        "scoring_pipeline",
        "0 3 * * *",
    )
    assert (schedules["weekly_refit"].job_name, schedules["weekly_refit"].cron_schedule) == (
        "refit_models",
        "0 2 * * 0",
    )
    assert all(s.default_status == dg.DefaultScheduleStatus.STOPPED for s in schedules.values())


def test_importing_definitions_does_no_work(tmp_path):
    """No dbt run, no database, no workdir at import time; Great Expectations is left to
    the first check that runs (the code server runs none)."""
    workdir = tmp_path / "never-created"
    env = {**os.environ, "CUSTSEG_WORKDIR": str(workdir)}
    code = (
        "import sys; import orchestration.definitions as d; "
        "print(len(d.defs.resolve_asset_graph().get_all_asset_keys())); "
        "print('great_expectations' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 0, out.stderr
    assets, gx_imported = out.stdout.split()
    assert int(assets) > 10
    assert gx_imported == "False"
    assert not workdir.exists()


def test_dagster_definitions_validate_loads_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "CUSTSEG_WORKDIR": str(tmp_path / "wd")}
    dagster = Path(sys.executable).parent / "dagster"
    out = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        env=env, capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All code locations passed validation" in out.stdout + out.stderr


def test_every_asset_has_an_owner_and_its_stage_tag(defs):
    specs = {
        spec.key.to_user_string(): spec
        for assets_def in defs.resolve_asset_graph().assets_defs
        for spec in assets_def.specs
    }
    assert len(specs) > 30
    for key, spec in specs.items():
        assert spec.owners and spec.owners[0].startswith("team:"), key
        assert spec.tags.get("stage") == spec.group_name, key
    assert specs["customer_scores"].owners == ["team:data-science"]
    assert specs["raw_transactions"].owners == ["team:data-engineering"]


if __name__ == "__main__":  # regenerate the snapshot after reviewing the change
    from orchestration.definitions import defs as _defs

    SNAPSHOT.write_text(_describe(_defs), encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
