"""The collector's pace in a run, and the console command's exit without a last collection."""

from __future__ import annotations

import gc
import importlib.metadata

import dagster as dg
import pytest

from orchestration import cli, pipeline_run
from orchestration.gc_pace import GEN0_THRESHOLD, run_pace
from orchestration.resources import WarehouseResource
from orchestration.settings import Settings


@pytest.fixture
def default_threshold():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_a_run_collects_less_often_and_restores_the_threshold(default_threshold):
    with run_pace():
        assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)
    with pytest.raises(RuntimeError), run_pace():
        raise RuntimeError("a failed step")
    assert gc.get_threshold() == (700, 10, 10)
    gc.set_threshold(GEN0_THRESHOLD * 5, 10, 10)  # a caller's own higher setting is kept
    with run_pace():
        assert gc.get_threshold()[0] == GEN0_THRESHOLD * 5


def test_run_pipeline_runs_at_that_pace(default_threshold, monkeypatch):
    seen = []
    monkeypatch.setattr(pipeline_run, "_run_pipeline", lambda *a: seen.append(gc.get_threshold()))
    pipeline_run.run_pipeline(Settings())
    assert seen == [(GEN0_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)


def test_the_console_command_freezes_the_heap_before_exit(tmp_path, monkeypatch, capsys):
    (script,) = [
        e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "custseg"
    ]
    assert script.value == "orchestration.cli:console"
    monkeypatch.setattr("sys.argv", ["custseg", "report", "--workdir", str(tmp_path)])
    assert gc.get_freeze_count() == 0
    try:
        code = cli.console()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert code == cli.main(["report", "--workdir", str(tmp_path)]) != 0
    assert "report" in capsys.readouterr().err


def test_a_run_launched_outside_custseg_run_collects_at_the_same_pace(default_threshold, tmp_path):
    """Runs from the UI or the daemon do not pass through run_pipeline: the warehouse
    resource, which every run sets up, paces them."""
    seen = []

    @dg.asset
    def probe(warehouse: WarehouseResource) -> None:
        seen.append(gc.get_threshold())

    result = dg.materialize(
        [probe], resources={"warehouse": WarehouseResource(workdir=str(tmp_path))}
    )
    assert result.success
    assert seen == [(GEN0_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)
