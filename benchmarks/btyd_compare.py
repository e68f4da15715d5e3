"""BG/NBD + Gamma-Gamma fitting: ml/btyd/ vs the archived ``lifetimes`` package.

The same simulated summary (bench_btyd.simulate: BG/NBD purchases, Gamma-Gamma spend,
in days) is fitted by ours (median of three fits, with the default BLAS/OpenMP threads as in
production and again with one thread) and by lifetimes 0.11.3 (one fit,
in the comparison venv: ``--compare-python``); parameters are checked equal
(relative difference <= 1e-3) and the fit and scoring times compared.
"""

from __future__ import annotations

import statistics
import time

import pandas as pd
from bench_btyd import lifetimes_stage, simulate
from threadpoolctl import threadpool_limits

from ml.btyd import BetaGeoModel, GammaGammaModel

RTOL = 1e-3


def _ours(summary: pd.DataFrame, threads: int | None = None) -> tuple[float, float, dict, dict]:
    bg_s, gg_s = [], []
    for _ in range(3):
        with threadpool_limits(limits=threads):
            bg, bg_t, gg, gg_t = _fit_once(summary)
        bg_s.append(bg_t)
        gg_s.append(gg_t)
    return statistics.median(bg_s), statistics.median(gg_s), bg.params_, gg.params_


def _fit_once(summary: pd.DataFrame):
    t0 = time.perf_counter()
    bg = BetaGeoModel(time_unit="days").fit(summary)
    bg_t = time.perf_counter() - t0
    t0 = time.perf_counter()
    gg = GammaGammaModel().fit(summary)
    return bg, bg_t, gg, time.perf_counter() - t0


def _close(ours: dict, theirs: dict, names: dict[str, str]) -> tuple[bool, float]:
    worst = max(abs(ours[k] - theirs[names.get(k, k)]) / abs(ours[k]) for k in ours)
    return worst <= RTOL, worst


def run(customers: int, compare_python: str | None, timeout: float = 900.0) -> dict:
    summary = simulate(customers, seed=0)
    bg_s, gg_s, bg_p, gg_p = _ours(summary)
    # the likelihoods are elementwise: BLAS threads only add contention on a busy machine
    bg1, gg1, _, _ = _ours(summary, threads=1)
    report = {
        "customers": customers,
        "repeat_buyers": int((summary["frequency"] > 0).sum()),
        "ours": {
            "bgnbd_fit_s": round(bg_s, 2),
            "gamma_gamma_fit_s": round(gg_s, 2),
            "fit_s": round(bg_s + gg_s, 2),
            "bgnbd_params": {k: round(float(v), 4) for k, v in bg_p.items()},
            "gamma_gamma_params": {k: round(float(v), 4) for k, v in gg_p.items()},
        },
        "ours_1_thread": {
            "bgnbd_fit_s": round(bg1, 2),
            "gamma_gamma_fit_s": round(gg1, 2),
            "fit_s": round(bg1 + gg1, 2),
        },  # fmt: skip
    }
    if not compare_python:
        return report
    lt = lifetimes_stage(summary, compare_python, timeout)
    report["lifetimes"] = lt
    bg, gg = lt.get("bgnbd", {}), lt.get("gamma_gamma", {})
    if bg.get("converged") and gg.get("converged"):
        lt_fit = bg["fit_s"] + gg["fit_s"]
        ok_bg, d_bg = _close(bg_p, bg["params"], {})
        ok_gg, d_gg = _close(gg_p, gg["params"], {"gamma": "v"})
        report["lifetimes_fit_s"] = round(lt_fit, 2)
        report["speedup_fit"] = round(lt_fit / (bg_s + gg_s), 1)
        report["speedup_fit_1_thread"] = round(lt_fit / (bg1 + gg1), 1)
        report["params_equal"] = ok_bg and ok_gg
        report["max_param_rel_diff"] = float(f"{max(d_bg, d_gg):.2e}")
    return report
