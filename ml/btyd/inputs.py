"""Input handling of the BTYD models: summary columns, checks, compression of identical rows.

Every model reads the lifetimes-style summary through these functions, so a bad
summary fails with the same message whichever model is fitted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

SUMMARY_COLUMNS: tuple[str, str, str] = ("frequency", "recency", "T")
SPEND_COLUMNS: tuple[str, str] = ("frequency", "monetary_value")

#: dbt ``features.customer_features`` columns -> summary columns (time unit: days).
DBT_SUMMARY_COLUMNS: dict[str, str] = {
    "lt_frequency": "frequency",
    "lt_recency_days": "recency",
    "lt_t_days": "T",
    "lt_monetary_value": "monetary_value",
}


def _columns(X: Any, names: Sequence[str]) -> list[np.ndarray]:
    """The named columns of a DataFrame / mapping, or the columns of a 2-D array, as float."""
    if isinstance(X, Mapping):
        X = pd.DataFrame(X)
    if isinstance(X, pd.DataFrame):
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise ValueError(
                f"the summary lacks column(s) {missing}; expected {list(names)} "
                f"(use summary_from_customer_features for the dbt columns)"
            )
        cols = [X[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in names]
    else:
        A = np.asarray(X, dtype=np.float64)
        if A.ndim == 1 and A.shape[0] == len(names):
            A = A[None, :]
        if A.ndim != 2 or A.shape[1] != len(names):
            raise ValueError(
                f"X must be a DataFrame with columns {list(names)} or an array of shape "
                f"(n_customers, {len(names)}); got shape {A.shape}"
            )
        cols = [A[:, i].copy() for i in range(len(names))]
    for name, col in zip(names, cols, strict=True):
        if not np.all(np.isfinite(col)):
            raise ValueError(f"column {name!r} has missing or infinite values")
    return cols


def _check_frequency(x: np.ndarray) -> None:
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("frequency must be a non-negative whole number of repeat purchases")


def _summary(X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (frequency, recency, T) arrays."""
    x, tx, T = _columns(X, SUMMARY_COLUMNS)
    _check_frequency(x)
    if np.any(tx < 0):
        raise ValueError("recency must be >= 0")
    if np.any(tx > T * (1 + 1e-12)):
        raise ValueError("recency must be <= T (time of last purchase <= end of observation)")
    if np.any((x == 0) & (tx != 0)):
        raise ValueError("recency must be 0 for customers with frequency 0")
    return x, np.minimum(tx, T), T


def _time(t: ArrayLike, name: str = "t") -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    return t


def _compress(
    cols: Sequence[np.ndarray], sample_weight: ArrayLike | None
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct rows of ``cols``, their summed weights, and the row -> distinct-row index.

    Same result as ``np.unique(np.column_stack(cols), axis=0, return_inverse=True,
    return_counts=True)``: distinct rows in sorted order. Each column is factorised on
    its own with a hash table (``pd.factorize``; only the distinct values are sorted),
    which is several times faster on a million rows than sorting them all.
    """
    n = cols[0].shape[0]
    key = np.zeros(n, dtype=np.int64)
    for col in cols:
        codes, values = pd.factorize(np.ravel(col), sort=True, use_na_sentinel=False)
        # key < n before the multiplication, so key * len(values) < n**2 fits in int64
        key, _ = pd.factorize(key * len(values) + codes, sort=True)
    inverse = key.astype(np.int64, copy=False)
    at = np.flatnonzero(~pd.Series(inverse).duplicated().to_numpy())  # a row of each
    first = np.empty(len(at), dtype=np.int64)
    first[inverse[at]] = at
    if sample_weight is None:
        weights = np.bincount(inverse, minlength=len(first)).astype(np.float64)
    else:
        sw = np.asarray(sample_weight, dtype=np.float64).ravel()
        if sw.shape[0] != n or not np.all(np.isfinite(sw)) or np.any(sw < 0):
            raise ValueError("sample_weight must be finite, >= 0 and one per customer")
        weights = np.bincount(inverse, weights=sw, minlength=len(first))
    return [col[first] for col in cols], weights, inverse


def _finite(values: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise FloatingPointError(f"{what}: {bad} value(s) are not finite")
    return values
