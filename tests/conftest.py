"""Shared fixtures: a parsed dbt manifest, the shared real data, and pipeline runs in temp dirs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest(tmp_path_factory) -> Path:
    """The Dagster definitions load the dbt manifest; make sure it matches the project files."""
    from orchestration.dbt import ensure_manifest

    with FileLock(shared_root(tmp_path_factory) / "dbt_manifest.lock"):
        return ensure_manifest()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data sets are missing: expected them in {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def published_demo(tmp_path_factory) -> Path:
    """A small demo workdir after one successful run; tests copy it before changing anything."""
    from tests.pipeline_utils import publish_demo

    return built_once(
        tmp_path_factory, "published", lambda wd: publish_demo(wd, customers=800, seed=5)
    )


@pytest.fixture(scope="session")
def segmentation_demo(tmp_path_factory) -> Path:
    """A 5,000-customer demo workdir after one full run (planted personas, seed 11).

    Shared by the segmentation library tests (which read its features) and the
    segmentation asset tests; tests copy it before changing anything.
    """
    from tests.pipeline_utils import publish_demo

    return built_once(
        tmp_path_factory,
        "segmentation_demo",
        lambda wd: publish_demo(wd, customers=5000, seed=11),
    )


def shared_root(tmp_path_factory) -> Path:
    """The temp folder all test processes of this session share (pytest-xdist gives each
    worker its own base temp inside it); without xdist, the session's own base temp."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory, name: str, build: Callable[[Path], object]) -> Path:
    """``build(folder)`` once per test session, whichever worker needs it first.

    The others wait on a file lock and reuse the folder; a build that failed leaves no
    completion mark, so the next one tries again (and fails with its own error).
    """
    folder = shared_root(tmp_path_factory) / name
    done = folder.parent / f"{name}.complete"
    with FileLock(folder.parent / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            done.touch()
    return folder
