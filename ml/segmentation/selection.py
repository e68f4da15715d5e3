"""Comparing candidate segmentations and choosing the production one."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from ml.clustering import (
    cluster_scores,
    stratified_sample,
)
from ml.features import (
    DEFAULT_FEATURE_GROUPS,
)
from ml.segmentation.segmenter import (
    ALGORITHMS,
    ID_COLUMN,
    CustomerSegmenter,
    _assignments,
    _check_frame,
    make_clusterer,
)


@dataclass(frozen=True)
class SelectionRule:
    """How the production segmentation is chosen among the candidates.

    1. A candidate is *eligible* if it has at least 2 segments besides noise,
       a noise share <= ``max_noise_share``, bootstrap stability >=
       ``min_stability`` and every non-noise segment holds at least
       ``min_segment_share`` of the customers.
    2. Among eligible candidates the best silhouette (on the evaluation
       sample, noise counted as a group) sets the bar; the first candidate in
       ``preference`` order whose silhouette is within
       ``silhouette_tolerance`` of it is chosen, so a simpler model wins
       unless a more complex one is clearly better separated.
    3. If no candidate is eligible, the most stable one with at least 2
       segments is chosen (ties: ``preference`` order), and the reason says so.
    """

    min_stability: float = 0.75
    max_noise_share: float = 0.10
    min_segment_share: float = 0.01
    silhouette_tolerance: float = 0.02
    preference: tuple[str, ...] = tuple(ALGORITHMS)

    def describe(self) -> str:
        """The rule in one paragraph (for metadata and the UI)."""
        return (
            f"eligible: >= 2 segments besides noise, noise share <= {self.max_noise_share:g}, "
            f"bootstrap stability (mean ARI) >= {self.min_stability:g}, every segment >= "
            f"{self.min_segment_share:g} of customers; choose the first of "
            f"{list(self.preference)} whose silhouette is within "
            f"{self.silhouette_tolerance:g} of the best eligible silhouette; if none is "
            "eligible, the most stable candidate with >= 2 segments"
        )


CANDIDATE_COLUMNS = [
    "algorithm",
    "params",
    "k",
    "n_segments",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "noise_share",
    "min_segment_share",
    "stability",
    "fit_seconds",
    "ari_vs_ground_truth",
    "eligible",
    "chosen",
    "note",
]


@dataclass
class SegmentationResult:
    """Everything :func:`fit_candidates` produces.

    Attributes
    ----------
    model : CustomerSegmenter
        The production segmentation.
    chosen : str
        Its algorithm.
    reason : str
        Why it was chosen (rule outcome or "configured").
    candidates : DataFrame
        One row per candidate, columns :data:`CANDIDATE_COLUMNS`.
    assignments : DataFrame
        ``customer_id, cluster_id, cluster_label`` of the production model.
    profile : DataFrame
        Its segment profiles.
    elbow : DataFrame
        K-means per-k scores (``k``, ``inertia``, metrics) for display.
    models : dict
        Fitted :class:`CustomerSegmenter` of every candidate.
    rule : SelectionRule
        The rule applied.
    preprocess_seconds : float
        Time to fit the shared feature preparation.
    """

    model: CustomerSegmenter
    chosen: str
    reason: str
    candidates: pd.DataFrame
    assignments: pd.DataFrame
    profile: pd.DataFrame
    elbow: pd.DataFrame
    models: dict[str, CustomerSegmenter] = field(repr=False)
    rule: SelectionRule
    preprocess_seconds: float


def _bootstrap_stability(
    clusterer, Xt: np.ndarray, eval_idx: np.ndarray, n_resamples: int, size: int, rng
) -> float:
    """Mean ARI between the fitted labels on ``eval_idx`` and refits on bootstrap resamples.

    Each refit uses the fitted hyper-parameters (``fixed_params_``: k, eps,
    ...) so it measures the algorithm's sensitivity to the data, not to its
    own parameter search. A resample is ``size`` rows drawn with replacement.
    """
    if n_resamples < 1:
        return np.nan
    fixed = clone(clusterer).set_params(**clusterer.fixed_params_)
    if "compute_scores" in fixed.get_params():
        fixed.set_params(compute_scores=False)  # only the model is needed
    reference = clusterer.labels_[eval_idx]
    E = Xt[eval_idx]
    aris = []
    for _ in range(n_resamples):
        rows = rng.randint(0, Xt.shape[0], min(size, Xt.shape[0]))
        fixed.set_params(random_state=int(rng.randint(np.iinfo(np.int32).max)))
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")  # degenerate resamples are allowed to be bad
            refit = fixed.fit(Xt[rows])
            aris.append(adjusted_rand_score(reference, refit.predict(E)))
    return float(np.mean(aris))


def _choose(table: pd.DataFrame, rule: SelectionRule) -> tuple[str, str]:
    order = {a: i for i, a in enumerate(rule.preference)}
    table = table.assign(_pref=table["algorithm"].map(order).fillna(len(order)))
    table = table.sort_values(["_pref", "algorithm"])
    eligible = table[table["eligible"]]
    if not eligible.empty:
        best = eligible["silhouette"].max()
        winner = eligible[eligible["silhouette"] >= best - rule.silhouette_tolerance].iloc[0]
        top = eligible.loc[eligible["silhouette"].idxmax(), "algorithm"]
        return winner["algorithm"], (
            f"rule: {len(eligible)} eligible; best silhouette {best:.3f} ({top}); "
            f"{winner['algorithm']} is the first in preference order within "
            f"{rule.silhouette_tolerance:g} (silhouette {winner['silhouette']:.3f})"
        )
    usable = table[table["k"] >= 2]
    if usable.empty:
        usable = table
    winner = usable.sort_values(["stability", "_pref"], ascending=[False, True]).iloc[0]
    return winner["algorithm"], (
        f"rule: no candidate eligible; {winner['algorithm']} is the most stable "
        f"(stability {winner['stability']:.3f})"
    )


def fit_candidates(
    features_df: pd.DataFrame,
    *,
    algorithms: Sequence[str] = tuple(ALGORITHMS),
    production: str = "auto",
    params: Mapping[str, Mapping[str, Any]] | None = None,
    features: Sequence[str] | None = None,
    feature_groups: Sequence[str] = DEFAULT_FEATURE_GROUPS,
    log_features: Sequence[str] | None = None,
    eval_size: int = 10_000,
    n_resamples: int = 5,
    resample_size: int = 10_000,
    rule: SelectionRule | None = None,
    random_state: int = 0,
    ground_truth: pd.Series | None = None,
) -> SegmentationResult:
    """Fit every candidate algorithm, compare them and choose the production one.

    The feature preparation is fitted once and shared. For each candidate the
    table records its parameters (after its own search: k, eps, ...), the
    number of segments, silhouette, Calinski-Harabasz and Davies-Bouldin on
    one stratified evaluation sample of ``eval_size`` customers (the same for
    all candidates; noise counted as a group), the noise share, the smallest
    segment share, bootstrap stability (mean ARI on the evaluation sample
    between the fitted labels and refits with the same parameters on
    ``n_resamples`` bootstrap resamples of ``resample_size`` customers) and
    the fit time (clustering and assigning every customer).

    Parameters
    ----------
    features_df : DataFrame
        ``features.customer_features`` (needs ``customer_id``).
    algorithms : sequence of str, default=all of :data:`ALGORITHMS`
        Candidates to fit.
    production : str, default="auto"
        ``"auto"`` = choose by ``rule``; an algorithm name = use that one
        (it must be among ``algorithms``).
    params : mapping, default=None
        Extra clusterer parameters per algorithm, e.g.
        ``{"kmeans": {"k_range": (3, 10)}, "ward": {"sample_size": 8000}}``.
    features, feature_groups, log_features
        Feature selection, as in :class:`CustomerSegmenter`.
    eval_size : int, default=10000
        Rows of the evaluation sample.
    n_resamples : int, default=5
        Bootstrap resamples for the stability column.
    resample_size : int, default=10000
        Rows per bootstrap resample.
    rule : SelectionRule, default=None
        ``None`` = ``SelectionRule()``.
    random_state : int, default=0
        Seed of the clusterers, the evaluation sample and the resamples.
    ground_truth : Series, default=None
        Known segment of each customer (index = ``customer_id``), for
        evaluation only: the ``ari_vs_ground_truth`` column is the adjusted
        Rand index of each candidate's assignment of every customer present in
        both (NaN without it). It never influences the choice.

    Returns
    -------
    result : SegmentationResult
    """
    _check_frame(features_df)
    rule = SelectionRule() if rule is None else rule
    algorithms = list(algorithms)
    if not algorithms:
        raise ValueError("algorithms must name at least one candidate")
    for a in algorithms:
        make_clusterer(a)  # validates the name
    if production != "auto" and production not in algorithms:
        raise ValueError(f"production={production!r} is not among the candidates {algorithms}")
    params = dict(params or {})

    t0 = time.perf_counter()
    base = CustomerSegmenter(
        features=features, feature_groups=feature_groups, log_features=log_features
    )
    Xt = base._fit_preprocessor(features_df)
    value = base._value
    preprocess_seconds = time.perf_counter() - t0

    rng = check_random_state(random_state)
    eval_idx = stratified_sample(Xt, eval_size, rng)
    rows, models, eval_labels = [], {}, []
    for a in algorithms:
        settings = {"random_state": random_state, **params.get(a, {})}
        clusterer = make_clusterer(a, **settings)
        start = time.perf_counter()
        clusterer.fit(Xt)
        fit_seconds = time.perf_counter() - start
        # the candidate shares the fitted preparation: copy it, then finish with its clusterer
        model = clone(base).set_params(clusterer=make_clusterer(a, **settings))
        shared = ["features_", "categorical_features_", "log_features_", "preprocessor_"]
        shared += ["_fitted_on_frame", "n_features_in_", "feature_names_in_"]
        for attr in shared:
            if hasattr(base, attr):
                setattr(model, attr, getattr(base, attr))
        model._value = value
        model._finish(features_df, clusterer)
        models[a] = model
        eval_labels.append(clusterer.labels_[eval_idx])
        sizes = np.bincount(model.labels_, minlength=model.n_clusters_)
        if model.noise_cluster_ is not None:
            sizes = np.delete(sizes, model.noise_cluster_)
        rows.append(
            {
                "algorithm": a,
                "params": json.dumps(
                    {k: _jsonable(v) for k, v in clusterer.fixed_params_.items()}, sort_keys=True
                ),
                "k": int(clusterer.n_clusters_),
                "n_segments": int(model.n_clusters_),
                "noise_share": float(clusterer.noise_share_),
                "min_segment_share": float(sizes.min() / len(Xt)) if sizes.size else 0.0,
                "stability": _bootstrap_stability(
                    clusterer, Xt, eval_idx, n_resamples, resample_size, rng
                ),
                "fit_seconds": fit_seconds,
            }
        )
    with threadpool_limits(limits=1):  # see ml.clustering: small work, shared cores
        eval_scores = cluster_scores(Xt[eval_idx], eval_labels)
    for row, scores in zip(rows, eval_scores, strict=True):
        row.update(scores)
    table = pd.DataFrame(rows)
    table["ari_vs_ground_truth"] = [
        _ari_vs_truth(features_df[ID_COLUMN], models[a].labels_, ground_truth) for a in algorithms
    ]
    notes = []
    for _, r in table.iterrows():
        why = []
        if r["k"] < 2:
            why.append("fewer than 2 segments")
        if r["noise_share"] > rule.max_noise_share:
            why.append(f"noise share {r['noise_share']:.3f} > {rule.max_noise_share:g}")
        if not r["stability"] >= rule.min_stability:
            why.append(f"stability {r['stability']:.3f} < {rule.min_stability:g}")
        if r["min_segment_share"] < rule.min_segment_share:
            why.append(f"a segment below {rule.min_segment_share:g} of customers")
        notes.append("; ".join(why))
    table["note"] = notes
    table["eligible"] = table["note"] == ""
    if production == "auto":
        chosen, reason = _choose(table, rule)
    else:
        chosen, reason = production, f"configured: production={production!r}"
    table["chosen"] = table["algorithm"] == chosen
    table = table[CANDIDATE_COLUMNS]
    model = models[chosen]
    model.selection_reason_ = reason
    model.candidates_ = table
    elbow = models["kmeans"].k_scores_ if "kmeans" in models else pd.DataFrame()
    return SegmentationResult(
        model=model,
        chosen=chosen,
        reason=reason,
        candidates=table,
        assignments=_assignments(features_df[ID_COLUMN], model.labels_, model.segment_names_),
        profile=model.profile_.copy(),
        elbow=elbow,
        models=models,
        rule=rule,
        preprocess_seconds=preprocess_seconds,
    )


def _ari_vs_truth(ids: pd.Series, labels: np.ndarray, truth: pd.Series | None) -> float:
    if truth is None:
        return np.nan
    truth = truth.copy()
    truth.index = truth.index.astype(str)
    if truth.index.duplicated().any():
        raise ValueError("ground_truth has duplicate customer ids")
    known = truth.reindex(ids.astype(str).to_numpy())
    mask = known.notna().to_numpy()
    if not mask.any():
        return np.nan
    return float(adjusted_rand_score(known.to_numpy()[mask], labels[mask]))


def _jsonable(v: Any) -> Any:
    """``v`` as a JSON value (numpy scalars unwrapped, estimators and the like as text)."""
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if v is None or isinstance(v, str | int | float | bool):
        return v
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return repr(v)
