"""The Dagster UI as operators use it: `dagster dev` from workspace.yaml, driven through GraphQL.

Starts the webserver (with the daemon, as `make dev` does: DAGSTER_HOME in the workdir,
where `custseg run` records its runs too; the instance queues runs, one at a time) on a
free loopback port, reads the asset graph, jobs and schedules through the GraphQL API,
launches the daily job and waits for it to succeed. While it runs, a second pipeline run
on the same workdir (as `custseg run` would start) must fail naming it, and the first
run's results must be complete. Then a `custseg run` killed with SIGKILL must not keep a
job launched from the UI in the queue. One `dagster dev` serves both tests (it takes
~30 s to come up).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import requests

from orchestration.cli import run_pipeline
from orchestration.event_log import instance_overrides
from orchestration.io.lock import LOCK_FILE
from orchestration.settings import Settings
from tests.conftest import REPO
from tests.pipeline_utils import copy_workdir, query, start_and_kill

pytestmark = pytest.mark.slow

ASSETS = """
{ assetNodes { assetKey { path } groupName description } }
"""
REPOSITORIES = """
{ repositoriesOrError { __typename ... on RepositoryConnection { nodes {
    name location { name }
    jobs { name description }
    schedules { name cronSchedule scheduleState { status } pipelineName }
} } } }
"""
LAUNCH = """
mutation ($params: ExecutionParams!) { launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
} }
"""
RUN = """
query ($runId: ID!) { runOrError(runId: $runId) {
    __typename ... on Run { status }
} }
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(url: str, query_text: str, variables: dict | None = None) -> dict:
    response = requests.post(
        url, json={"query": query_text, "variables": variables or {}}, timeout=60
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.fixture(scope="module")
def dagster_ui(published_demo, tmp_path_factory):
    """`dagster dev -w workspace.yaml` on a free port, on a copy of the published demo."""
    tmp_path = tmp_path_factory.mktemp("ui")
    workdir = copy_workdir(published_demo, tmp_path / "wd")
    home = workdir / "dagster_home"  # as `make dev` has it
    shutil.copyfile(REPO / "orchestration" / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CUSTSEG_WORKDIR": str(workdir),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = (tmp_path / "dagster_dev.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/graphql"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "dagster dev did not come up:\n" + (tmp_path / "dagster_dev.log").read_text()
                )
            time.sleep(1)
        yield url, workdir, tmp_path / "dagster_dev.log"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_ui_serves_the_graph_and_runs_the_daily_job(dagster_ui):
    url, workdir, log = dagster_ui

    nodes = _graphql(url, ASSETS)["assetNodes"]
    groups = {"/".join(n["assetKey"]["path"]): n["groupName"] for n in nodes}
    assert {"ingest", "staging", "features", "ml", "marts", "exports"} <= set(groups.values())
    assert groups["raw_transactions"] == "ingest"
    assert groups["customer_scores"] == "ml"
    assert groups["powerbi_export"] == "exports"
    assert all(n["description"] for n in nodes), [
        n["assetKey"]["path"] for n in nodes if not n["description"]
    ]

    repos = _graphql(url, REPOSITORIES)["repositoriesOrError"]["nodes"]
    (repo,) = repos
    assert repo["location"]["name"] == "custseg"
    jobs = {j["name"] for j in repo["jobs"]}
    assert {"full_pipeline", "scoring_pipeline", "refit_models"} <= jobs
    schedules = {s["name"]: s for s in repo["schedules"]}
    assert schedules["daily_scoring"]["pipelineName"] == "scoring_pipeline"
    assert schedules["weekly_refit"]["pipelineName"] == "refit_models"
    assert {s["scheduleState"]["status"] for s in schedules.values()} == {"STOPPED"}

    (before,) = query(workdir, "select max(scored_at) from ml.customer_scores")[0]
    params = {
        "selector": {
            "repositoryLocationName": "custseg",
            "repositoryName": repo["name"],
            "jobName": "scoring_pipeline",
        },
        "runConfigData": {},
    }
    launched = _graphql(url, LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    # A second run on the same workdir while this one runs: it fails naming the first.
    lock = workdir / LOCK_FILE
    deadline = time.monotonic() + 300
    while not (lock.exists() and run_id in lock.read_text()):
        assert time.monotonic() < deadline, "the launched run never took the workdir"
        time.sleep(0.5)
    second = run_pipeline(
        Settings(workdir=str(workdir), lock_timeout=1.0),
        stream=io.StringIO(),
        job_name="scoring_pipeline",
    )
    assert not second.success
    errors = " ".join(
        e.event_specific_data.error.to_string()
        for e in second.all_events
        if e.is_failure and getattr(e.event_specific_data, "error", None) is not None
    )
    assert f"is in use by run {run_id}" in errors and "waited" in errors, errors
    assert not any(e.is_step_success for e in second.all_events)

    status, deadline = None, time.monotonic() + 600
    while time.monotonic() < deadline:
        status = _graphql(url, RUN, {"runId": run_id})["runOrError"]["status"]
        if status in {"SUCCESS", "FAILURE", "CANCELED"}:
            break
        time.sleep(2)
    assert status == "SUCCESS", log.read_text()[-5000:]
    (after,) = query(workdir, "select max(scored_at) from ml.customer_scores")[0]
    assert after > before
    assert (workdir / "reports" / "latest.html").is_file()
    # Nothing corrupted: the published export is complete and matches the warehouse.
    published = workdir / "exports" / "powerbi"
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["run_id"] == run_id
    for entry in manifest["tables"]:
        assert pq.read_table(published / entry["file"]).num_rows == entry["rows"]
    rows = {e["name"]: e["rows"] for e in manifest["tables"]}
    assert query(workdir, "select count(*) from marts.dim_customer")[0][0] == rows["dim_customer"]


def _launch(url: str, job: str) -> str:
    (repo,) = _graphql(url, REPOSITORIES)["repositoriesOrError"]["nodes"]
    params = {
        "selector": {
            "repositoryLocationName": "custseg",
            "repositoryName": repo["name"],
            "jobName": job,
        },
        "runConfigData": {},
    }
    launched = _graphql(url, LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def test_ui_job_leaves_the_queue_within_30_s_after_a_custseg_run_was_killed_with_sigkill(
    dagster_ui,
):
    """`custseg run` on the workdir, killed (SIGKILL) in its first step, leaves its run
    STARTED in the instance the UI uses. With one run at a time, a job launched from the
    UI then stayed QUEUED for good; the daemon's run monitoring must find the run's
    process gone, mark the run failed, and let the job start."""
    url, workdir, log = dagster_ui
    start_and_kill(workdir, "▶", 0.0)
    home = workdir / "dagster_home"
    instance = dg.DagsterInstance.local_temp(tempdir=str(home), overrides=instance_overrides(home))
    try:
        killed = instance.get_runs(limit=1)[0]  # the newest run: the killed one
        assert killed.job_name == "full_pipeline"

        run_id = _launch(url, "scoring_pipeline")
        launched_at, status = time.monotonic(), "QUEUED"
        while status in {"QUEUED", "NOT_STARTED"} and time.monotonic() - launched_at < 30:
            time.sleep(0.5)
            status = _graphql(url, RUN, {"runId": run_id})["runOrError"]["status"]
        assert status in {"STARTING", "STARTED", "SUCCESS"}, (
            f"still {status} after 30 s\n" + log.read_text()[-3000:]
        )

        record = instance.get_run_record_by_id(killed.run_id)
        assert record.dagster_run.status == dg.DagsterRunStatus.FAILURE
        failures = instance.get_records_for_run(
            killed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records
        message = failures[-1].event_log_entry.dagster_event.message
        assert "no longer running (killed or crashed)" in message, message
    finally:
        instance.dispose()
