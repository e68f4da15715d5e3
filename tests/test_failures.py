"""One line per failure (orchestration/failures.py) and one log file per run (io/workdir.py).

Tiny Dagster jobs stand in for the pipeline, so the errors arrive wrapped exactly as
Dagster wraps a real step's or resource's error.
"""

from __future__ import annotations

import errno
import os
import sqlite3

import dagster as dg
import duckdb
import pytest

from orchestration.assets.retry import retry_only_if
from orchestration.failures import explain, run_failure_lines
from orchestration.ingest.load import IngestError
from orchestration.io.lock import WorkdirBusyError
from orchestration.io.workdir import WorkdirError, check_writable, run_log

SNIFFER = "Invalid Input Error: CSV Error on Line: 3\nOriginal Line: A,1\n\n  delimiter = ,"


def _fail(*assets, resources=None, checks=()) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(
        assets=list(assets), asset_checks=list(checks), resources=resources or {},
        jobs=[dg.define_asset_job("job")],
    )  # fmt: skip
    result = defs.resolve_job_def("job").execute_in_process(raise_on_error=False)
    assert not result.success
    return result


def _ingest_error() -> None:
    try:
        raise duckdb.InvalidInputException(SNIFFER)
    except duckdb.Error as exc:
        raise IngestError("t.csv: not valid utf-8 at line 3 (byte offset 46)") from exc


def test_step_error_is_the_project_message_not_duckdb_nor_dagster():
    @dg.asset
    def ingest_sources():
        with retry_only_if(lambda _exc: False):  # dg.Failure wrapping the IngestError
            _ingest_error()

    lines = run_failure_lines(_fail(ingest_sources))
    assert lines == ["ingest_sources: t.csv: not valid utf-8 at line 3 (byte offset 46)"]


class BusyWarehouse(dg.ConfigurableResource):
    def setup_for_execution(self, context) -> None:
        raise WorkdirBusyError("workdir /w is in use by run 1234 (pid 7, since 10:00)")


def test_resource_error_of_a_busy_workdir_names_the_holder():
    @dg.asset
    def needs_warehouse(warehouse: BusyWarehouse):
        return 1

    lines = run_failure_lines(_fail(needs_warehouse, resources={"warehouse": BusyWarehouse()}))
    assert lines == ["workdir /w is in use by run 1234 (pid 7, since 10:00)"]


def test_failed_blocking_check_is_named_with_its_summary():
    @dg.asset
    def raw_transactions():
        return 1

    @dg.asset_check(asset=raw_transactions, blocking=True)
    def gx_raw_transactions():
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.ERROR, description="3 null ids\nmore"
        )

    @dg.asset(deps=[raw_transactions])
    def downstream():
        return 2

    result = _fail(raw_transactions, downstream, checks=[gx_raw_transactions])
    lines = run_failure_lines(result)
    assert lines == ["check raw_transactions / gx_raw_transactions failed: 3 null ids"]


def test_library_error_keeps_its_name_and_first_line_only():
    @dg.asset
    def value_models():
        raise FloatingPointError("expected purchases: 1 value(s) are not finite\ndetails")

    lines = run_failure_lines(_fail(value_models))
    assert lines == [
        "value_models: FloatingPointError: expected purchases: 1 value(s) are not finite"
    ]


def test_sqlite_disk_full_raised_through_sqlalchemy_says_the_disk_is_full(tmp_path):
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.Error as exc:
            raise RuntimeError("(sqlite3.OperationalError) database or disk is full") from exc
    except RuntimeError as exc:
        line = explain(exc, tmp_path)
    assert line.startswith("the disk is full (") and str(tmp_path) in line
    assert line.endswith("RuntimeError: (sqlite3.OperationalError) database or disk is full")


def test_oserror_enospc_says_the_disk_is_full():
    line = explain(OSError(errno.ENOSPC, "No space left on device", "/w/x.db"))
    assert line == "the disk is full: OSError: [Errno 28] No space left on device: '/w/x.db'"


def test_a_workdir_that_cannot_be_created_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(WorkdirError, match=r"the workdir .*file/wd cannot be written \(Not a dir"):
        check_writable(tmp_path / "file" / "wd")
    check_writable(tmp_path / "new" / "wd")  # created
    assert list((tmp_path / "new" / "wd").iterdir()) == []  # the probe is gone


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.EACCES, r"the workdir .*/wd is not writable by this user \(uid \d+; .* mode "),
        (errno.EROFS, r"the workdir .*/wd is on a read-only file system: choose another"),
        (errno.ENOSPC, r"no space left on the disk of the workdir .*/wd \([\d,.]+ MB free\)"),
    ],
)
def test_an_unwritable_workdir_says_why(tmp_path, monkeypatch, code, message):
    """chmod does not stop root, so the refusal is the operating system's error, injected."""

    def refuse(path, *_args, **_kw):
        raise OSError(code, os.strerror(code), str(path))

    (tmp_path / "wd").mkdir()
    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(WorkdirError, match=message):
        check_writable(tmp_path / "wd")


def test_two_runs_write_two_logs_and_last_run_log_points_at_the_newest(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "last_run.log").write_text("a run of an earlier version\n")
    first = run_log(tmp_path, "run-1")
    first.write_text("run 1 still writing\n")
    second = run_log(tmp_path, "run-2")
    assert first.read_text() == "run 1 still writing\n" and second.read_text() == ""
    assert (logs / "last_run.log").resolve() == second.resolve()
    kept = [p.read_text() for p in (logs / "runs").glob("before-*.log")]
    assert kept == ["a run of an earlier version\n"]


def test_failure_summary_says_whether_this_runs_export_was_published(tmp_path):
    from orchestration.cli import _published
    from orchestration.settings import Settings

    settings = Settings(workdir=str(tmp_path))
    assert _published(settings, "run-2") == "Nothing was published."
    (tmp_path / "exports" / "powerbi").mkdir(parents=True)
    (tmp_path / "exports" / "powerbi" / "manifest.json").write_text('{"run_id": "run-1"}')
    assert _published(settings, "run-2").startswith("Nothing was published: the Power BI")
    assert _published(settings, "run-1").startswith("This run's Power BI export was published")
