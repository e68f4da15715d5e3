"""Helpers for tests that run the whole pipeline."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from orchestration.cli import run_pipeline
from orchestration.settings import Settings
from tests.conftest import REPO


def run(workdir: Path, config: Path | None = None, job_name: str = "full_pipeline", **kw):
    """Run ``job_name`` in-process; raise with the step errors and progress output on failure."""
    out = io.StringIO()
    result = run_pipeline(
        Settings(workdir=str(workdir), config_path=config and str(config), **kw),
        stream=out,
        job_name=job_name,
    )
    if not result.success:
        failures = [
            f"{e.step_key}: {e.step_failure_data.error.to_string()}"
            for e in result.all_events
            if e.is_step_failure
        ]
        raise AssertionError("pipeline failed:\n" + "\n".join(failures) + "\n" + out.getvalue())
    return result, out.getvalue()


HOLD = """
import sys, time
from orchestration.io.lock import WorkdirLock
with WorkdirLock(sys.argv[1], owner=sys.argv[3]):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_workdir(workdir: Path, seconds: float, owner: str) -> subprocess.Popen:
    """Another process that holds the workdir lock for ``seconds`` (kill it when done)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(workdir), str(seconds), owner],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "locked"
    return proc


def query(workdir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def eval_cutoff_labelled(con, columns: str, join: str = ""):
    """``columns`` of the evaluation cut-off's customers whose outcome horizon is complete
    (``f`` = customer_features, ``o`` = customer_outcomes), by customer id."""
    return con.execute(
        f"select {columns} from features_cutoff_eval.customer_features f "
        "join features_cutoff_eval.customer_outcomes o using (customer_id) "
        f"{join} where o.churned is not null order by f.customer_id"
    ).df()


def publish_demo(workdir: Path, customers: int, seed: int) -> Path:
    """Generate demo data into ``workdir`` and run the pipeline once (a published state)."""
    from orchestration.demo import generate

    generate(workdir / "demo_data", customers=customers, seed=seed)
    _, output = run(workdir)
    (workdir / "logs" / "progress.txt").write_text(output, encoding="utf-8")
    return workdir


def start_and_kill(workdir: Path, when: str, delay: float) -> None:
    """Run `custseg run` and SIGKILL its whole process group once `when` is printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "run", "--workdir", str(workdir)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        seen.append(line)
        if when in line:
            time.sleep(delay)
            break
        if time.monotonic() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)
    assert any(when in s for s in seen), "".join(seen)


def copy_workdir(src: Path, dst: Path) -> Path:
    """A private copy of a published workdir (the export pointer is a relative symlink)."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


#: Which run wrote a row and when: two runs on the same data differ only here.
RUN_LINEAGE = ("segmentation_model_version", "run_id", "evaluated_at")


def published_marts(workdir: Path) -> dict:
    """The published Parquet marts without run lineage, rows in a canonical order."""
    import pyarrow.parquet as pq

    out = {}
    for f in sorted((workdir / "exports" / "powerbi").glob("*.parquet")):
        df = pq.read_table(f).to_pandas()
        df = df.drop(columns=[c for c in RUN_LINEAGE if c in df.columns])
        out[f.stem] = df.sort_values(list(df.columns)).reset_index(drop=True)
    return out
