"""What a refit of the value and churn models records besides the models.

The calibration plot (SVG), the ROC AUC against known churn labels (ground truth) and
the ml.model_runs rows; used by ``orchestration/assets/scores.py``. The ground-truth AUC
is computed from the published scores (customer_scores) and added to the refit's row.
"""

import json

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from orchestration.io.tables import table_exists
from orchestration.resources import WarehouseResource


def calibration_svg(calibration: pd.DataFrame, size: int = 320) -> str:
    """A self-contained SVG calibration plot: mean predicted vs observed churn rate per bin."""
    pad = 40
    scale = size - 2 * pad

    def xy(px: float, py: float) -> tuple[float, float]:
        return pad + px * scale, size - pad - py * scale

    coords = [xy(r.mean_predicted, r.observed_rate) for r in calibration.itertuples(index=False)]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1f77b4"/>' for x, y in coords)
    (x0, y0), (x1, y1) = xy(0, 0), xy(1, 1)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        'font-family="sans-serif" font-size="11">'
        f'<rect x="{pad}" y="{pad}" width="{scale}" height="{scale}" fill="none" stroke="#999"/>'
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y1}" stroke="#bbb" stroke-dasharray="4"/>'
        f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>{dots}'
        f'<text x="{size / 2}" y="{size - 8}" text-anchor="middle">mean predicted churn '
        "probability</text>"
        f'<text x="12" y="{size / 2}" transform="rotate(-90 12 {size / 2})" '
        'text-anchor="middle">observed churn rate</text>'
        f'<text x="{size / 2}" y="24" text-anchor="middle">Churn model calibration '
        "(evaluation cut-off)</text></svg>"
    )


def ground_truth_auc(warehouse: WarehouseResource, scores: pd.DataFrame) -> dict:
    """ROC AUC of the churn probability and of 1 - p_alive against known churn labels."""
    truth = warehouse.ground_truth()
    column = warehouse.project_config().ground_truth
    if truth is None or column is None or not column.churn_column:
        return {}
    known = truth[column.churn_column].reindex(scores["customer_id"].astype(str).to_numpy())
    mask = known.notna().to_numpy()
    y = known.to_numpy()[mask].astype(int)
    if mask.sum() == 0 or len(np.unique(y)) < 2:
        return {}
    return {
        "customers": int(mask.sum()),
        "churn_model": round(float(roc_auc_score(y, scores["churn_probability"][mask])), 4),
        "p_alive_baseline": round(float(roc_auc_score(y, 1 - scores["p_alive"][mask])), 4)
        if scores["p_alive"].notna().all()
        else None,
    }


def model_runs(run_id, value_models, churn, as_of, train_cutoff, eval_cutoff, h, at):
    """One row per model fitted in this run; the churn classifier's ground-truth AUC
    stays empty until :func:`record_ground_truth` fills it in."""

    def fitted(model) -> dict:
        return {
            "params": model.params_,
            "penalizer": model.penalizer,
            "log_likelihood": float(model.log_likelihood_),
            "converged": bool(model.converged_),
        }

    churn_metrics = (
        churn.evaluation.round(6).to_dict(orient="index") if not churn.evaluation.empty else {}
    )
    rows = [
        (value_models.family, fitted(value_models.purchases), {}, None, None),
        (
            value_models.spend_model,
            fitted(value_models.spend),
            {},
            None,
            None,
        ),
        (
            "churn_classifier",
            {"estimator": "HistGradientBoosting, isotonic calibration", "horizon_days": h}
            if churn.fallback is None
            else {"fallback": churn.fallback, "production": churn.production},
            {"out_of_time": churn_metrics, "ground_truth_roc_auc": {}},
            train_cutoff,
            eval_cutoff,
        ),
    ]
    return pd.DataFrame(
        {
            "run_id": run_id,
            "model": [r[0] for r in rows],
            "params": [json.dumps(r[1], default=float, sort_keys=True) for r in rows],
            "metrics": [json.dumps(r[2], default=float, sort_keys=True) for r in rows],
            "as_of_date": as_of,
            "train_cutoff": [r[3] for r in rows],
            "eval_cutoff": [r[4] for r in rows],
            "trained_at": at,
        }
    )


def record_ground_truth(con, run_id: str, truth: dict) -> bool:
    """Write ``truth`` (:func:`ground_truth_auc`) into the churn classifier's ml.model_runs
    row of refit ``run_id``, once: the first scoring with the refit's models fills it in,
    so the refit does not score every customer a second time for it. Returns whether a
    row was updated."""
    if not truth or not table_exists(con, "ml.model_runs"):
        return False
    found = con.execute(
        "select metrics from ml.model_runs where run_id = ? and model = 'churn_classifier'",
        [run_id],
    ).fetchall()
    if len(found) != 1:
        return False
    metrics = json.loads(found[0][0])
    if metrics.get("ground_truth_roc_auc"):
        return False
    metrics["ground_truth_roc_auc"] = truth
    con.execute(
        "update ml.model_runs set metrics = ? where run_id = ? and model = 'churn_classifier'",
        [json.dumps(metrics, default=float, sort_keys=True), run_id],
    )
    return True
