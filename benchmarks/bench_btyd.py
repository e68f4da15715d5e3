"""Benchmark: BG/NBD + Gamma-Gamma and the churn model on 1,000,000 simulated customers.

Customers are simulated from a BG/NBD purchase process with Gamma-Gamma spend, in
days, the unit the warehouse uses: first purchases spread over two years before
the cut-off, purchase times rounded up to whole days (as dbt counts them), plus the
90 days after the cut-off for the churn label. Timed stages:

1. BTYD: BG/NBD fit, Gamma-Gamma fit, then scoring every customer (probability
   alive, expected purchases in 90 days, 12-month CLV discounted monthly);
2. churn: ChurnModel (HistGradientBoosting, calibrated) trained on the 1M
   customers and scoring 1M other customers simulated from the same process.

If a Python with the archived ``lifetimes`` package is given (``--lifetimes-python``,
default ``/tmp/ltenv/bin/python`` when it exists), it fits the same summary in a
subprocess (benchmark only; the project never depends on lifetimes), and its time,
parameters and convergence are reported next to ours.

    .venv/bin/python benchmarks/bench_btyd.py [--customers 1000000] [--threads N]

Results are printed and written to benchmarks/results/btyd_<customers>.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_info, threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ml.btyd import BetaGeoModel, GammaGammaModel, customer_lifetime_value  # noqa: E402
from ml.churn import ChurnModel, compare_with_baseline  # noqa: E402

RESULTS = Path(__file__).parent / "results"
TRUE_BGNBD = {"r": 0.25, "alpha": 35.0, "a": 0.75, "b": 2.2}  # days; close to CDNOW's
TRUE_GG = {"p": 6.25, "q": 3.74, "gamma": 15.44}
HORIZON_DAYS = 90
COHORT_DAYS = 730


def simulate(n: int, seed: int) -> pd.DataFrame:
    """Summary (days) of n BG/NBD customers, plus purchases in the 90 days after T."""
    rng = np.random.default_rng(seed)
    p = TRUE_BGNBD
    lam = rng.gamma(p["r"], 1.0 / p["alpha"], n)
    drop = rng.beta(p["a"], p["b"], n)
    T = rng.integers(1, COHORT_DAYS + 1, n).astype(np.float64)
    t = np.zeros(n)
    x = np.zeros(n, dtype=np.int64)
    tx = np.zeros(n)
    holdout = np.zeros(n, dtype=np.int64)
    active = np.flatnonzero(lam > 0)
    while active.size:
        t[active] += rng.exponential(1.0 / lam[active])
        day = np.ceil(t[active])  # dbt counts whole days
        cal = day <= T[active]
        hold = ~cal & (day <= T[active] + HORIZON_DAYS)
        x[active[cal]] += 1
        tx[active[cal]] = day[cal]
        holdout[active[hold]] += 1
        alive = rng.random(active.size) >= drop[active]  # drop out after each purchase
        active = active[alive & (cal | hold)]
    # mean of x Gamma(p, nu) spends is Gamma(p x, nu) / x; nu ~ Gamma(q, gamma)
    g = TRUE_GG
    nu = rng.gamma(g["q"], 1.0 / g["gamma"], n)
    spend = np.where(
        x > 0, rng.gamma(np.maximum(g["p"] * x, 1e-12), 1.0 / nu) / np.maximum(x, 1), 0
    )
    return pd.DataFrame(
        {"frequency": x, "recency": tx, "T": T, "monetary_value": spend, "holdout": holdout}
    )


def btyd_stage(summary: pd.DataFrame) -> tuple[dict, BetaGeoModel, pd.DataFrame]:
    timings = {}
    t0 = time.perf_counter()
    bg = BetaGeoModel(time_unit="days").fit(summary)
    timings["bgnbd_fit_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    gg = GammaGammaModel().fit(summary)
    timings["gamma_gamma_fit_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    scores = pd.DataFrame(
        {
            "p_alive": bg.probability_alive(summary),
            "expected_purchases_90d": bg.conditional_expected_purchases(summary, HORIZON_DAYS),
            "p_no_purchase_90d": bg.probability_no_purchase(summary, HORIZON_DAYS),
            "expected_spend": gg.conditional_expected_average_spend(summary),
            "clv_12m": customer_lifetime_value(
                bg, gg, summary, horizon=365, discount_rate=0.01, discount_period=365 / 12
            ),
        }
    )
    timings["score_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    assert np.isfinite(scores.to_numpy()).all()
    result = {
        **{k: round(v, 2) for k, v in timings.items()},
        "bgnbd_params": {k: round(v, 4) for k, v in bg.params_.items()},
        "bgnbd_true": TRUE_BGNBD,
        "bgnbd_distinct_rows": bg.n_distinct_rows_,
        "bgnbd_optimizer": bg.optimizer_,
        "bgnbd_iterations": bg.n_iter_,
        "gamma_gamma_params": {k: round(v, 4) for k, v in gg.params_.items()},
        "gamma_gamma_true": TRUE_GG,
        "gamma_gamma_distinct_rows": gg.n_distinct_rows_,
        "predicted_vs_actual_90d": [
            round(float(scores["expected_purchases_90d"].sum())),
            int(summary["holdout"].sum()),
        ],
    }
    return result, bg, scores


def churn_frame(summary: pd.DataFrame, scores: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    X = pd.DataFrame(
        {
            "recency_days": summary["T"] - summary["recency"],
            "frequency": summary["frequency"] + 1,
            "tenure_days": summary["T"],
            "lt_monetary_value": summary["monetary_value"],
            "p_alive": scores["p_alive"],
            "expected_purchases_90d": scores["expected_purchases_90d"],
            "p_no_purchase_90d": scores["p_no_purchase_90d"],
        }
    )
    return X, (summary["holdout"].to_numpy() == 0).astype(int)


def churn_stage(train: tuple, test: tuple) -> dict:
    t0 = time.perf_counter()
    model = ChurnModel(random_state=0).fit(*train)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    model.predict_proba(test[0])
    score_s = time.perf_counter() - t1
    table = compare_with_baseline(model, *test, p_no_purchase_column="p_no_purchase_90d")
    return {
        "train_s": round(fit_s, 2),
        "score_s": round(score_s, 2),
        "total_s": round(fit_s + score_s, 2),
        "n_iter_per_calibration_fold": [
            int(c.estimator.named_steps["classifier"].n_iter_)
            for c in model.calibrated_.calibrated_classifiers_
        ],
        "metrics_on_other_1M": table.round(4).to_dict(orient="index"),
    }


LIFETIMES_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, warnings
    import pandas as pd
    warnings.simplefilter("ignore")
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    d = pd.read_csv(sys.argv[1])
    out, models = {}, {}
    repeat = d[d.frequency > 0]
    for name, fit in [
        ("bgnbd", lambda: BetaGeoFitter().fit(d["frequency"], d["recency"], d["T"])),
        ("gamma_gamma", lambda: GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])),
    ]:
        t = time.perf_counter()
        try:
            models[name] = m = fit()
            params = {k: round(float(v), 4) for k, v in m.params_.items()}
            out[name] = {"converged": True, "params": params}
        except Exception as e:  # lifetimes raises ConvergenceError when minimize fails
            out[name] = {"converged": False, "error": f"{type(e).__name__}: {str(e)[:200]}"}
        out[name]["fit_s"] = round(time.perf_counter() - t, 2)
        print(json.dumps(out), flush=True)
    if len(models) == 2:
        bg, gg = models["bgnbd"], models["gamma_gamma"]
        t = time.perf_counter()
        bg.conditional_probability_alive(d["frequency"], d["recency"], d["T"])
        bg.conditional_expected_number_of_purchases_up_to_time(90, d["frequency"], d["recency"], d["T"])
        gg.conditional_expected_average_profit(d["frequency"], d["monetary_value"])
        gg.customer_lifetime_value(bg, d["frequency"], d["recency"], d["T"], d["monetary_value"],
                                   time=12, discount_rate=0.01, freq="D")
        out["score_s"] = round(time.perf_counter() - t, 2)
        print(json.dumps(out), flush=True)
    """
)


