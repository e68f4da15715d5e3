"""Customer segmentation library (numpy, pandas, scipy, scikit-learn only).

No orchestration or warehouse code lives here: the Dagster assets read
``features.customer_features`` into a DataFrame and call the functions below.

* :mod:`ml.features` - which columns enter and how they are prepared.
* :mod:`ml.clustering` - K-Means, Ward, DBSCAN, HDBSCAN with sample-and-assign.
* :mod:`ml.segmentation` - the segmenter, candidate comparison and choice,
  persistence, scoring, migration.
* :mod:`ml.naming` - segment profiles and business names.
"""

import os

# OpenMP threads (scikit-learn's gradient boosting, K-Means) that wait by sleeping, not
# spinning: when anything else runs on the machine, spinning threads steal the cores the
# work needs. Measured on a busy 2-core machine, the churn fit on 800 customers took
# 121 s with GNU OpenMP's default (active) waiting and 15.6 s with PASSIVE. It must be
# set before the OpenMP runtime loads, so here, before scikit-learn is imported; an
# explicit OMP_WAIT_POLICY in the environment wins. See also ml/threads.py.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


from ml.clustering import (
    DegenerateDataWarning,
    SampledDBSCAN,
    SampledHDBSCAN,
    SampledKMeans,
    SampledWard,
)
from ml.features import (
    BEHAVIOURAL_FEATURES,
    DEFAULT_FEATURES,
    DEFAULT_LOG_FEATURES,
    FEATURE_GROUPS,
    build_preprocessor,
    inverse_transform_features,
    select_features,
)
from ml.naming import name_segments, profile_segments
from ml.segmentation import (
    ALGORITHMS,
    CustomerSegmenter,
    SegmentationResult,
    SelectionRule,
    fit_candidates,
    load_model,
    save_model,
    score_customers,
    segment_migration,
)

__all__ = [
    "ALGORITHMS",
    "BEHAVIOURAL_FEATURES",
    "DEFAULT_FEATURES",
    "DEFAULT_LOG_FEATURES",
    "FEATURE_GROUPS",
    "CustomerSegmenter",
    "DegenerateDataWarning",
    "SampledDBSCAN",
    "SampledHDBSCAN",
    "SampledKMeans",
    "SampledWard",
    "SegmentationResult",
    "SelectionRule",
    "build_preprocessor",
    "fit_candidates",
    "inverse_transform_features",
    "load_model",
    "name_segments",
    "profile_segments",
    "save_model",
    "score_customers",
    "segment_migration",
    "select_features",
]
