"""Scores of labelings: silhouette, Calinski-Harabasz, Davies-Bouldin, bootstrap stability.

The silhouettes of several labelings of one sample share a single blockwise pass
over the pairwise distances, which is what makes scoring every k affordable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.metrics import (
    adjusted_rand_score,
    calinski_harabasz_score,
    davies_bouldin_score,
)

# Size (in float64 elements) of one block of the distance matrix in
# _silhouette_scores: 8e6 * 8 bytes = 64 MB.
_SILHOUETTE_BLOCK_ELEMENTS = 8_000_000


def _silhouette_scores(X: np.ndarray, labelings: Sequence[np.ndarray]) -> list[float]:
    """Mean silhouette coefficient (Euclidean) of several labelings of ``X``.

    Equivalent to ``sklearn.metrics.silhouette_score(X, labels)`` for each
    labeling, but the O(n^2) pairwise distances are computed once, block by
    block, and shared by all labelings: for a block of rows the distances to
    every point are multiplied by the stacked one-hot label matrices, which
    gives the sum of distances to each cluster for every labeling at once.

    Each labeling must have 2 <= n_labels <= n_samples - 1.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    codes, counts, offsets = [], [], [0]
    for labels in labelings:
        _, code, count = np.unique(labels, return_inverse=True, return_counts=True)
        codes.append(code.ravel())
        counts.append(count.astype(np.float64))
        offsets.append(offsets[-1] + len(count))
    onehot = np.zeros((n, offsets[-1]))
    for j, code in enumerate(codes):
        onehot[np.arange(n), offsets[j] + code] = 1.0

    sq_norms = np.einsum("ij,ij->i", X, X)
    # |x|^2 - 2 x.y + |y|^2 as one matrix product of augmented rows, so a block of
    # squared distances is a single pass over memory.
    left = np.column_stack([X, sq_norms, np.ones(n)])
    right = np.ascontiguousarray(np.column_stack([-2.0 * X, np.ones(n), sq_norms]).T)
    block = max(1, _SILHOUETTE_BLOCK_ELEMENTS // max(n, 1))
    buffer = np.empty((min(block, n), n))  # reused: a fresh block per pass costs page faults
    totals = np.zeros(len(codes))
    for start in range(0, n, block):
        stop = min(n, start + block)
        rows = np.arange(start, stop)
        d2 = np.matmul(left[start:stop], right, out=buffer[: stop - start])
        np.maximum(d2, 0.0, out=d2)
        d2[rows - start, rows] = 0.0  # exact zero self-distance
        dist_sums = np.sqrt(d2, out=d2) @ onehot  # (block, total number of clusters)
        for j, (code, count) in enumerate(zip(codes, counts, strict=True)):
            sums = dist_sums[:, offsets[j] : offsets[j + 1]]
            own = code[start:stop]
            own_size = count[own]
            a = sums[rows - start, own] / np.maximum(own_size - 1.0, 1.0)
            means = sums / count[None, :]
            means[rows - start, own] = np.inf
            b = means.min(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                s = (b - a) / np.maximum(a, b)
            s = np.where(own_size > 1, np.nan_to_num(s), 0.0)  # singleton cluster -> 0
            totals[j] += s.sum()
    return list(totals / n)


def cluster_scores(X: np.ndarray, labelings: Sequence[np.ndarray]) -> list[dict[str, float]]:
    """Silhouette, Calinski-Harabasz and Davies-Bouldin of labelings of ``X``.

    Every distinct label (noise ``-1`` included) counts as a cluster. A
    labeling with fewer than 2 or more than ``n - 1`` clusters gets NaN.
    The silhouettes of all labelings share one O(n^2) pass.
    """
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    valid = [2 <= len(np.unique(lab)) <= n - 1 for lab in labelings]
    if not any(valid):
        nan = {"silhouette": np.nan, "calinski_harabasz": np.nan, "davies_bouldin": np.nan}
        return [dict(nan) for _ in labelings]
    sils = iter(
        _silhouette_scores(X, [lab for lab, ok in zip(labelings, valid, strict=True) if ok])
    )
    out = []
    for lab, ok in zip(labelings, valid, strict=True):
        if not ok:
            out.append(
                {"silhouette": np.nan, "calinski_harabasz": np.nan, "davies_bouldin": np.nan}
            )
            continue
        out.append(
            {
                "silhouette": float(next(sils)),
                "calinski_harabasz": float(calinski_harabasz_score(X, lab)),
                "davies_bouldin": float(davies_bouldin_score(X, lab)),
            }
        )
    return out


def _stability(
    fit_predict: Callable[[np.ndarray], list[np.ndarray]],
    pool: np.ndarray,
    S: np.ndarray,
    references: list[np.ndarray],
    n_resamples: int,
    rng: np.random.RandomState,
) -> list[float]:
    """Mean ARI between each reference labeling of ``S`` and refits on bootstraps.

    Each resample has ``len(S)`` rows drawn with replacement from ``pool``
    (all rows, so a resample is not mostly the sample itself);
    ``fit_predict(R)`` fits on resample ``R`` and returns one labeling of
    ``S`` per reference.
    """
    if n_resamples < 1:
        return [np.nan] * len(references)
    aris = np.zeros((n_resamples, len(references)))
    for b in range(n_resamples):
        R = pool[rng.randint(0, pool.shape[0], S.shape[0])]
        for j, labels in enumerate(fit_predict(R)):
            aris[b, j] = adjusted_rand_score(references[j], labels)
    return list(aris.mean(axis=0))
