"""Publishing the marts: complete versions, atomic swap, failures leave the old export."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestration.publish.export import PUBLISHED, publish_marts, read_manifest
from orchestration.publish.folder import published_version
from tests.conftest import REPO


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create schema marts")
    con.execute(
        "create table marts.dim_a as select i::bigint as id, 'x' || i as name from range(5) t(i)"
    )
    con.execute(
        "create table marts.fct_b as select i::integer as id, i * 1.5 as amount from range(3) t(i)"
    )
    yield con
    con.close()


def test_manifest_matches_the_files(con, tmp_path):
    result = publish_marts(con, tmp_path / "exports", "run-abcdef123", "2024-01-01")
    published = tmp_path / "exports" / PUBLISHED
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["run_id"] == "run-abcdef123" and manifest["as_of_date"] == "2024-01-01"
    assert [t["name"] for t in manifest["tables"]] == ["dim_a", "fct_b"]
    for entry in manifest["tables"]:
        table = pq.read_table(published / entry["file"])
        assert table.num_rows == entry["rows"]
        assert table.column_names == [c["name"] for c in entry["columns"]]
    assert manifest == result.manifest
    assert [c["type"] for c in manifest["tables"][0]["columns"]] == ["BIGINT", "VARCHAR"]


def test_new_publish_swaps_atomically_and_old_version_stays_readable(con, tmp_path):
    exports = tmp_path / "exports"
    first = publish_marts(con, exports, "run-1", None)
    old_dir = first.version_dir
    con.execute("insert into marts.dim_a values (99, 'new')")
    second = publish_marts(con, exports, "run-2", None)
    assert second.published == exports / PUBLISHED
    assert read_manifest(exports)["run_id"] == "run-2"
    assert read_manifest(exports)["version"] == second.version_dir.name
    # A reader that resolved the old version still sees it complete.
    assert pq.read_table(old_dir / "dim_a.parquet").num_rows == 5
    assert pq.read_table(exports / PUBLISHED / "dim_a.parquet").num_rows == 6
    assert first.version_dir != second.version_dir


# A publish in a process that may write files of at most 1 MB: the disk "fills up" while
# the second Parquet file is written (the first, small one fits).
PUBLISH_ON_A_SMALL_DISK = """
import sys, duckdb
from orchestration.publish.export import publish_marts
con = duckdb.connect()
con.execute("create schema marts")
con.execute("create table marts.dim_a as select i::bigint as id from range(5) t(i)")
con.execute("create table marts.fct_b as select i::bigint as id, random() as x "
            "from range(2000000) t(i)")
try:
    publish_marts(con, sys.argv[1], "run-2", None)
except duckdb.IOException as exc:
    print(exc)
"""


def _small_disk() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write beyond it fails with EFBIG


def _version_files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_publish_failing_after_the_first_parquet_file_leaves_no_tmp_and_the_old_export(
    con, tmp_path
):
    exports = tmp_path / "exports"
    first = publish_marts(con, exports, "run-1", None)
    before = _version_files(first.version_dir)
    failed = subprocess.run(
        [sys.executable, "-c", PUBLISH_ON_A_SMALL_DISK, str(exports)],
        cwd=REPO, capture_output=True, text=True, preexec_fn=_small_disk, timeout=120,
    )  # fmt: skip
    assert failed.returncode == 0, failed.stderr
    # dim_a.parquet was written into the new version's folder; fct_b.parquet was not
    assert "fct_b.parquet" in failed.stdout and "File too large" in failed.stdout, failed.stdout
    assert not list((exports / "versions").glob(".tmp-*"))
    assert [p.name for p in (exports / "versions").iterdir()] == [first.version_dir.name]
    assert published_version(exports).resolve() == first.version_dir.resolve()
    assert read_manifest(exports)["run_id"] == "run-1"
    assert _version_files(exports / PUBLISHED) == before


def test_nothing_to_publish_is_refused_and_keeps_the_export(con, tmp_path):
    exports = tmp_path / "exports"
    publish_marts(con, exports, "run-1", None)
    con.execute("drop schema marts cascade")
    con.execute("create schema marts")
    with pytest.raises(RuntimeError, match="no tables"):
        publish_marts(con, exports, "run-2", None)
    assert read_manifest(exports)["run_id"] == "run-1"


def test_only_the_last_versions_are_kept(con, tmp_path):
    exports = tmp_path / "exports"
    for i in range(5):
        publish_marts(con, exports, f"run-{i}", None, keep=2)
    kept = sorted(p.name for p in (exports / "versions").iterdir())
    assert len(kept) == 2
    assert read_manifest(exports)["run_id"] == "run-4"


def test_marts_duckdb_holds_exactly_the_export_and_stays_readable_during_a_publish(con, tmp_path):
    exports = tmp_path / "exports"
    first = publish_marts(con, exports, "run-1", None)
    assert first.manifest["duckdb_file"] == "marts.duckdb"
    assert first.manifest["duckdb_version"] == duckdb.__version__
    # A Power BI / ODBC reader holds the published marts.duckdb open, read-only ...
    reader = duckdb.connect(str(exports / PUBLISHED / "marts.duckdb"), read_only=True)
    try:
        tables = [r[0] for r in reader.execute("show tables").fetchall()]
        assert tables == ["dim_a", "fct_b"]
        for entry in first.manifest["tables"]:
            (rows,) = reader.execute(f"select count(*) from {entry['name']}").fetchone()
            assert rows == entry["rows"]
        types = reader.execute(
            "select data_type from information_schema.columns where table_name = 'dim_a' "
            "order by ordinal_position"
        ).fetchall()
        assert types == [("BIGINT",), ("VARCHAR",)]
        # ... while the next run publishes a new version: both keep working.
        con.execute("insert into marts.dim_a values (99, 'new')")
        second = publish_marts(con, exports, "run-2", None)
        assert reader.execute("select count(*) from dim_a").fetchone() == (5,)
    finally:
        reader.close()
    with duckdb.connect(str(second.version_dir / "marts.duckdb"), read_only=True) as fresh:
        assert fresh.execute("select count(*) from dim_a").fetchone() == (6,)
    # The live warehouse is never what readers open.
    assert not (exports / PUBLISHED / "w.duckdb").exists()


def test_optional_csv_export_round_trips(con, tmp_path):
    import pandas as pd

    result = publish_marts(con, tmp_path / "exports", "run-csv", None, csv=True)
    for entry in result.manifest["tables"]:
        frame = pd.read_csv(result.version_dir / entry["csv_file"])
        assert len(frame) == entry["rows"]
        assert list(frame.columns) == [c["name"] for c in entry["columns"]]
    without = publish_marts(con, tmp_path / "exports2", "run-parquet", None)
    assert not list(without.version_dir.glob("*.csv"))
    assert all("csv_file" not in e for e in without.manifest["tables"])
