"""Versioned model store: ``<root>/<version>/`` folders and a ``LATEST`` pointer.

Both saved models (segmentation, value and churn) use it, so a scoring run applies
the last refit without fitting anything.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import sklearn

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
LATEST_FILE = "LATEST"


def new_version_dir(root: Path, version: str | None = None) -> Path:
    """``root/<version>/`` created (default version: UTC timestamp), with a ``.gitignore``
    of ``*`` in ``root`` so a model is never committed by accident."""
    version = version or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    if not version or any(ch in version for ch in "/\\") or version.startswith("."):
        raise ValueError(f"invalid model version {version!r}")
    target = root / version
    target.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# fitted models are artefacts, never committed\n*\n")
    return target


def point_latest(root: Path, version: str) -> None:
    """Make ``version`` the one ``root/LATEST`` names (atomically)."""
    atomic_write(root / LATEST_FILE, lambda p: Path(p).write_text(version + "\n"))


def version_dir(root: Path, version: str | None, what: str) -> Path:
    """``root/<version>/``, by default the one ``LATEST`` names; ``what`` is for the error."""
    if version is None:
        latest = root / LATEST_FILE
        if not latest.exists():
            raise FileNotFoundError(f"no saved {what} under {root}")
        version = latest.read_text().strip()
    return root / version


def warn_if_other_sklearn(metadata: Mapping[str, Any], what: str) -> None:
    """Pickles are only reliable within one scikit-learn version: warn when it differs."""
    saved = metadata.get("versions", {}).get("scikit-learn")
    if saved != sklearn.__version__:
        warnings.warn(
            f"{what} saved with scikit-learn {saved}, running {sklearn.__version__}",
            UserWarning,
            stacklevel=3,
        )


def atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def jsonable(v: Any) -> Any:
    """``v`` as a JSON value (numpy scalars unwrapped, estimators and the like as text)."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if v is None or isinstance(v, str | int | float | bool):
        return v
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    return repr(v)
