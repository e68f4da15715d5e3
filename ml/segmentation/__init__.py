"""Customer segmentation: fit, compare, choose, persist, score, migrate.

* :mod:`~ml.segmentation.segmenter` - :class:`CustomerSegmenter`, the scikit-learn
  clusterer: feature preparation (:mod:`ml.features`) + one algorithm of
  :mod:`ml.clustering` + segment ids ordered by value + names (:mod:`ml.naming`).
* :mod:`~ml.segmentation.selection` - candidates judged out of time and the rule
  that picks the production segmentation.
* :mod:`~ml.segmentation.persistence` - save, load and score without refitting
  (the versioned folders are :mod:`ml.store`).
* :mod:`~ml.segmentation.migration` - customers moving between segments.
"""

from ml.segmentation.candidates import RFM_FEATURES, Candidate, bootstrap_stability
from ml.segmentation.migration import GONE_LABEL, MIGRATION_COLUMNS, NEW_LABEL, segment_migration
from ml.segmentation.persistence import load_model, save_model, score_customers
from ml.segmentation.segmenter import (
    ALGORITHMS,
    ASSIGNMENT_COLUMNS,
    ID_COLUMN,
    VALUE_COLUMN,
    CustomerSegmenter,
    make_clusterer,
)
from ml.segmentation.selection import (
    CANDIDATE_COLUMNS,
    SegmentationResult,
    SelectionRule,
    fit_candidates,
)
from ml.store import (
    LATEST_FILE,
    METADATA_FILE,
    MODEL_FILE,
    atomic_write,
    new_version_dir,
    point_latest,
    version_dir,
    warn_if_other_sklearn,
)

__all__ = [
    "ALGORITHMS",
    "ASSIGNMENT_COLUMNS",
    "CANDIDATE_COLUMNS",
    "GONE_LABEL",
    "ID_COLUMN",
    "LATEST_FILE",
    "METADATA_FILE",
    "MIGRATION_COLUMNS",
    "MODEL_FILE",
    "NEW_LABEL",
    "VALUE_COLUMN",
    "RFM_FEATURES",
    "Candidate",
    "CustomerSegmenter",
    "SegmentationResult",
    "SelectionRule",
    "atomic_write",
    "bootstrap_stability",
    "fit_candidates",
    "load_model",
    "make_clusterer",
    "new_version_dir",
    "point_latest",
    "save_model",
    "score_customers",
    "segment_migration",
    "version_dir",
    "warn_if_other_sklearn",
]
