"""`custseg run` for real with the README's flags, on a delivery that only earns a warning.

One run of the command in a subprocess (the daily job, on a copy of the shared demo
workdir): ``--data-root`` points at a copy of the demo data elsewhere in which one
customer is 150 years old, ``--verbose`` asks for dbt's and Dagster's own logs. The age
fails a warning-level expectation of the raw_customers suite: the run goes on and
publishes (README: warnings are reported and do not block).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from orchestration.publish.export import read_manifest
from tests.conftest import REPO
from tests.pipeline_utils import copy_workdir, query


@dataclass
class Run:
    workdir: Path
    data_root: Path
    code: int
    out: str
    err: str
    published_before: str


@pytest.fixture(scope="module")
def run(published_demo, tmp_path_factory) -> Run:
    tmp = tmp_path_factory.mktemp("cli_run")
    workdir = copy_workdir(published_demo, tmp / "wd")
    data_root = tmp / "delivery"
    shutil.copytree(workdir / "demo_data", data_root)
    customers = pd.read_csv(data_root / "customers.csv", dtype=str, keep_default_na=False)
    customers.loc[0, "age"] = "150"
    customers.to_csv(data_root / "customers.csv", index=False)
    before = read_manifest(workdir / "exports")["run_id"]
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run", "--workdir", str(workdir),
         "--data-root", str(data_root), "--job", "scoring_pipeline", "--verbose"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    return Run(workdir, data_root, done.returncode, done.stdout, done.stderr, before)


def test_a_warning_only_check_failure_does_not_block_the_run(run):
    assert run.code == 0, run.out[-3000:] + run.err[-3000:]
    summary = json.loads((run.workdir / "validation" / "raw_customers.json").read_text())
    assert summary["passed"] is True
    assert [(f["column"], f["severity"], f["unexpected_count"]) for f in summary["failed"]] == [
        ("age", "warning", 1)
    ]
    assert "! check failed: raw_customers / gx_raw_customers" in run.out
    # everything downstream ran and published
    for stage in ("dbt marts", "Power BI export", "HTML report"):
        assert f"✓ {stage}" in run.out, stage
    assert read_manifest(run.workdir / "exports")["run_id"] != run.published_before


def test_data_root_flag_reads_the_delivery_from_there(run):
    newest = (
        "select file from raw.load_log where load_seq = (select max(load_seq) from raw.load_log)"
    )
    files = {Path(f).parent for (f,) in query(run.workdir, newest)}
    assert files == {run.data_root}
    assert query(run.workdir, "select max(age) from raw.customers") == [(150,)]


def test_verbose_prints_dbt_and_dagster_logs(run):
    assert "Running with dbt=" in run.out and "Completed successfully" in run.out
    assert " - dagster - " in run.err
