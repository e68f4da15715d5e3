"""The powerbi_export asset for real on the demo workdir: a failed write to the export
folder is tried again after 10 s and 20 s, and the last three published versions are
kept (README)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from orchestration.assets.retry import TRANSIENT_RETRY
from orchestration.definitions import build_definitions
from orchestration.publish.export import read_manifest
from orchestration.publish.folder import published_version
from orchestration.settings import Settings
from tests.conftest import REPO
from tests.pipeline_utils import copy_workdir

EXPORT = dg.AssetKey("powerbi_export")


def _publish(workdir: Path, export_dir: Path | None = None, on_retry=None):
    """Materialise the export as a run does (the project's definitions and resources);
    ``on_retry(seconds)`` is called when the step is put up for a retry."""

    class _Retries(logging.Handler):
        def emit(self, record):
            event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
            if event is not None and event.event_type_value == "STEP_UP_FOR_RETRY":
                on_retry(event.step_retry_data.seconds_to_wait)

    @dg.logger
    def retries(_init_context):
        log = logging.Logger("retries", level=logging.DEBUG)
        log.addHandler(_Retries())
        return log

    settings = Settings(workdir=str(workdir), export_dir=export_dir and str(export_dir))
    loggers = {"retries": retries} if on_retry else {}
    job = build_definitions(settings, loggers=loggers).resolve_job_def("full_pipeline")
    return job.execute_in_process(
        asset_selection=[EXPORT],
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        run_config={"loggers": {name: {} for name in loggers}},
    )


@pytest.fixture
def workdir(published_demo, tmp_path) -> Path:
    return copy_workdir(published_demo, tmp_path / "wd")


def test_the_waits_before_the_two_retries_are_10_and_20_seconds():
    """Dagster waits ``calculate_delay(n)`` before retry n (the run below shows the first)."""
    assert TRANSIENT_RETRY.max_retries == 2
    assert [TRANSIENT_RETRY.calculate_delay(n) for n in (1, 2)] == [10, 20]


# A publish whose process may write files of at most 64 kB, so that the first Parquet file
# (dim_customer, ~110 kB on the demo) cannot be written ("File too large", a write error
# the export retries); the room is back when the step is put up for its retry.
FULL_THEN_ROOM = """
import json, resource, signal, sys
from pathlib import Path
from tests.test_export_asset import _publish

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond the limit fails with EFBIG
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, hard))
waits = []

def room_again(seconds):
    waits.append(seconds)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))

result = _publish(Path(sys.argv[1]), on_retry=room_again)
failure = [e.event_specific_data.error.cause.message for e in result.all_events
           if e.event_type_value == "STEP_UP_FOR_RETRY"]
print(json.dumps({"success": result.success, "run_id": result.run_id, "waits": waits,
                  "failure": failure}))
"""


def test_a_failed_export_write_is_retried_10_s_later(workdir):
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", FULL_THEN_ROOM, str(workdir)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["success"] and out["waits"] == [10], out
    assert "dim_customer.parquet" in out["failure"][0] and "File too large" in out["failure"][0]
    assert took >= 10
    assert read_manifest(workdir / "exports")["run_id"] == out["run_id"]
    assert not list((workdir / "exports" / "versions").glob(".tmp-*"))


def test_a_refused_export_folder_fails_at_once(workdir, tmp_path):
    """A file where the export folder should be is no passing reason: no retry."""
    folder = tmp_path / "not_a_folder"
    folder.write_text("a file where the export folder should be")
    start = time.monotonic()
    result = _publish(workdir, export_dir=folder / "exports", on_retry=lambda s: None)
    assert not result.success and time.monotonic() - start < TRANSIENT_RETRY.delay
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def test_the_last_three_published_versions_are_kept(workdir):
    """README: `powerbi` links to the newest complete version; the last three are kept."""
    versions = workdir / "exports" / "versions"
    (first,) = versions.iterdir()
    for _ in range(3):
        assert _publish(workdir).success
    kept = sorted(p.name for p in versions.iterdir())
    assert len(kept) == 3 and first.name not in kept
    assert published_version(workdir / "exports").name == kept[-1]
