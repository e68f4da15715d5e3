"""Permutation importance of a fitted preprocessing + classifier pipeline, preprocessed once.

scikit-learn's ``permutation_importance`` on a :class:`~sklearn.pipeline.Pipeline`
re-runs the whole preprocessing for every permuted column and repeat. The
preprocessing of :class:`ml.churn.ChurnModel` (imputation, scaling, one-hot
encoding) maps each input column to its own output columns, row by row, so
permuting the rows of an input column is the same as permuting the rows of its
output columns: :func:`pipeline_permutation_importance` transforms once and permutes
the output blocks, with the very permutations ``permutation_importance`` draws, so
the importances are the same. The permuted matrices are scored together, up to
:data:`BATCH_ROWS` rows per call (a classifier scores each row on its own). Each
permuted matrix's ROC AUC is the rank-sum (Mann-Whitney) form, equal to
``roc_auc_score``'s to rounding without its checks.

The one call per batch uses the step's share of the cores (:func:`ml.threads.threads_for_call`).

Pure library (numpy, pandas, scikit-learn).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils import Bunch, check_random_state

from ml.threads import threads_for_call

__all__ = ["output_blocks", "pipeline_permutation_importance"]

#: Rows of permuted matrices scored in one call of the classifier.
BATCH_ROWS = 250_000


def output_blocks(pre: ColumnTransformer, columns: list) -> list[np.ndarray] | None:
    """Output columns of ``pre`` fed by each input column (empty: dropped), or None
    when ``pre`` is not made of row-wise, per-column steps this module understands."""
    blocks: dict[Any, np.ndarray] = {c: np.zeros(0, dtype=np.int64) for c in columns}
    for name, step, inputs in pre.transformers_:
        if name == "remainder" or step == "drop":
            continue
        if not isinstance(step, Pipeline) or isinstance(inputs, slice):
            return None
        out = pre.output_indices_[name]
        first, rest = step.steps[0][1], [s for _, s in step.steps[1:]]
        if not isinstance(first, SimpleImputer):
            return None
        kept = list(first.get_feature_names_out(list(inputs)))  # it may drop empty columns
        if all(isinstance(s, StandardScaler) for s in rest):
            widths = [1] * len(kept)
        elif (
            len(rest) == 1
            and isinstance(rest[0], OneHotEncoder)
            and rest[0].drop is None
            and not getattr(rest[0], "infrequent_categories_", None)
        ):
            widths = [len(c) for c in rest[0].categories_]
        else:
            return None
        if len(widths) != len(kept) or sum(widths) != out.stop - out.start:
            return None
        position = out.start
        for column, width in zip(kept, widths, strict=True):
            blocks[column] = np.arange(position, position + width)
            position += width
    if len(blocks) != len(columns):
        return None
    return [blocks[c] for c in columns]


def _roc_auc(positive: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC from average ranks (ties count one half), as ``roc_auc_score``."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def pipeline_permutation_importance(
    pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, *, n_repeats: int, random_state: Any
) -> Bunch | None:
    """``sklearn.inspection.permutation_importance(pipeline, X, y, scoring="roc_auc",
    n_repeats=n_repeats, random_state=random_state)`` computed on the preprocessed
    matrix; None when the pipeline's preprocessing is not one :func:`output_blocks`
    understands (the caller then uses scikit-learn's)."""
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    if not isinstance(pipeline[0], ColumnTransformer):
        return None
    classifier = pipeline[-1]
    if not hasattr(classifier, "decision_function"):
        return None
    blocks = output_blocks(pipeline[0], list(X.columns))
    if blocks is None:
        return None
    Xt = np.asarray(pipeline[0].transform(X), dtype=np.float64)
    y = np.asarray(y)

    if np.unique(y).size != 2:
        return None  # scikit-learn's scorer says why
    positive = y == classifier.classes_[1]

    def scores(matrices: list[np.ndarray]) -> list[float]:
        # the roc_auc scorer of a pipeline ranks by its decision_function; one call for
        # many matrices: on a few thousand rows its cost is its loop over the trees
        stacked = np.concatenate(matrices)
        with threads_for_call(stacked.shape[0]):
            values = classifier.decision_function(stacked)
        return [_roc_auc(positive, v) for v in np.split(values, len(matrices))]

    (baseline,) = scores([Xt])
    # the same seed for every column, drawn as permutation_importance draws it
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max + 1)
    permuted = np.full((len(blocks), n_repeats), baseline)  # a dropped column changes nothing
    per_batch = max(1, BATCH_ROWS // Xt.shape[0])
    batch: list[np.ndarray] = []
    cells: list[tuple[int, int]] = []  # (column, repeat) of each matrix in the batch

    def flush() -> None:
        permuted[tuple(zip(*cells, strict=True))] = scores(batch)
        batch.clear()
        cells.clear()

    for j, block in enumerate(blocks):
        if not block.size:
            continue
        rng = check_random_state(seed)
        order = np.arange(Xt.shape[0])
        work = Xt.copy()
        for r in range(n_repeats):
            rng.shuffle(order)  # each repeat shuffles the previous one's rows, as sklearn's
            work[:, block] = work[np.ix_(order, block)]
            batch.append(work.copy())
            cells.append((j, r))
            if len(batch) == per_batch:
                flush()
    if batch:
        flush()
    importances = baseline - permuted
    return Bunch(
        importances_mean=importances.mean(axis=1),
        importances_std=importances.std(axis=1),
        importances=importances,
    )
