"""CLV, probability alive and churn assets: thin wrappers over ``ml/scores.py``.

``churn_training_features`` runs the production dbt feature models again as of two
earlier cut-offs (``orchestration/cutoffs.py``): training (as-of minus two horizons)
and evaluation (as-of minus one horizon), each with its outcome in the horizon
after it. ``value_models`` (the refit) fits the value models and the churn model on
them, evaluates out of time next to the BG/NBD baselines and saves the models under
``WORKDIR/models/value/<version>/``. ``customer_scores`` scores every current customer
with the saved models, so the daily job re-scores without refitting.
"""

import datetime as dt
import warnings

import dagster as dg
import numpy as np
import pandas as pd

from ml.churn import churn_evidence, churn_frame, fit_churn
from ml.evidence import value_evidence
from ml.scores import load_value_models, risk_band, save_value_models
from ml.spend import SPEND_RULE
from ml.threads import native_threads
from ml.value import ValueModels, fit_purchase_model, purchase_summary, value_scores
from ml.value_evaluation import CHOICE_RULE, OUTCOMES, choose_value_models
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
from orchestration.assets.refit_records import (
    calibration_svg,
    ground_truth_auc,
    model_runs,
    record_ground_truth,
)
from orchestration.cutoffs import build_features_as_of, cutoff_dates, cutoff_schema_suffix
from orchestration.executor import OVERLAP
from orchestration.io.tables import replace_tables, table_exists
from orchestration.resources import WarehouseResource

CUTOFFS = ("cutoff_train", "cutoff_eval")


def _as_of(warehouse: WarehouseResource) -> dt.date:
    with warehouse.connect(read_only=True) as con:
        (as_of,) = con.execute("select max(as_of_date) from features.customer_features").fetchone()
    if as_of is None:
        raise ValueError("features.customer_features is empty: nothing to score")
    return pd.Timestamp(as_of).date()


