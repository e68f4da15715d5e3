"""dbt runs in the step's process on one parsed project per run, and Dagster still sees every node.

orchestration/dbt_parse.py keeps the parse (dbt's partial parsing, started from the state
``custseg parse`` leaves), orchestration/dbt_build.py streams the build's node results as
Dagster events. A subset of a dbt step (picked in the UI) still goes through dagster-dbt's
subprocess: tests/test_incremental.py runs one.
"""

from __future__ import annotations

import os
import shutil

import dagster as dg
import pytest

from orchestration.assets.dbt import dbt_features, dbt_marts
from orchestration.dbt import DBT_PROJECT_DIR, project_mtime
from orchestration.dbt_parse import SEEDED_SUFFIXES, parse_vars, parsed_manifest
from orchestration.event_log import instance_overrides


def _last_run_records(workdir, event_type):
    home = workdir / "dagster_home"
    with dg.DagsterInstance.local_temp(str(home), overrides=instance_overrides(home)) as instance:
        run = instance.get_run_records(limit=1)[0].dagster_run
        records = instance.get_records_for_run(run.run_id, of_type=event_type).records
        return run, [r.event_log_entry.dagster_event for r in records]


def test_a_run_materialises_every_dbt_asset_and_evaluates_every_dbt_check(published_demo):
    run, materialised = _last_run_records(published_demo, dg.DagsterEventType.ASSET_MATERIALIZATION)
    assert run.job_name == "full_pipeline"
    keys = {e.asset_key for e in materialised}
    for step in (dbt_features, dbt_marts):
        missing = set(step.keys) - keys
        assert not missing, (
            f"{step.op.name} did not report {sorted(k.to_user_string() for k in missing)}"
        )
    _, evaluated = _last_run_records(published_demo, dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    checks = {e.event_specific_data.asset_check_key: e.event_specific_data for e in evaluated}
    for step in (dbt_features, dbt_marts):
        missing = set(step.check_keys) - set(checks)
        assert not missing, f"{step.op.name}: no result for {sorted(str(k) for k in missing)}"
        failed = [str(k) for k in step.check_keys if not checks[k].passed]
        assert not failed


def test_each_parse_of_a_run_starts_from_the_installed_state(published_demo):
    logs = sorted((published_demo / "dbt" / "parse").glob("*/dbt.log"))
    assert [p.parent.name for p in logs] == sorted(
        s.lstrip("_") or "production" for s in SEEDED_SUFFIXES
    )
    for log in logs:
        text = log.read_text(encoding="utf-8")
        assert "Unable to do partial parsing" not in text, log
        assert "Partial parsing enabled" in text, log
    # The builds ran on those manifests: dbt did not parse again inside them.
    for stage in ("features", "marts"):
        assert (
            "partial parsing"
            not in (published_demo / "dbt" / stage / "dbt.log").read_text().lower()
        )


def test_the_parse_sees_only_the_vars_that_shape_the_manifest(tmp_path):
    # Another workdir, another as-of date, other thresholds: the same parse vars, so the
    # same partial-parse state serves them; only the cut-off suffix and the file name differ.
    assert (
        parse_vars("")
        == parse_vars("", "warehouse.duckdb")
        == {"warehouse_path": "parse_only/warehouse.duckdb"}
    )
    assert parse_vars("_cutoff_eval")["cutoff_schema_suffix"] == "_cutoff_eval"
    manifest = parsed_manifest(tmp_path, "_cutoff_eval")
    schemas = {n.name: n.schema for n in manifest.nodes.values() if n.resource_type == "model"}
    assert schemas["customer_features"] == "features_cutoff_eval"
    assert schemas["int_orders"] == "intermediate"  # not tagged as_of: read from production
    assert {n.database for n in manifest.nodes.values() if n.resource_type == "model"} == {
        "warehouse"
    }


def test_an_edited_project_is_parsed_again(tmp_path, monkeypatch):
    from orchestration import dbt_parse

    # A parse after the "edit" refreshes the seed (_refresh_seed): a copy's, not the install's.
    seeds = tmp_path / "seeds"
    shutil.copytree(dbt_parse.SEED_ROOT / "production", seeds / "production")
    monkeypatch.setattr(dbt_parse, "SEED_ROOT", seeds)
    first = parsed_manifest(tmp_path)
    assert parsed_manifest(tmp_path) is first  # once per process
    monkeypatch.setattr(dbt_parse, "project_mtime", lambda: 1e12)  # a file changed since
    assert parsed_manifest(tmp_path) is not first
    assert (DBT_PROJECT_DIR / "target" / "parse" / "production" / "partial_parse.msgpack").is_file()


def test_a_parse_replaces_a_seed_older_than_the_project(tmp_path, monkeypatch):
    """After an edit since `custseg parse` (the profile, say, which makes dbt parse in
    full), a workdir's parse becomes the state the next new workdir starts from."""
    from orchestration import dbt_parse

    seeds = tmp_path / "seeds"
    stale = seeds / "production" / "partial_parse.msgpack"
    stale.parent.mkdir(parents=True)
    shutil.copyfile(dbt_parse.SEED_ROOT / "production" / "partial_parse.msgpack", stale)
    os.utime(stale, (0, 0))  # made before the project's files last changed
    monkeypatch.setattr(dbt_parse, "SEED_ROOT", seeds)
    parsed_manifest(tmp_path / "work")
    state = tmp_path / "work" / "dbt" / "parse" / "production" / "partial_parse.msgpack"
    assert stale.stat().st_mtime >= project_mtime()
    assert stale.read_bytes() == state.read_bytes()
    assert [p.name for p in stale.parent.iterdir()] == [stale.name]  # no partial copy left
    current = stale.stat().st_mtime_ns
    parsed_manifest(tmp_path / "other")  # a seed as new as the project stays as it is
    assert stale.stat().st_mtime_ns == current


@pytest.mark.parametrize("suffix", SEEDED_SUFFIXES)
def test_custseg_parse_leaves_a_state_for_each_build(suffix):
    label = suffix.lstrip("_") or "production"
    assert (DBT_PROJECT_DIR / "target" / "parse" / label / "partial_parse.msgpack").is_file()


def test_dbt_console_output_goes_to_the_run_log(published_demo):
    # Without --verbose the run's stdout is its log file (--verbose prints it:
    # tests/test_cli_run.py); both builds write there, each run of dbt ending in its summary.
    text = (published_demo / "logs" / "last_run.log").read_text(encoding="utf-8")
    assert text.count("Running with dbt=") >= 2
    assert text.count("Completed successfully") >= 2
