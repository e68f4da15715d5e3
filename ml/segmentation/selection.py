"""Choosing the production segmentation: candidates judged out of time, a rule, a refit.

:func:`fit_candidates` fits every candidate (:mod:`ml.segmentation.candidates`) on the
features as of the evaluation cut-off, judges it on the horizon that followed, picks
one by :class:`SelectionRule` and refits that configuration on the current
customers. Without a complete horizon to judge by, production is the log-RFM
K-Means baseline and the reason says so.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.clustering import K_SCORE_COLUMNS, shared_strata
from ml.features import DEFAULT_FEATURE_GROUPS
from ml.segmentation.candidates import (
    DENSITY,
    RFM_FEATURES,
    bootstrap_stability,
    candidate_grid,
)
from ml.segmentation.judging import (
    ari_vs_truth,
    judge_all,
    truth_codes,
    why_not_judged,
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

    1. Business constraints: ``min_segments``..``max_segments`` segments, none above
       ``max_segment_share`` or below ``min_segment_share`` of the customers, and a
       density method's raw noise (moved to the nearest segment) at most
       ``max_noise_share``.
    2. The bar: next-horizon churn η² and revenue η² each at least those of both
       baselines, the RFM grid and log-RFM K-Means (k=5).
    3. Among candidates meeting 1 and 2, the score (mean of the two η²) decides: the
       simplest candidate (fewest segments, then ``preference`` order, then log-RFM
       before the other features) within ``score_tolerance`` (relative) of the best
       score, provided its bootstrap stability is at least ``min_stability``;
       stability is computed in that order until a candidate passes (each bootstrap
       stops once its verdict is clear: :func:`~ml.segmentation.bootstrap_stability`).
    4. If none passes, the log-RFM K-Means baseline is production (or, if it breaks a
       constraint, the best-scoring candidate that meets them), and the reason says so.
    """

    min_segments: int = 4
    max_segments: int = 8
    max_segment_share: float = 0.45
    min_segment_share: float = 0.01
    max_noise_share: float = 0.10
    min_stability: float = 0.75
    score_tolerance: float = 0.05
    preference: tuple[str, ...] = tuple(ALGORITHMS)

    def describe(self) -> str:
        """The rule in one paragraph (for metadata and the UI)."""
        return (
            f"judged on the horizon after the evaluation cut-off: {self.min_segments}-"
            f"{self.max_segments} segments, none above {self.max_segment_share:g} or below "
            f"{self.min_segment_share:g} of customers, density noise <= "
            f"{self.max_noise_share:g} (moved to the nearest segment); next-horizon churn and "
            "revenue eta squared at least those of the RFM grid and of log-RFM K-Means k=5; "
            f"then the simplest candidate within {self.score_tolerance:.0%} of the best mean "
            f"eta squared whose bootstrap stability is >= {self.min_stability:g}; otherwise "
            "the log-RFM K-Means baseline"
        )

    def broken(self, row: Mapping[str, Any]) -> list[str]:
        """The business constraints ``row`` breaks, in words."""
        why = []
        if not self.min_segments <= row["n_segments"] <= self.max_segments:
            why.append(
                f"{row['n_segments']} segments (allowed {self.min_segments}-{self.max_segments})"
            )
        if row["max_segment_share"] > self.max_segment_share:
            why.append(f"largest segment {row['max_segment_share']:.0%} of customers")
        if row["min_segment_share"] < self.min_segment_share:
            why.append(f"a segment below {self.min_segment_share:g} of customers")
        if row["noise_share"] > self.max_noise_share:
            why.append(f"noise share {row['noise_share']:.3f} > {self.max_noise_share:g}")
        return why


CANDIDATE_COLUMNS = [
    "candidate",
    "algorithm",
    "feature_set",
    "params",
    "k",
    "n_segments",
    "eta2_churn",
    "eta2_revenue",
    "score",
    "max_segment_share",
    "min_segment_share",
    "noise_share",
    "stability",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
    "fit_seconds",
    "ari_vs_ground_truth",
    "is_baseline",
    "eligible",
    "chosen",
    "note",
]


@dataclass
class SegmentationResult:
    """Everything :func:`fit_candidates` produces.

    ``candidates`` has one row per candidate (:data:`CANDIDATE_COLUMNS`), figures at
    the evaluation cut-off; ``backtest`` is the chosen configuration's segment of each
    cut-off customer (``customer_id``, ``cluster_id``), from which its η² can be
    recomputed; ``elbow`` the K-Means rows of the chosen feature set.
    """

    model: CustomerSegmenter
    chosen: str
    algorithm: str
    reason: str
    candidates: pd.DataFrame
    assignments: pd.DataFrame
    profile: pd.DataFrame
    elbow: pd.DataFrame
    backtest: pd.DataFrame
    cutoff: dt.date | None
    rule: SelectionRule
    preprocess_seconds: float