def lifetimes_stage(summary: pd.DataFrame, python: str, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "summary.csv"
        summary[["frequency", "recency", "T", "monetary_value"]].to_csv(path, index=False)
        script = Path(tmp) / "fit_lifetimes.py"
        script.write_text(LIFETIMES_SCRIPT)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [python, str(script), str(path)], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as e:
            partial = (
                (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            )
            last = partial.strip().splitlines()[-1:] or ["{}"]
            return {"timeout_s": timeout, "finished": json.loads(last[0])}
        lines = proc.stdout.strip().splitlines()
        if proc.returncode != 0 or not lines:
            return {
                "error": proc.stderr.strip()[-500:],
                "wall_s": round(time.perf_counter() - t0, 2),
            }
        return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="limit OpenMP/BLAS threads")
    default_lt = "/tmp/ltenv/bin/python" if Path("/tmp/ltenv/bin/python").exists() else ""
    parser.add_argument("--lifetimes-python", default=default_lt, help="'' to skip lifetimes")
    parser.add_argument("--lifetimes-timeout", type=float, default=1800.0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    train = simulate(args.customers, args.seed)
    other = simulate(args.customers, args.seed + 1)
    simulate_s = time.perf_counter() - t0
    report: dict = {
        "customers": args.customers,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())} at start",
        "threads": args.threads or {i["internal_api"]: i["num_threads"] for i in threadpool_info()},
        "simulate_2x_s": round(simulate_s, 2),
        "repeat_buyers_share": round(float((train["frequency"] > 0).mean()), 3),
        "churn_rate": round(float((train["holdout"] == 0).mean()), 3),
    }
    with threadpool_limits(limits=args.threads):
        report["btyd"], bg, scores = btyd_stage(train)
        other_scores = pd.DataFrame(
            {
                "p_alive": bg.probability_alive(other),
                "expected_purchases_90d": bg.conditional_expected_purchases(other, HORIZON_DAYS),
                "p_no_purchase_90d": bg.probability_no_purchase(other, HORIZON_DAYS),
            }
        )
        report["churn"] = churn_stage(churn_frame(train, scores), churn_frame(other, other_scores))
    if args.lifetimes_python:
        report["lifetimes"] = lifetimes_stage(train, args.lifetimes_python, args.lifetimes_timeout)
    report["load_average_at_end"] = [round(v, 1) for v in os.getloadavg()]

    text = json.dumps(report, indent=2)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"btyd_{args.customers}"
    stem.with_suffix(".json").write_text(text + "\n")
    stem.with_suffix(".md").write_text(
        f"# BTYD + churn benchmark, {args.customers:,} customers\n\n```json\n{text}\n```\n"
    )


if __name__ == "__main__":
    main()
