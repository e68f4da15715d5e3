"""A failed blocking check stops everything downstream; marts and exports stay as they were."""

from __future__ import annotations

import io
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd

from orchestration.cli import run_pipeline
from orchestration.settings import Settings
from tests.pipeline_utils import copy_workdir


def _tables(con, schema: str) -> dict[str, list[tuple]]:
    names = [r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = ?", [schema]
    ).fetchall()]  # fmt: skip
    return {t: con.execute(f"select * from {schema}.{t} order by all").fetchall() for t in names}


def _state(workdir: Path) -> dict:
    """Everything a Power BI user or analyst could read: raw and marts tables, the export."""
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        raw, marts = _tables(con, "raw"), _tables(con, "marts")
    exports = workdir / "exports"
    return {
        "raw": raw,
        "marts": marts,
        "published": (exports / "powerbi").resolve(),
        "versions": sorted(p.name for p in (exports / "versions").iterdir()),
        "manifest": (exports / "powerbi" / "manifest.json").read_text(),
    }


def _rerun(published_demo: Path, tmp_path: Path, mutate) -> tuple[Path, dg.ExecuteInProcessResult]:
    workdir = tmp_path / "wd"
    copy_workdir(published_demo, workdir)
    mutate(workdir / "demo_data" / "transactions.csv")
    result = run_pipeline(Settings(workdir=str(workdir)), stream=io.StringIO())
    return workdir, result


def _ran(result, step: str) -> bool:
    return any(e.step_key == step for e in result.get_step_success_events())


def test_failed_gx_check_blocks_downstream_and_keeps_marts_and_exports(published_demo, tmp_path):
    before = _state(published_demo)

    def header_only(path: Path) -> None:  # a valid but empty delivery
        path.write_text(path.read_text().splitlines()[0] + "\n")

    workdir, result = _rerun(published_demo, tmp_path, header_only)
    assert not result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    failed = evaluations["gx_raw_transactions"]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert _ran(result, "ingest_sources")
    for downstream in ("dbt_features", "customer_clusters", "dbt_marts", "powerbi_export"):
        assert not _ran(result, downstream), downstream
    after = _state(workdir)
    assert after["marts"] == before["marts"]
    assert after["manifest"] == before["manifest"]
    assert after["versions"] == before["versions"]
    assert after["published"].name == before["published"].name


def test_failed_dbt_test_blocks_the_python_steps_after_it(published_demo, tmp_path):
    before = _state(published_demo)

    def order_shared_by_two_customers(path: Path) -> None:
        df = pd.read_csv(path, dtype=str)
        other = df.index[df["customer_id"] != df.loc[0, "customer_id"]][0]
        df.loc[other, "order_id"] = df.loc[0, "order_id"]  # int_orders' unique test fails
        df.to_csv(path, index=False)

    workdir, result = _rerun(published_demo, tmp_path, order_shared_by_two_customers)
    assert not result.success
    failures = [e.step_key for e in result.all_events if e.is_step_failure]
    assert failures == ["dbt_features"]
    for downstream in ("customer_clusters", "dbt_marts", "powerbi_export"):
        assert not _ran(result, downstream), downstream
    after = _state(workdir)
    assert after["marts"] == before["marts"]
    assert after["manifest"] == before["manifest"]


def test_an_unreadable_file_stops_a_full_run_and_keeps_raw_marts_and_exports(
    published_demo, tmp_path
):
    """README: a file that cannot be read stops the run with a message naming the file, and
    the previous load, marts and published exports stay as they were."""
    before = _state(published_demo)

    def latin1_byte(path: Path) -> None:  # a UTF-8 delivery with one Latin-1 byte
        lines = path.read_bytes().split(b"\n")
        lines[5] = lines[5].replace(b",", b",M\xfcller ", 1)
        path.write_bytes(b"\n".join(lines))

    workdir, result = _rerun(published_demo, tmp_path, latin1_byte)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "ingest_sources"
    message = failure.step_failure_data.error.message
    assert "transactions.csv: not valid utf-8 at line 6" in message, message
    after = _state(workdir)
    for part in ("raw", "marts", "versions", "manifest"):
        assert after[part] == before[part], part
    assert after["published"].name == before["published"].name
