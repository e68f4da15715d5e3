"""Clustering algorithms on the prepared feature matrix, with sample-and-assign.

The estimators here take the *preprocessed* numeric matrix (see
:mod:`ml.features`); :class:`ml.segmentation.CustomerSegmenter` puts them
behind the feature preparation and turns their labels into named segments.

=====================  ============================================================
:class:`SampledKMeans`  k over ``k_range`` chosen on a sample by silhouette,
                        Calinski-Harabasz and Davies-Bouldin (and bootstrap
                        stability), then Lloyd iterations on every row.
:class:`SampledWard`    Ward agglomerative clustering of a sample (k chosen like
                        k-means); other rows go to the nearest cluster centroid.
:class:`SampledDBSCAN`  DBSCAN of a sample with ``eps`` at the knee of the sorted
                        k-distance curve; other rows go to the nearest core
                        sample within ``eps``, else noise.
:class:`SampledHDBSCAN` scikit-learn's HDBSCAN of a sample; other rows go to the
                        nearest clustered sample point within that point's core
                        distance, else noise.
=====================  ============================================================

Why samples: Ward, DBSCAN, HDBSCAN and the silhouette are super-linear in rows,
so they see a stratified sample of ``sample_size`` rows (:func:`stratified_sample`)
and every other row is *assigned*, which is linear. Rows of the sample keep the
label the algorithm gave them. Noise (label ``-1``) is a label like any other
here; the segmenter reports it as its own segment.

The modules: :mod:`~ml.clustering.base` (the sample and the sample-and-assign base),
:mod:`~ml.clustering.centroid` (choosing k, nearest-centroid assignment),
:mod:`~ml.clustering.kmeans`, :mod:`~ml.clustering.hierarchical`,
:mod:`~ml.clustering.density` and :mod:`~ml.clustering.metrics` (scores of labelings).
"""

from ml.clustering.base import (
    DegenerateDataWarning,
    proportional_size,
    shared_strata,
    stratified_sample,
)
from ml.clustering.centroid import K_SCORE_COLUMNS, K_SELECTION_RULES, select_k
from ml.clustering.density import SampledDBSCAN, SampledHDBSCAN, knee_index
from ml.clustering.hierarchical import SampledWard
from ml.clustering.kmeans import SampledKMeans
from ml.clustering.metrics import cluster_scores

__all__ = [
    "K_SCORE_COLUMNS",
    "K_SELECTION_RULES",
    "DegenerateDataWarning",
    "SampledDBSCAN",
    "SampledHDBSCAN",
    "SampledKMeans",
    "SampledWard",
    "cluster_scores",
    "knee_index",
    "select_k",
    "proportional_size",
    "shared_strata",
    "stratified_sample",
]
