"""The workdir is its owner's alone; who may read the export is a config setting.

orchestration/io/permissions.py. The shared demo workdir (tests/conftest.py) is the run
under test: its folder was made by the demo generator with the usual 0755 before the run.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import duckdb
import pytest

from orchestration.io.config import ConfigError, ExportConfig, load_config
from orchestration.io.permissions import EXPORT_MODES, SEARCH_BITS, make_private_workdir
from orchestration.publish.export import publish_marts
from tests.pipeline_utils import copy_workdir

# What a run writes in the workdir (other tests add files of their own to the shared one).
RUN_OUTPUTS = (
    "warehouse.duckdb", ".run.lock", "dagster_home", "dbt", "dbt_cutoffs", "gx", "validation",
    "models", "logs/last_run.log", "reports/latest.html", "reports/data_docs", "exports",
    "demo_data",
)  # fmt: skip


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _modes(root: Path) -> dict[str, int]:
    """Mode of every file and folder under ``root`` (and of ``root``), links left out."""
    out = {".": _mode(root)} if not root.is_symlink() else {}
    for path in root.rglob("*") if root.is_dir() else []:
        if not path.is_symlink():
            out[str(path.relative_to(root))] = _mode(path)
    return out


def test_workdir_of_a_run_in_a_0755_folder_is_readable_by_its_owner_only(published_demo):
    assert _mode(published_demo) == 0o700
    open_to_others = {}
    for name in RUN_OUTPUTS:
        for path, mode in _modes(published_demo / name).items():
            if mode & 0o077:
                open_to_others[f"{name}/{path}"] = f"{mode:04o}"
    assert not open_to_others
    assert _mode(published_demo / "warehouse.duckdb") == 0o600
    assert _mode(published_demo / "exports" / "powerbi" / "manifest.json") == 0o600


def _publish(workdir: Path, access: str, exports: Path | None = None) -> Path:
    exports = exports or workdir / "exports"
    with duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True) as con:
        result = publish_marts(
            con, exports, "run-access", None, keep=2, access=access, workdir=workdir
        )
    return result.version_dir


@pytest.mark.parametrize("access", ["group", "everyone"])
def test_export_shared_with_group_or_everyone_opens_only_the_export(
    published_demo, tmp_path, access
):
    """export.access: group -> folders 0750, files 0640; everyone -> 0755 / 0644. The
    workdir gets only the search bit; everything else in it stays the owner's. Back to
    `owner`, the export (the versions kept as well) and the workdir close again."""
    workdir = copy_workdir(published_demo, tmp_path / "wd")
    dir_mode, file_mode = EXPORT_MODES[access]
    version = _publish(workdir, access)

    exports = workdir / "exports"
    assert _mode(exports) == _mode(exports / "versions") == dir_mode
    for folder in (exports / "versions").iterdir():  # every kept version, not only the new
        modes = _modes(folder)
        assert modes.pop(".") == dir_mode
        assert set(modes.values()) == {file_mode}, folder
    # The published folder (a real folder of hard links to the version) has the same modes.
    assert (
        json.loads((exports / "powerbi" / "manifest.json").read_text())["version"] == version.name
    )
    published = _modes(exports / "powerbi")
    assert published.pop(".") == dir_mode and set(published.values()) == {file_mode}
    assert _mode(workdir) == 0o700 | SEARCH_BITS[access]
    assert _mode(workdir / "warehouse.duckdb") == 0o600
    assert _mode(workdir / "models") == 0o700

    _publish(workdir, "owner")
    assert _mode(workdir) == 0o700
    export_modes = _modes(exports)
    assert {m for p, m in export_modes.items() if (exports / p).is_dir()} == {0o700}
    assert {m for p, m in export_modes.items() if (exports / p).is_file()} == {0o600}


def test_export_to_an_existing_shared_folder_keeps_that_folders_own_mode(published_demo, tmp_path):
    """CUSTSEG_EXPORT_DIR on a share its owner set up (set-group-ID, group-writable)."""
    workdir = copy_workdir(published_demo, tmp_path / "wd")
    share = tmp_path / "share"
    share.mkdir()
    os.chmod(share, 0o2770)
    version = _publish(workdir, "group", exports=share)
    assert _mode(share) == 0o2770
    assert _mode(version) & 0o777 == 0o750
    assert _mode(version / "manifest.json") == 0o640
    assert _mode(workdir) == 0o700  # the export is not in it


def test_export_access_config_defaults_to_owner_and_names_the_key_when_wrong(tmp_path):
    assert ExportConfig().access == "owner"
    assert set(EXPORT_MODES) == set(SEARCH_BITS) == {"owner", "group", "everyone"}
    base = "transactions: {path: t.csv, columns: {amount: a}}\n"
    config = tmp_path / "custseg.yaml"
    config.write_text(base + "export: {access: group}\n", encoding="utf-8")
    assert load_config(config).export.access == "group"
    config.write_text(base + "export: {access: world}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"export\.access"):
        load_config(config)


def test_workdir_left_0755_with_0644_files_by_an_older_version_is_closed_but_its_export(
    tmp_path,
):
    workdir = tmp_path / "wd"
    for name in ("warehouse.duckdb", "models/m/model.pkl", "exports/versions/v1/a.parquet"):
        (workdir / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / name).write_text("x")
    for path in (workdir, *workdir.rglob("*")):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    said: list[str] = []

    make_private_workdir(workdir, exports_dir=workdir / "exports", log=said.append)

    assert _mode(workdir) == 0o700
    assert _mode(workdir / "warehouse.duckdb") == 0o600
    assert _mode(workdir / "models") == _mode(workdir / "models" / "m") == 0o700
    assert _mode(workdir / "models" / "m" / "model.pkl") == 0o600
    # The export keeps its modes until the run publishes (export.access).
    assert _mode(workdir / "exports" / "versions" / "v1" / "a.parquet") == 0o644
    assert len(said) == 1 and "was open to other users (0755)" in said[0]
    make_private_workdir(workdir, exports_dir=workdir / "exports", log=said.append)
    assert len(said) == 1  # said once
