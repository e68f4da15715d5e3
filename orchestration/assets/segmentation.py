"""Segmentation assets: refit (choose among the candidates) and score (assign with the saved model).

``segmentation_model`` is the explicit refit: it fits every candidate on the
features as of the evaluation cut-off (built by ``churn_training_features``),
judges each by how well its segments separate what those customers did in the
horizon that followed, chooses by the documented rule
(``ml.segmentation.SelectionRule``), refits the choice on today's customers and
saves it under ``WORKDIR/models/``.
``customer_clusters`` never refits: it loads the latest saved model and
assigns every current customer to its segments, so the daily scoring job can
leave the model alone (job ``scoring_pipeline``).
"""

import datetime as dt

import dagster as dg
import pandas as pd

from ml.naming import profile_segments
from ml.segmentation import (
    SelectionRule,
    fit_candidates,
    load_model,
    save_model,
    score_customers,
    segment_migration,
)
from ml.segmentation.evidence import segmentation_evidence
from ml.threads import native_threads
from orchestration.assets.common import (
    EVIDENCE_CASTS,
    FEATURES,
    evidence_markdown,
    evidence_spec,
    evidence_table,
    markdown,
    ml_table_spec,
    read_features,
    read_judge_frame,
)
from orchestration.executor import OVERLAP
from orchestration.io.tables import replace_tables, table_exists
from orchestration.resources import WarehouseResource

