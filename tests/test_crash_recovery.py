"""A pipeline killed mid-run (SIGKILL) leaves a readable export and the next run just works."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from orchestration.assets.export import powerbi_export
from orchestration.resources import WarehouseResource
from tests.pause_points import POINTS, kill_publish_at
from tests.pipeline_utils import copy_workdir, run, start_and_kill


def _assert_complete_export(workdir: Path) -> str:
    published = workdir / "exports" / "powerbi"
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["state"] == "complete", manifest
    for entry in manifest["tables"]:
        assert pq.read_table(published / entry["file"]).num_rows == entry["rows"]
    return manifest["run_id"]


KILLS = [
    ("▶ dbt features", 3.0),  # inside the dbt subprocess
    ("▶ segmentation refit", 1.0),  # inside the Python ML step
]


def test_sigkill_mid_run_then_rerun_succeeds(published_demo, tmp_path):
    """Killed twice in a row (in dbt, then in the ML step); one plain rerun recovers."""
    workdir = tmp_path / "wd"
    copy_workdir(published_demo, workdir)
    first = _assert_complete_export(workdir)

    for stage, delay in KILLS:
        start_and_kill(workdir, stage, delay)
        # Readers see a complete export: the old one (or the new one, if the swap happened).
        _assert_complete_export(workdir)

    run(workdir)  # no manual cleanup
    assert _assert_complete_export(workdir) != first
    assert not list((workdir / "exports" / "versions").glob(".tmp-*"))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _entries(exports: Path) -> set[Path]:
    return {*exports.iterdir(), *(exports / "versions").iterdir()}


@pytest.fixture(scope="module")
def killed_publishes(published_demo, tmp_path_factory) -> dict:
    """One copy of the demo workdir whose publish was SIGKILLed at each point in turn:
    what readers saw after each kill, and what each killed publish left behind."""
    workdir = copy_workdir(published_demo, tmp_path_factory.mktemp("killed_publish") / "wd")
    exports = workdir / "exports"
    before = {
        "link": (exports / "powerbi").resolve(),
        "run_id": _assert_complete_export(workdir),
        "files": _files(exports / "powerbi"),
    }
    after, seen = {}, _entries(exports)
    for point in POINTS:
        kill_publish_at(workdir, point, workdir.parent / f"{point}.reached")
        now = _entries(exports)
        try:
            readable = _assert_complete_export(workdir)
        except (AssertionError, OSError, ValueError) as exc:  # asserted by the tests
            readable = exc
        after[point] = {
            "link": (exports / "powerbi").resolve(),
            "readable": readable,
            "files": _files(exports / "powerbi"),
            "left": {p.name: p for p in now - seen},
        }
        seen = now
    return {"workdir": workdir, "before": before, "after": after}


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_during_the_export_leaves_the_old_export_whole(killed_publishes, point):
    """Killed after the first Parquet file or before the version folder's rename: readers
    still see the old version, unchanged. Killed half-way through the swap into the
    published folder: its manifest says "publishing" (readers that check it wait), and
    every file in it is whole."""
    before, after = killed_publishes["before"], killed_publishes["after"][point]
    if point == "mid-swap":
        folder = killed_publishes["workdir"] / "exports" / "powerbi"
        assert isinstance(after["readable"], AssertionError)
        assert "publishing" in str(after["readable"])
        (new,) = [p for n, p in after["left"].items() if not n.startswith(".")]
        swapped = [f.name for f in folder.glob("*.parquet") if f.samefile(new / f.name)]
        assert len(swapped) == 1, swapped  # killed with one file of the new version in
        for name in after["files"]:
            if name.endswith(".parquet"):
                pq.read_table(folder / name)  # whole: each file arrives by one rename
        return
    assert after["readable"] == before["run_id"]
    assert after["link"] == before["link"]
    assert after["files"] == before["files"]
    left = after["left"]
    if point == "first-parquet":  # a hidden folder holding the first table only
        ((name, folder),) = left.items()
        assert name.startswith(".tmp-")
        (written,) = folder.iterdir()
        assert written.suffix == ".parquet" and written.name in before["files"]
    elif point == "version-rename":  # complete, but never renamed: still hidden
        ((name, folder),) = left.items()
        assert name.startswith(".tmp-") and (folder / "manifest.json").is_file()


def test_after_killed_exports_the_next_publish_cleans_up(killed_publishes):
    """... and the next publish removes it and swaps in a complete new version."""
    workdir = killed_publishes["workdir"]
    result = dg.materialize(
        [powerbi_export], resources={"warehouse": WarehouseResource(workdir=str(workdir))}
    )
    assert result.success
    exports = workdir / "exports"
    assert _assert_complete_export(workdir) == result.run_id
    assert not (exports / "powerbi").is_symlink()
    assert sorted(p.name for p in exports.iterdir()) == ["powerbi", "versions"]
    assert not [p for p in (exports / "versions").iterdir() if p.name.startswith(".")]
    assert len(list((exports / "versions").iterdir())) == 3  # keep_versions
