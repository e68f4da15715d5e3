"""Customer segmentation library (numpy, pandas, scipy, scikit-learn only).

No orchestration or warehouse code lives here: the Dagster assets read
``features.customer_features`` into a DataFrame and call
:func:`segment_customers`.
"""

from ml.clustering import (
    DegenerateDataWarning,
    KMeansSegmenter,
    describe_clusters,
    segment_customers,
)
from ml.features import (
    DEFAULT_FEATURES,
    DEFAULT_LOG_FEATURES,
    build_preprocessor,
    inverse_transform_features,
)

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_LOG_FEATURES",
    "DegenerateDataWarning",
    "KMeansSegmenter",
    "build_preprocessor",
    "describe_clusters",
    "inverse_transform_features",
    "segment_customers",
]
