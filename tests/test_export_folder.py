"""The published folder exports/powerbi/ on the Windows route: a real folder (no link for
Power BI or a share to follow), files swapped one rename at a time, manifest last; a
reader reading during publishes sees one complete version (orchestration/publish/folder.py)."""

from __future__ import annotations

import os
import threading

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestration.publish import folder as folder_module
from orchestration.publish.export import PUBLISHED, publish_marts, read_manifest
from orchestration.publish.folder import PublishError, read_consistent


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema marts")
    con.execute("create table marts.dim_a as select i::bigint as id from range(5) t(i)")
    con.execute("create table marts.fct_b as select i::bigint as id from range(3) t(i)")
    yield con
    con.close()


def _grow(con, run: int) -> None:
    """Every table gets a row count of its own per run, so a mix of runs shows."""
    con.execute(f"insert into marts.dim_a values ({1000 + run})")
    con.execute(f"insert into marts.fct_b values ({1000 + run}), ({2000 + run})")


def _links_under(path) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(path):
        found += [
            os.path.join(folder, n) for n in dirs + files if os.path.islink(os.path.join(folder, n))
        ]
    return found


def _rows_match(folder, manifest) -> None:
    for entry in manifest["tables"]:
        assert pq.read_table(folder / entry["file"]).num_rows == entry["rows"], entry["name"]


def test_published_folder_is_a_real_folder_of_plain_files(con, tmp_path):
    exports = tmp_path / "exports"
    for run in range(2):
        result = publish_marts(con, exports, f"run-{run}", None)
        _grow(con, run)
    published = exports / PUBLISHED
    assert published.is_dir() and not published.is_symlink()
    assert _links_under(exports) == [] and not os.path.islink(published)
    names = sorted(p.name for p in published.iterdir())
    assert names == ["dim_a.parquet", "fct_b.parquet", "manifest.json", "marts.duckdb"]
    # Hard links to the version's files: the published folder costs no second copy.
    for name in names:
        assert os.path.samefile(published / name, result.version_dir / name)
    manifest = read_manifest(exports)
    assert manifest["state"] == "complete" and manifest["run_id"] == "run-1"
    _rows_match(published, manifest)
    with duckdb.connect(str(published / "marts.duckdb"), read_only=True) as reader:
        assert reader.execute("select count(*) from dim_a").fetchone() == (6,)


def test_the_old_link_layout_becomes_a_real_folder(con, tmp_path):
    exports = tmp_path / "exports"
    first = publish_marts(con, exports, "run-1", None)
    published = exports / PUBLISHED
    # What earlier versions left: powerbi -> versions/<name>.
    for p in published.iterdir():
        p.unlink()
    published.rmdir()
    published.symlink_to(os.path.relpath(first.version_dir, exports), target_is_directory=True)
    _grow(con, 2)
    publish_marts(con, exports, "run-2", None)
    assert not published.is_symlink() and published.is_dir()
    assert read_manifest(exports)["run_id"] == "run-2"
    assert pq.read_table(first.version_dir / "dim_a.parquet").num_rows == 5  # untouched


def test_a_reader_during_publishes_sees_one_complete_version(con, tmp_path):
    """A reader loops over manifest + every table while ten publishes run; each read it
    accepts (same complete manifest before and after) has every table's rows equal to
    that manifest's: never a mix of two runs, never a half-written file."""
    exports = tmp_path / "exports"
    publish_marts(con, exports, "run-0", None)
    done = threading.Event()
    reads, runs_seen, errors = [], set(), []

    def read_tables(folder, manifest):
        return {e["name"]: pq.read_table(folder / e["file"]).num_rows for e in manifest["tables"]}

    def reader():
        try:
            while not done.is_set():
                manifest, rows = read_consistent(exports, read_tables)
                reads.append(rows == {e["name"]: e["rows"] for e in manifest["tables"]})
                runs_seen.add(manifest["run_id"])
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for run in range(1, 11):
            _grow(con, run)
            publish_marts(con, exports, f"run-{run}", None, keep=2)
    finally:
        done.set()
        thread.join()
    assert not errors, errors
    assert reads and all(reads), f"{reads.count(False)} of {len(reads)} reads mixed versions"
    assert len(runs_seen) > 1  # the reads did overlap the publishes


def test_a_swap_failing_half_way_puts_the_previous_version_back(con, tmp_path, monkeypatch):
    """On Windows a file that Power BI holds open cannot be replaced. The swap fails on the
    second file (fct_b.parquet) after replacing the first: the folder must hold run-1 again,
    complete, with its manifest, and the next publish must work."""
    exports = tmp_path / "exports"
    first = publish_marts(con, exports, "run-1", None)
    _grow(con, 2)
    real_replace = os.replace
    failures = []

    def replace(src, dst):
        if str(dst).endswith("fct_b.parquet") and "run-2" not in failures:
            failures.append("run-2")  # fail once: the put-back may replace it
            raise PermissionError(13, "The process cannot access the file", str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(folder_module.os, "replace", replace)
    with pytest.raises(PublishError, match="previous version is still published"):
        publish_marts(con, exports, "run-2", None)
    published = exports / PUBLISHED
    manifest = read_manifest(exports)
    assert manifest["run_id"] == "run-1" and manifest["state"] == "complete"
    _rows_match(published, manifest)
    assert pq.read_table(published / "dim_a.parquet").num_rows == 5
    assert os.path.samefile(published / "dim_a.parquet", first.version_dir / "dim_a.parquet")
    assert not [p.name for p in published.iterdir() if p.name.startswith(".")]

    monkeypatch.setattr(folder_module.os, "replace", real_replace)
    publish_marts(con, exports, "run-3", None)
    assert read_manifest(exports)["run_id"] == "run-3"
    _rows_match(published, read_manifest(exports))


def test_a_publish_killed_mid_swap_is_marked_and_the_next_one_completes(con, tmp_path):
    exports = tmp_path / "exports"
    publish_marts(con, exports, "run-1", None)
    published = exports / PUBLISHED
    # What a kill after the marker and one .new file leaves behind.
    (published / "manifest.json").write_text('{"state": "publishing", "version": "x"}')
    (published / ".dim_a.parquet.new").write_bytes(b"PAR1 half")
    with pytest.raises(TimeoutError):
        read_consistent(exports, lambda folder, manifest: None, tries=3)
    _grow(con, 2)
    publish_marts(con, exports, "run-2", None)
    assert read_manifest(exports)["run_id"] == "run-2"
    assert not list(published.glob(".*"))
    _rows_match(published, read_manifest(exports))
