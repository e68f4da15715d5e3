"""Saving, loading and scoring with a fitted segmenter (no refit)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.utils.validation import check_is_fitted

from ml.segmentation.segmenter import (
    ALGORITHMS,
    ID_COLUMN,
    CustomerSegmenter,
    _assignments,
    _check_frame,
)
from ml.store import (
    METADATA_FILE,
    MODEL_FILE,
    atomic_write,
    jsonable,
    new_version_dir,
    point_latest,
    version_dir,
    warn_if_other_sklearn,
)


def _training_window(features_df: pd.DataFrame | None) -> dict[str, str | None]:
    window: dict[str, str | None] = {"as_of_date": None, "first_order_date": None}
    if features_df is None:
        return window
    for column, how in (("as_of_date", "max"), ("first_order_date", "min")):
        if column in features_df.columns and len(features_df):
            value = getattr(pd.to_datetime(features_df[column]), how)()
            window[column] = None if pd.isna(value) else value.date().isoformat()
    return window


def save_model(
    model: CustomerSegmenter,
    directory: str | os.PathLike,
    *,
    features_df: pd.DataFrame | None = None,
    version: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save a fitted segmenter and its metadata under ``directory/<version>/``.

    Writes ``model.joblib`` and ``metadata.json`` (features, log features,
    algorithm and parameters, segment names, training window read from
    ``features_df`` - ``as_of_date`` and first order date -, number of
    training customers, library versions, ``extra``), then points
    ``directory/LATEST`` at the version. ``directory`` gets a ``.gitignore``
    of ``*`` so a model is never committed by accident.

    Parameters
    ----------
    model : CustomerSegmenter
        Fitted model.
    directory : path
        Model store (e.g. ``<workdir>/models/segmentation``), created if needed.
    features_df : DataFrame, default=None
        The training features, for the training window.
    version : str, default=None
        Version name; ``None`` = UTC timestamp ``YYYYMMDDTHHMMSSffffffZ``.
    extra : mapping, default=None
        More JSON-serialisable metadata (e.g. the selection reason).

    Returns
    -------
    path : Path
        The version directory.
    """
    check_is_fitted(model, ("clusterer_", "preprocessor_"))
    root = Path(directory)
    target = new_version_dir(root, version)
    version = target.name
    metadata = {
        "version": version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "algorithm": next(
            (a for a, c in ALGORITHMS.items() if type(model.clusterer_) is c),
            type(model.clusterer_).__name__,
        ),
        "clusterer_params": {k: jsonable(v) for k, v in model.clusterer_.get_params().items()},
        "fitted_params": {k: jsonable(v) for k, v in model.clusterer_.fixed_params_.items()},
        "features": list(model.features_),
        "categorical_features": list(model.categorical_features_),
        "log_features": list(model.log_features_),
        "value_column": model.value_column,
        "n_segments": int(model.n_clusters_),
        "segment_names": list(model.segment_names_),
        "noise_cluster": model.noise_cluster_,
        "n_training_customers": int(len(model.labels_)),
        "training_window": _training_window(features_df),
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
        },
        **dict(extra or {}),
    }
    atomic_write(target / MODEL_FILE, lambda p: joblib.dump(model, p, compress=3))
    atomic_write(
        target / METADATA_FILE, lambda p: Path(p).write_text(json.dumps(metadata, indent=2))
    )
    point_latest(root, version)
    return target


def load_model(
    directory: str | os.PathLike, version: str | None = None
) -> tuple[CustomerSegmenter, dict[str, Any]]:
    """Load ``(model, metadata)`` saved by :func:`save_model` (``LATEST`` by default).

    Warns if the model was saved with another scikit-learn version (pickles
    are only reliable within one version).
    """
    target = version_dir(Path(directory), version, "segmentation model")
    metadata = json.loads((target / METADATA_FILE).read_text())
    warn_if_other_sklearn(metadata, "model")
    model = joblib.load(target / MODEL_FILE)
    return model, metadata


def score_customers(model: CustomerSegmenter, features_df: pd.DataFrame) -> pd.DataFrame:
    """Assign customers (new or changed ones, or all) to the model's existing segments.

    Uses the fitted preparation and clusterer only; nothing is refitted.
    Returns ``customer_id, cluster_id, cluster_label`` in input order.
    """
    _check_frame(features_df)
    check_is_fitted(model, ("clusterer_", "preprocessor_"))
    if len(features_df) == 0:
        return _assignments(features_df[ID_COLUMN], np.zeros(0, dtype=np.int64), [])
    labels = model.predict(features_df)
    return _assignments(features_df[ID_COLUMN], labels, model.segment_names_)