MODEL_DIR = "segmentation"


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "segmentation_model",
            deps=[FEATURES, "churn_training_features"],
            group_name="ml",
            kinds={"scikitlearn"},
            tags={"refit": "true"},
            description="Refit: fits K-Means and Ward at 4-8 segments, HDBSCAN and DBSCAN (as "
            "configured) on log-RFM and on the behavioural features as of the evaluation "
            "cut-off, judges each by the share of next-horizon churn and revenue variance its "
            "segments explain (eta squared) next to the RFM grid and log-RFM K-Means k=5, writes "
            "ml.segmentation_candidates, ml.segmentation_k_scores (the K-Means elbow) and "
            "ml.segmentation_backtest (the chosen configuration's cut-off segments), then "
            "refits the choice on today's customers and saves it under "
            "WORKDIR/models/segmentation/<version>/.",
        ),
        evidence_spec(
            "segmentation_evidence",
            [FEATURES, "churn_training_features"],
            "how far to trust the segmentation: each candidate's out-of-time figures (eta "
            "squared of next-horizon churn and revenue, stability, segment shares; production "
            "= the chosen one, baselines = the RFM grid and log-RFM K-Means k=5).",
        ),
    ],
    can_subset=False,
    op_tags=OVERLAP,
)
def segmentation_model(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    cfg = warehouse.project_config().segmentation
    features = read_features(warehouse)
    if features.empty:
        raise ValueError("features.customer_features is empty: nothing to segment")
    truth = warehouse.ground_truth()
    gt_cfg = warehouse.project_config().ground_truth
    truth_labels = (
        truth[gt_cfg.segment_column] if truth is not None and gt_cfg.segment_column else None
    )
    context.log.info(
        f"Fitting {', '.join(cfg.algorithms)} on {len(features):,} customers "
        f"(evaluation sample {cfg.eval_size:,}, {cfg.n_resamples} bootstrap resamples)"
    )
    rule = SelectionRule(
        min_segments=cfg.min_segments,
        max_segments=cfg.max_segments,
        max_segment_share=cfg.max_segment_share,
        min_stability=cfg.min_stability,
        max_noise_share=cfg.max_noise_share,
        min_segment_share=cfg.min_segment_share,
    )
    judge_frame = read_judge_frame(warehouse)
    horizon = warehouse.run_context().churn_horizon_days
    with native_threads(len(features)):
        result = fit_candidates(
            features,
            judge_frame=judge_frame,
            algorithms=cfg.algorithms,
            production=cfg.production,
            params=cfg.params,
            features=cfg.features,
            feature_groups=cfg.feature_groups,
            eval_size=cfg.eval_size,
            n_resamples=cfg.n_resamples,
            resample_size=cfg.resample_size,
            rule=rule,
            random_state=cfg.random_state,
            ground_truth=truth_labels,
        )
    path = save_model(
        result.model,
        warehouse.models_dir / MODEL_DIR,
        features_df=features,
        extra={
            "selection_reason": result.reason,
            "selection_rule": rule.describe(),
            "dagster_run_id": context.run_id,
            "candidates": result.candidates.to_dict(orient="records"),
        },
    )
    version = path.name
    fitted_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    candidates = result.candidates.assign(model_version=version, fitted_at=fitted_at)
    elbow = result.elbow.assign(model_version=version)
    backtest = result.backtest.assign(cutoff_date=result.cutoff, model_version=version)
    evidence = evidence_table(segmentation_evidence(result, horizon), context.run_id)
    with warehouse.connect() as con:
        replace_tables(
            con,
            {
                "ml.segmentation_candidates": candidates,
                "ml.segmentation_k_scores": elbow,
                "ml.segmentation_backtest": backtest,
                "ml.segmentation_evidence": evidence,
            },
            casts={
                "ml.segmentation_candidates": {
                    "k": "INTEGER",
                    "n_segments": "INTEGER",
                    "fitted_at": "TIMESTAMP",
                },
                "ml.segmentation_k_scores": {"k": "INTEGER"} if "k" in elbow else {},
                "ml.segmentation_backtest": {"cluster_id": "INTEGER", "cutoff_date": "DATE"},
                "ml.segmentation_evidence": EVIDENCE_CASTS,
            },
        )
    chosen = candidates[candidates["chosen"]].iloc[0]
    shown = candidates.drop(columns=["model_version", "fitted_at", "params"])
    context.log.info(f"Production segmentation: {result.chosen} ({result.reason})")
    if result.cutoff is None:
        context.log.warning(f"Segmentation not judged out of time: {result.reason}")
    baselines = candidates[candidates["is_baseline"]].set_index("candidate")
    yield dg.MaterializeResult(
        asset_key="segmentation_model",
        metadata={
            "chosen_candidate": result.chosen,
            "chosen_algorithm": result.algorithm,
            "selection_reason": result.reason,
            "selection_rule": rule.describe(),
            "evaluation_cutoff": str(result.cutoff) if result.cutoff else "not judged",
            "n_segments": int(result.model.n_clusters_),
            "eta2_churn": _float(chosen["eta2_churn"]),
            "eta2_revenue": _float(chosen["eta2_revenue"]),
            "baselines_eta2": dg.MetadataValue.json(
                {
                    name: {"churn": _float(r.eta2_churn), "revenue": _float(r.eta2_revenue)}
                    for name, r in baselines.iterrows()
                }
            ),
            "stability": _float(chosen["stability"]),
            "ari_vs_ground_truth": _float(chosen["ari_vs_ground_truth"]),
            "candidates": markdown(shown),
            "evidence": evidence_markdown(evidence),
            "kmeans_elbow": markdown(result.elbow) if not result.elbow.empty else "",
            "segments": markdown(result.profile[["cluster_id", "cluster_label", "size", "share"]]),
            "model_version": version,
            "model_path": dg.MetadataValue.path(str(path)),
            "dagster/row_count": len(features),
        },
    )
    yield dg.MaterializeResult(
        asset_key="segmentation_evidence",
        metadata={"dagster/row_count": len(evidence), "evidence": evidence_markdown(evidence)},
    )


@dg.multi_asset(
    specs=[
        ml_table_spec(
            "customer_clusters",
            "segmentation_model",
            "one row per customer with the segment the saved production model assigns "
            "(no refit), its business name and whether it is the noise group of a density method.",
        ),
        ml_table_spec(
            "segment_profiles",
            "segmentation_model",
            "one row per segment: size, share of customers, revenue share, mean and median of "
            "each profiled feature.",
        ),
        ml_table_spec(
            "segment_migration",
            "segmentation_model",
            "customers moved from each segment to each other segment since the previous "
            "scoring (empty on the first one).",
        ),
    ],
    can_subset=False,
    op_tags=OVERLAP,
)
def customer_clusters(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    store = warehouse.models_dir / MODEL_DIR
    try:
        model, meta = load_model(store)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{exc}. Materialise `segmentation_model` first (job `refit_models` or "
            "`full_pipeline`); the scoring job only assigns customers to a saved model."
        ) from exc
    features = read_features(warehouse)
    missing = [c for c in meta["features"] if c not in features.columns]
    if missing:
        raise ValueError(
            f"the saved segmentation model {meta['version']} needs feature column(s) {missing} "
            "that features.customer_features no longer has: refit (job `refit_models`)"
        )
    context.log.info(
        f"Scoring {len(features):,} customers with segmentation model {meta['version']} "
        f"({meta['algorithm']}, {meta['n_segments']} segments)"
    )
    with native_threads(len(features)):
        assignments = score_customers(model, features)
    names = dict(enumerate(model.segment_names_))
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assignments["is_noise"] = assignments["cluster_id"] == (
        -1 if model.noise_cluster_ is None else model.noise_cluster_
    )
    assignments["model_version"] = meta["version"]
    assignments["scored_at"] = scored_at
    profile_features = [c[len("mean_") :] for c in model.profile_.columns if c.startswith("mean_")]
    profiles = profile_segments(
        features,
        assignments["cluster_id"].to_numpy(),
        features=profile_features,
        names=names,
        noise=model.noise_cluster_,
        value_column=model.value_column if isinstance(model.value_column, str) else "",
    ).assign(model_version=meta["version"], scored_at=scored_at)

    with warehouse.connect() as con:
        previous = (
            con.execute("select * from ml.customer_clusters").df()
            if table_exists(con, "ml.customer_clusters")
            else None
        )
        migration = _migration(previous, assignments, scored_at, meta["version"])
        replace_tables(
            con,
            {
                "ml.customer_clusters": assignments,
                "ml.segment_profiles": profiles,
                "ml.segment_migration": migration,
            },
            casts={
                "ml.customer_clusters": {"cluster_id": "INTEGER", "scored_at": "TIMESTAMP"},
                "ml.segment_profiles": {
                    "cluster_id": "INTEGER",
                    "size": "BIGINT",
                    "scored_at": "TIMESTAMP",
                },
                "ml.segment_migration": {
                    "from_cluster_id": "INTEGER",
                    "to_cluster_id": "INTEGER",
                    "customers": "BIGINT",
                    "from_scored_at": "TIMESTAMP",
                    "to_scored_at": "TIMESTAMP",
                },
            },
        )
    moved = (
        migration.loc[migration["from_label"] != migration["to_label"], "customers"].sum()
        if len(migration)
        else 0
    )
    segments = profiles[["cluster_id", "cluster_label", "size", "share", "revenue_share"]]
    common = {"model_version": meta["version"], "algorithm": meta["algorithm"]}
    yield dg.MaterializeResult(
        asset_key="customer_clusters",
        metadata={
            **common,
            "dagster/row_count": len(assignments),
            "n_segments": int(model.n_clusters_),
            "noise_customers": int(assignments["is_noise"].sum()),
            "segments": markdown(segments),
        },
    )
    yield dg.MaterializeResult(
        asset_key="segment_profiles",
        metadata={
            **common,
            "dagster/row_count": len(profiles),
            "profiles": markdown(profiles.drop(columns=["model_version", "scored_at"])),
        },
    )
    yield dg.MaterializeResult(
        asset_key="segment_migration",
        metadata={
            **common,
            "dagster/row_count": len(migration),
            "customers_changed_segment": int(moved),
            "compared_with_previous": previous is not None,
        },
    )


def _float(value) -> float | None:
    return None if pd.isna(value) else round(float(value), 4)


def _migration(
    previous: pd.DataFrame | None, current: pd.DataFrame, scored_at, version: str
) -> pd.DataFrame:
    """Segment-to-segment counts since the previous scoring (no rows without one)."""
    columns = ["from_model_version", "to_model_version", "from_scored_at", "to_scored_at"]
    if previous is None or previous.empty:
        empty = segment_migration(current.iloc[:0], current.iloc[:0])
        for c in columns:
            empty[c] = pd.Series(dtype="datetime64[us]" if c.endswith("_at") else "str")
        return empty
    out = segment_migration(previous, current)
    out["from_model_version"] = _first(previous, "model_version")
    out["to_model_version"] = version
    out["from_scored_at"] = pd.to_datetime(_first(previous, "scored_at"))
    out["to_scored_at"] = scored_at
    return out


def _first(frame: pd.DataFrame, column: str):
    """The (single) value of a per-run column of the previous table; None if it had none."""
    return frame[column].iloc[0] if column in frame.columns else None
