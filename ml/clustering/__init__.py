"""Clustering algorithms on the prepared feature matrix, with sample-and-assign."""

from ml.clustering.base import (
    K_SCORE_COLUMNS,
    K_SELECTION_RULES,
    DegenerateDataWarning,
    SampledDBSCAN,
    SampledHDBSCAN,
    SampledKMeans,
    SampledWard,
    cluster_scores,
    knee_index,
    select_k,
    stratified_sample,
)

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
    "stratified_sample",
]