@shared_strata()  # every candidate samples the same features
def fit_candidates(
    features_df: pd.DataFrame,
    *,
    judge_frame: pd.DataFrame | None = None,
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
    """Judge every candidate out of time, choose by ``rule``, refit the choice on today.

    Parameters
    ----------
    features_df : DataFrame
        Today's ``features.customer_features``: the production model is fitted here.
    judge_frame : DataFrame, default=None
        The evaluation cut-off's ``customer_features`` with its outcome columns
        ``churned`` and ``spend_in_horizon`` (complete horizons only). ``None`` or
        fewer than 100 customers: nothing is judged and production is the baseline.
    algorithms, params
        Candidate algorithms (:data:`ALGORITHMS`) and extra parameters per algorithm.
    production : str, default="auto"
        ``"auto"`` = the rule; an algorithm name = the best candidate of that algorithm.
    features, feature_groups, log_features
        The second feature set besides log-RFM (as in :class:`CustomerSegmenter`).
    eval_size, n_resamples, resample_size
        Cap on the rows of the diagnostics sample (every customer up to 5,000, then a
        quarter of them, at most ``eval_size``: :func:`~ml.clustering.proportional_size`),
        bootstrap resamples and their size.
    ground_truth : Series, default=None
        Known segment per customer id, for the ``ari_vs_ground_truth`` column only.
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
    sets = {
        "rfm": list(RFM_FEATURES),
        "behavioural" if features is None else "configured": features,
    }
    segmenter_args = {"feature_groups": feature_groups, "log_features": log_features}
    # log-RFM is plain standardised logs, as the baseline is defined (no winsorising).
    set_args = {name: {"winsorize": name != "rfm"} for name in sets}
    grid = candidate_grid(algorithms, list(sets), (rule.min_segments, rule.max_segments), params)

    t0 = time.perf_counter()
    why_not = why_not_judged(judge_frame)
    if why_not:
        chosen = next(c for c in grid if c.baseline)
        table = pd.DataFrame([{"candidate": chosen.name, "algorithm": chosen.algorithm,
                               "feature_set": chosen.feature_set, "k": chosen.params["n_clusters"],
                               "is_baseline": True, "eligible": False, "note": why_not}])  # fmt: skip
        reason, backtest, elbow = (
            f"not judged ({why_not}): the log-RFM K-Means baseline",
            None,
            None,
        )
        cutoff = None
    else:
        table, judged, cutoff = judge_all(
            grid,
            sets,
            set_args,
            segmenter_args,
            judge_frame,
            eval_size,
            random_state,
            ground_truth,
        )

        def stability(name: str) -> float:
            j = judged[name]
            return bootstrap_stability(
                j["judged"].clusterer,
                j["Xt"],
                j["eval_idx"],
                n_resamples,
                resample_size,
                random_state,
                threshold=rule.min_stability,
            )

        chosen_name, reason = _choose(table, rule, production, stability)
        chosen = next(c for c in grid if c.name == chosen_name)
        elbow = elbow_of(table, chosen.feature_set)
        backtest = pd.DataFrame(
            {ID_COLUMN: judge_frame[ID_COLUMN].to_numpy(),
             "cluster_id": judged[chosen_name]["judged"].labels.astype(np.int32)}
        )  # fmt: skip
    preprocess_seconds = time.perf_counter() - t0

    settings = {"random_state": random_state, **chosen.params}
    model = CustomerSegmenter(
        make_clusterer(chosen.algorithm, **settings),
        features=sets[chosen.feature_set],
        assign_noise=chosen.algorithm in DENSITY,
        **set_args[chosen.feature_set],
        **segmenter_args,
    ).fit(features_df)
    table["chosen"] = table["candidate"] == chosen.name
    table.loc[table["chosen"], "ari_vs_ground_truth"] = ari_vs_truth(
        truth_codes(features_df[ID_COLUMN], ground_truth), model.labels_
    )
    table = table.reindex(columns=CANDIDATE_COLUMNS)
    table["eligible"] = table["eligible"].fillna(False).astype(bool)
    table["is_baseline"] = table["is_baseline"].fillna(False).astype(bool)
    table["note"] = table["note"].fillna("")
    model.selection_reason_ = reason
    model.candidates_ = table
    return SegmentationResult(
        model=model,
        chosen=chosen.name,
        algorithm=chosen.algorithm,
        reason=reason,
        candidates=table,
        assignments=_assignments(features_df[ID_COLUMN], model.labels_, model.segment_names_),
        profile=model.profile_.copy(),
        elbow=pd.DataFrame(columns=K_SCORE_COLUMNS) if elbow is None else elbow,
        backtest=pd.DataFrame(columns=[ID_COLUMN, "cluster_id"]) if backtest is None else backtest,
        cutoff=cutoff,
        rule=rule,
        preprocess_seconds=preprocess_seconds,
    )


def _choose(table: pd.DataFrame, rule: SelectionRule, production: str, stability) -> tuple:
    """The chosen candidate's name and the reason; fills eligible, stability and note."""
    baselines = table[table["is_baseline"]]
    bar = baselines[["eta2_churn", "eta2_revenue"]].max()
    order = {a: i for i, a in enumerate(rule.preference)}
    table["stability"] = np.nan
    notes = {}
    for i, r in table.iterrows():
        why = rule.broken(r)
        if r["algorithm"] == "rfm_grid":
            why = ["a yardstick: the RFM grid's cells are published as rfm_segment", *why]
        elif r["eta2_churn"] < bar["eta2_churn"] or r["eta2_revenue"] < bar["eta2_revenue"]:
            why.append(
                f"below the baselines' eta squared (churn {r['eta2_churn']:.3f} vs "
                f"{bar['eta2_churn']:.3f}, revenue {r['eta2_revenue']:.3f} vs "
                f"{bar['eta2_revenue']:.3f})"
            )
        notes[i] = why
    if production != "auto":
        pool = table[table["algorithm"] == production]
        pool = pool.assign(_ok=[not notes[i] for i in pool.index]).sort_values(
            ["_ok", "score"], ascending=False
        )
        pick = pool.index[0]
        table.loc[pick, "stability"] = stability(table.loc[pick, "candidate"])
        return _finish(table, notes, pick, f"configured: production={production!r}")
    ok = table[[not notes[i] for i in table.index]]
    best = ok["score"].max() if len(ok) else np.nan
    ranked = ok.assign(
        _near=ok["score"] >= (1 - rule.score_tolerance) * best,
        _pref=ok["algorithm"].map(order).fillna(len(order)),
        _rfm=ok["feature_set"] != "rfm",
    ).sort_values(["_near", "n_segments", "_pref", "_rfm", "score"],
                  ascending=[False, True, True, True, False])  # fmt: skip
    for i, r in ranked.iterrows():
        table.loc[i, "stability"] = s = stability(r["candidate"])
        if s >= rule.min_stability:
            near = "within" if r["_near"] else "outside"
            return _finish(table, notes, i, (
                f"rule: {len(ok)} candidates meet the constraints and the baselines' bar; "
                f"{r['candidate']} is the simplest {near} {rule.score_tolerance:.0%} of the best "
                f"mean eta squared {best:.3f} (its own {r['score']:.3f}: churn "
                f"{r['eta2_churn']:.3f}, revenue {r['eta2_revenue']:.3f}; stability {s:.2f})"
            ))  # fmt: skip
        notes[i] = [f"stability {s:.2f} < {rule.min_stability:g}"]
    base = table.index[table["is_baseline"] & (table["algorithm"] != "rfm_grid")][0]
    broken = rule.broken(table.loc[base])
    if broken:
        usable = table[[not rule.broken(r) and r["algorithm"] != "rfm_grid"
                        for _, r in table.iterrows()]]  # fmt: skip
        if len(usable):
            pick = usable["score"].idxmax()
            return _finish(table, notes, pick, (
                "rule: no candidate beat the baselines; the log-RFM K-Means baseline breaks "
                f"a constraint ({'; '.join(broken)}), so the best-scoring candidate meeting "
                f"them is production ({table.loc[pick, 'candidate']})"
            ))  # fmt: skip
    if np.isnan(table.loc[base, "stability"]):
        table.loc[base, "stability"] = stability(table.loc[base, "candidate"])
    return _finish(table, notes, base, (
        "rule: no candidate separated next-horizon churn and revenue better than the "
        "baselines with enough stability; production is the log-RFM K-Means baseline"
        + (f" although it breaks: {'; '.join(broken)}" if broken else "")
    ))  # fmt: skip


def _finish(table: pd.DataFrame, notes: dict, pick, reason: str) -> tuple[str, str]:
    for i in table.index:
        if i != pick and not notes[i] and np.isnan(table.loc[i, "stability"]):
            notes[i] = ["stability not computed: not needed for the choice"]
    table["note"] = ["; ".join(notes[i]) for i in table.index]
    table["eligible"] = [not notes[i] or i == pick for i in table.index]
    return table.loc[pick, "candidate"], reason


def elbow_of(table: pd.DataFrame, feature_set: str) -> pd.DataFrame:
    """The K-Means rows of ``feature_set`` as the elbow table (``K_SCORE_COLUMNS``)."""
    rows = table[(table["algorithm"] == "kmeans") & (table["feature_set"] == feature_set)]
    rows = rows.drop_duplicates("k").sort_values("k")
    return rows.reindex(columns=K_SCORE_COLUMNS).reset_index(drop=True)