@dg.asset(
    key="churn_training_features",
    deps=[FEATURES],
    group_name="features",
    kinds={"dbt", "duckdb"},
    description="The production dbt feature models (tag as_of) run again as of two earlier "
    "cut-offs — as-of minus two churn horizons (training) and minus one (evaluation) — into "
    "features_cutoff_train / features_cutoff_eval, with features.customer_outcomes: purchases "
    "in the horizon after each cut-off (the churn label).",
)
def churn_training_features(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    run = warehouse.run_context()
    horizon = run.churn_horizon_days
    as_of = _as_of(warehouse)
    metadata: dict = {"as_of_date": as_of.isoformat(), "horizon_days": horizon}
    log_dir = warehouse.root / "logs"
    for name, cutoff in zip(CUTOFFS, cutoff_dates(as_of, horizon), strict=True):
        context.log.info(f"dbt: features as of {cutoff} into *_{name}")
        tables = build_features_as_of(
            cutoff,
            name=name,
            dbt_vars=run.dbt_vars(),
            log_path=log_dir / f"dbt_{name}.log",
            horizon_days=horizon,
        )
        with warehouse.connect(read_only=True) as con:
            customers, labelled, churned = con.execute(
                f"select count(*), count(churned), count(*) filter (where churned) "
                f"from {tables.outcomes}"
            ).fetchone()
        metadata[name] = dg.MetadataValue.json(
            {
                "cutoff": cutoff.isoformat(),
                "features": tables.features,
                "outcomes": tables.outcomes,
                "customers": customers,
                "labelled": labelled,
                "churned": churned,
            }
        )
    return dg.MaterializeResult(metadata=metadata)


def _labelled(warehouse: WarehouseResource, name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Features of cut-off ``name`` whose outcome horizon is complete, and the churn labels."""
    schema = f"features{cutoff_schema_suffix(name)}"  # where build_features_as_of wrote
    with warehouse.connect(read_only=True) as con:
        if not table_exists(con, f"{schema}.customer_features"):
            raise FileNotFoundError(
                f"{schema}.customer_features does not exist: materialise "
                "`churn_training_features` first"
            )
        frame = con.execute(
            f"select f.*, o.churned from {schema}.customer_features f "
            f"join {schema}.customer_outcomes o using (customer_id) "
            "where o.churned is not null order by f.customer_id"
        ).df()
    return frame.drop(columns=["churned"]), frame["churned"].to_numpy(dtype=bool)


def _churn_inputs(
    features: pd.DataFrame, horizon: int, family: str, fitted=None
) -> pd.DataFrame | None:
    """The churn model's input at one cut-off; None when BTYD is not identified there.

    ``family`` is the purchase model that scores today's customers: the model and the
    P(no purchase) baseline learn from the same BTYD features they are applied to.
    ``fitted`` is that family already fitted on this cut-off (the out-of-time choice
    fits it on the evaluation cut-off), else it is fitted here. The input needs the
    purchase model only, so no spend model is fitted.
    """
    if features.empty:
        return None
    purchases = fitted
    if purchases is None:
        try:
            purchases = fit_purchase_model(purchase_summary(features), family)
        except ValueError:
            return None
    return churn_frame(features, ValueModels(purchases, None, family), horizon)


VALUE_STORE = "value"


def _split_outcomes(judge: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The evaluation cut-off's features and its outcomes, aligned row by row."""
    if judge is None:
        return pd.DataFrame(), pd.DataFrame(columns=list(OUTCOMES))
    return judge.drop(columns=list(OUTCOMES)), judge[list(OUTCOMES)]


def _current_features(warehouse: WarehouseResource) -> pd.DataFrame:
    features = read_features(warehouse)
    if features.empty:
        raise ValueError("features.customer_features is empty: nothing to score")
    return features


def _score(features: pd.DataFrame, value_models, churn, cfg) -> pd.DataFrame:
    """Scores of every current customer from fitted models (no fitting here); the
    horizons are columns of their own (churn_horizon_days, clv_horizon_days)."""
    h = cfg.churn_horizon_days
    scores = value_scores(
        features,
        value_models,
        churn_horizon_days=h,
        clv_horizon_days=cfg.clv_horizon_days,
        annual_discount_rate=cfg.annual_discount_rate,
    )
    scores["churn_probability"] = churn.predict(churn_frame(features, value_models, h), h)
    scores["churn_risk_band"] = risk_band(scores["churn_probability"], cfg.risk_band_thresholds)
    scores["revenue_at_risk"] = scores["clv"] * scores["churn_probability"]
    scores["as_of_date"] = pd.Timestamp(features["as_of_date"].max()).date()
    return scores


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "value_models",
            deps=[FEATURES, "churn_training_features"],
            group_name="ml",
            kinds={"scikitlearn"},
            description="The refit of the value and churn models, saved under "
            "WORKDIR/models/value/<version>/ (LATEST): BG/NBD + Gamma-Gamma fitted in days on "
            "the current customers; the churn classifier trained on the training cut-off, "
            "evaluated out of time on the evaluation cut-off next to the BG/NBD baselines, "
            "then refitted on the evaluation cut-off.",
        ),
        ml_table_spec(
            "model_runs",
            "churn_training_features",
            "one row per model per refit (appended): model, parameters, metrics, data window, "
            "run id — the history of every fit.",
        ),
        ml_table_spec(
            "churn_drivers",
            "churn_training_features",
            "permutation importance of each churn-model input on the evaluation cut-off.",
        ),
        evidence_spec(
            "value_evidence",
            [FEATURES, "churn_training_features"],
            "how far to trust the purchase, P(alive), CLV and churn figures: each model "
            "next to its baselines on the evaluation cut-off.",
        ),
    ],
    can_subset=False,
    op_tags=OVERLAP,
)
def value_models(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    run = warehouse.run_context()
    cfg, h = run.scoring, run.churn_horizon_days
    features = _current_features(warehouse)
    as_of = pd.Timestamp(features["as_of_date"].max()).date()
    train_cutoff, eval_cutoff = cutoff_dates(as_of, h)

    context.log.info(f"Choosing the purchase model out of time; refit on {len(features):,}")
    with warnings.catch_warnings(record=True) as caught, native_threads(len(features)):
        warnings.simplefilter("always")
        eval_f, eval_o = _split_outcomes(read_judge_frame(warehouse))
        models, choice, value_rows = choose_value_models(features, eval_f, eval_o, h, eval_cutoff)
        train_f, train_y = _labelled(warehouse, CUTOFFS[0])
        # the judge frame holds the evaluation cut-off's labelled customers already
        eval_y = eval_o["churned"].to_numpy(dtype=bool)
        train_X = _churn_inputs(train_f, h, models.family)
        at_eval = choice.models.get(models.family) if choice is not None else None
        eval_X = _churn_inputs(eval_f, h, models.family, fitted=at_eval)
        if train_X is None or eval_X is None:
            train_X, train_y = eval_X, eval_y = pd.DataFrame(), np.zeros(0, dtype=bool)
        context.log.info(
            f"Churn model: train {len(train_y):,} customers as of {train_cutoff}, evaluate "
            f"{len(eval_y):,} as of {eval_cutoff}, horizon {h} d"
        )
        churn = fit_churn(
            train_X,
            train_y,
            eval_X,
            eval_y,
            horizon_days=h,
            min_customers=cfg.min_training_customers,
            random_state=cfg.random_state,
        )
    notes = sorted({str(w.message) for w in caught if issubclass(w.category, UserWarning)})
    for note in notes:
        context.log.warning(note)
    if churn.fallback:
        context.log.warning(f"Churn model fallback: {churn.fallback}")
    if models.p_alive_note:
        context.log.warning(f"P(alive) withheld: {models.p_alive_note}")

    trained_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    runs = model_runs(
        context.run_id, models, churn, as_of, train_cutoff, eval_cutoff, h, trained_at
    )
    runs["n_customers"] = [len(features), len(features), len(train_y)]
    path = save_value_models(
        warehouse.models_dir / VALUE_STORE,
        models,
        churn,
        {
            "as_of_date": as_of.isoformat(),
            "train_cutoff": train_cutoff.isoformat(),
            "eval_cutoff": eval_cutoff.isoformat(),
            "horizon_days": h,
            "n_customers": len(features),
            "run_id": context.run_id,
        },
    )
    evaluation = churn.evaluation.reset_index(names="scorer")
    drivers = churn.drivers.assign(run_id=context.run_id, scored_at=trained_at)
    evidence = evidence_table(
        value_evidence(value_rows, churn_evidence(churn, eval_cutoff, h), horizon=h),
        context.run_id,
    )
    with warehouse.connect() as con:
        history = (
            con.execute("select * from ml.model_runs").df()
            if table_exists(con, "ml.model_runs")
            else None
        )
        all_runs = runs if history is None else pd.concat([history, runs], ignore_index=True)
        replace_tables(
            con,
            {
                "ml.model_runs": all_runs,
                "ml.churn_drivers": drivers,
                "ml.churn_evaluation": evaluation.assign(run_id=context.run_id),
                "ml.churn_calibration": churn.calibration.assign(run_id=context.run_id),
                "ml.value_evidence": evidence,
            },
            casts={
                "ml.value_evidence": EVIDENCE_CASTS,
                "ml.model_runs": {
                    "as_of_date": "DATE",
                    "train_cutoff": "DATE",
                    "eval_cutoff": "DATE",
                    "trained_at": "TIMESTAMP",
                    "n_customers": "BIGINT",
                },
                "ml.churn_drivers": {"scored_at": "TIMESTAMP"},
            },
        )

    plot = None
    if not churn.calibration.empty:
        plot = warehouse.root / "reports" / "churn_calibration.svg"
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot.write_text(calibration_svg(churn.calibration), encoding="utf-8")
    yield dg.MaterializeResult(
        asset_key="value_models",
        metadata={
            "version": path.name,
            "path": dg.MetadataValue.path(str(path)),
            "purchase_model": models.family,
            "purchase_model_params": dg.MetadataValue.json(models.purchases.params_),
            "purchase_model_rule": CHOICE_RULE,
            "purchase_model_choice": markdown(choice.table, index=True)
            if choice
            else "not evaluated",
            "p_alive_note": models.p_alive_note or "",
            "spend_model": models.spend_model,
            "spend_model_params": dg.MetadataValue.json(models.spend.params_),
            "spend_model_rule": SPEND_RULE,
            "spend_fallback": models.spend_note or "",
            "churn_evaluation": markdown(churn.evaluation, index=True)
            if not churn.evaluation.empty
            else churn.fallback or "",
            "calibration": markdown(churn.calibration),
            **({"calibration_plot": dg.MetadataValue.path(str(plot))} if plot else {}),
            "churn_fallback": churn.fallback or "",
            "churn_production": churn.production,
            "train_cutoff": train_cutoff.isoformat(),
            "eval_cutoff": eval_cutoff.isoformat(),
            "warnings": dg.MetadataValue.json(notes),
            "evidence": evidence_markdown(evidence),
        },
    )
    yield dg.MaterializeResult(
        asset_key="model_runs", metadata={"dagster/row_count": len(all_runs)}
    )
    yield dg.MaterializeResult(
        asset_key="churn_drivers",
        metadata={"dagster/row_count": len(drivers), "drivers": markdown(churn.drivers.head(15))},
    )
    yield dg.MaterializeResult(
        asset_key="value_evidence",
        metadata={"dagster/row_count": len(evidence), "evidence": evidence_markdown(evidence)},
    )


@dg.asset(
    key="customer_scores",
    deps=[FEATURES, "value_models"],
    group_name="ml",
    kinds={"scikitlearn", "duckdb"},
    description="ml.customer_scores: one row per current customer from the SAVED value and "
    "churn models (no refit): p_alive, churn_probability, churn_risk_band, expected purchases "
    "over the churn and the CLV horizon, expected spend per purchase, clv (discounted) and "
    "revenue at risk = clv x churn probability; the horizons in churn_horizon_days and "
    "clv_horizon_days (config scoring).",
    op_tags=OVERLAP,
)
def customer_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    run = warehouse.run_context()
    cfg, h = run.scoring, run.churn_horizon_days
    store = warehouse.models_dir / VALUE_STORE
    try:
        models, churn, meta = load_value_models(store)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{exc}. Materialise `value_models` first (job `refit_models` or `full_pipeline`); "
            "the scoring job only applies saved models."
        ) from exc
    if meta["horizon_days"] != h:
        raise ValueError(
            f"the saved value models {meta['version']} predict churn over {meta['horizon_days']} "
            f"days but scoring.churn_horizon_days is {h}: refit (job `refit_models`)"
        )
    features = _current_features(warehouse)
    context.log.info(
        f"Scoring {len(features):,} customers with value models {meta['version']} "
        f"(fitted as of {meta['as_of_date']})"
    )
    with native_threads(len(features)):
        scores = _score(features, models, churn, cfg)
    scores["value_model_version"] = meta["version"]
    scores["scored_at"] = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    truth = ground_truth_auc(warehouse, scores)
    with warehouse.connect() as con:
        record_ground_truth(con, meta.get("run_id", ""), truth)
        replace_tables(
            con,
            {"ml.customer_scores": scores},
            # p_alive_note is all None when P(alive) is published: keep it a text column
            casts={
                "ml.customer_scores": {
                    "as_of_date": "DATE",
                    "scored_at": "TIMESTAMP",
                    "p_alive_note": "VARCHAR",
                    "churn_horizon_days": "INTEGER",
                    "clv_horizon_days": "INTEGER",
                }
            },
        )
    bands = scores["churn_risk_band"].value_counts().reindex(["low", "medium", "high"]).fillna(0)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scores),
            "value_model_version": meta["version"],
            "total_clv": dg.MetadataValue.float(float(scores["clv"].sum())),
            "clv_horizon_days": cfg.clv_horizon_days,
            "churn_horizon_days": h,
            "revenue_at_risk": dg.MetadataValue.float(float(scores["revenue_at_risk"].sum())),
            "mean_churn_probability": dg.MetadataValue.float(
                float(scores["churn_probability"].mean())
            ),
            "risk_bands": dg.MetadataValue.json({k: int(v) for k, v in bands.items()}),
            "ground_truth_roc_auc": dg.MetadataValue.json(truth),
        },
    )


@dg.asset_check(
    asset="customer_scores",
    name="p_alive_identified",
    blocking=False,
    description="WARN (non-blocking) when P(alive) is withheld: no purchase model identifies "
    "dropout on this data, so p_alive is NULL and churn risk comes from the churn model only.",
)
def p_alive_identified(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as con:
        withheld, note = con.execute(
            "select count(*) filter (where p_alive is null), max(p_alive_note) "
            "from ml.customer_scores"
        ).fetchone()
    return dg.AssetCheckResult(
        passed=not withheld,
        severity=dg.AssetCheckSeverity.WARN,
        description=note or "P(alive) is published: the chosen purchase model identifies dropout.",
        metadata={"customers_without_p_alive": int(withheld)},
    )
