"""Shared fixtures: a parsed dbt manifest, the shared real data, and pipeline runs in temp dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> Path:
    """The Dagster definitions load the dbt manifest; make sure it matches the project files."""
    from orchestration.dbt import ensure_manifest

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

    return publish_demo(tmp_path_factory.mktemp("published"), customers=800, seed=5)


@pytest.fixture(scope="session")
def segmentation_demo(tmp_path_factory) -> Path:
    """A 5,000-customer demo workdir after one full run (planted personas, seed 11).

    Shared by the segmentation library tests (which read its features) and the
    segmentation asset tests; tests copy it before changing anything.
    """
    from tests.pipeline_utils import publish_demo

    return publish_demo(tmp_path_factory.mktemp("segmentation_demo"), customers=5000, seed=11)
