"""The risk band and the store of fitted value and churn models.

Pure library (numpy, scikit-learn): the value models themselves are :mod:`ml.value`,
the churn score :mod:`ml.churn.production`.

* :func:`risk_band` - ``low`` / ``medium`` / ``high`` from a churn probability.
* :func:`save_value_models` / :func:`load_value_models` - the fitted value and churn
  models under ``<store>/<version>/`` with ``LATEST``, so scoring needs no refit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import joblib
import numpy as np
import sklearn

from ml.store import (
    METADATA_FILE,
    atomic_write,
    new_version_dir,
    point_latest,
    version_dir,
    warn_if_other_sklearn,
)

if TYPE_CHECKING:
    from ml.churn.production import ChurnResult
    from ml.value import ValueModels
__all__ = ["load_value_models", "risk_band", "save_value_models"]


def risk_band(probability: np.ndarray, thresholds: Sequence[float] = (0.3, 0.6)) -> np.ndarray:
    """``low`` below the first threshold, ``high`` at or above the second, else ``medium``."""
    low, high = thresholds
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"risk band thresholds must be 0 <= low <= high <= 1, got {thresholds}")
    p = np.asarray(probability, dtype=float)
    return np.where(p >= high, "high", np.where(p < low, "low", "medium")).astype(object)


VALUE_MODEL_FILE = "value_models.joblib"


def save_value_models(
    directory: str | Path,
    models: ValueModels,
    churn: ChurnResult,
    metadata: Mapping[str, Any],
    version: str | None = None,
) -> Path:
    """Save the value models and the churn result under ``directory/<version>/``.

    Writes ``value_models.joblib`` and ``metadata.json`` (``metadata`` plus version,
    time and library versions), then points ``directory/LATEST`` at the version.
    """
    root = Path(directory)
    target = new_version_dir(root, version)
    meta = {
        **dict(metadata),
        "version": target.name,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "churn_fallback": churn.fallback,
        "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
    }
    payload = {"models": models, "churn": churn}
    atomic_write(target / VALUE_MODEL_FILE, lambda p: joblib.dump(payload, p, compress=3))
    atomic_write(
        target / METADATA_FILE,
        lambda p: Path(p).write_text(json.dumps(meta, indent=2, default=str)),
    )
    point_latest(root, target.name)
    return target


def load_value_models(directory: str | Path) -> tuple[ValueModels, ChurnResult, dict]:
    """``(models, churn, metadata)`` of the ``LATEST`` version saved by :func:`save_value_models`."""
    target = version_dir(Path(directory), None, "value and churn models")
    metadata = json.loads((target / METADATA_FILE).read_text())
    warn_if_other_sklearn(metadata, "value models")
    payload = joblib.load(target / VALUE_MODEL_FILE)
    return payload["models"], payload["churn"], metadata
