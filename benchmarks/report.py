"""Markdown (and JSON) of the benchmark results: e2e per size, scaling, comparisons."""

from __future__ import annotations

import json
import math
from pathlib import Path

SIZES = ["100000", "1000000", "10000000"]
E2E_TARGET_S, MEM_TARGET_MB = 300, 6 * 1024
RFM_VS_PANDAS, RFM_VS_SQL, BTYD_VS_LIFETIMES = 3.0, 1.5, 10.0


def _la(v) -> str:
    return ", ".join(f"{x:.1f}" for x in v) if v else "?"


def _f(v, digits: int = 1) -> str:
    return "" if v is None else f"{v:,.{digits}f}"


def _ok(cond: bool) -> str:
    return "**met**" if cond else "**missed**"


def _sizes(d: dict) -> list[str]:
    return sorted((s for s in d if s.isdigit()), key=int)


def e2e_markdown(r: dict) -> str:
    name = f"{int(r['label']):,} generated lines" if r["label"].isdigit() else r["label"]
    source = (
        f"generated ({r['generate_s']:.0f} s to generate, not counted)"
        if "generate_s" in r
        else f"real data, `{r.get('config')}`"
    )
    lines = [
        f"# End to end: {name}: {r['rows']:,} transaction lines, {r['customers']:,} customers",
        "",
        f"{r['date']}, commit {r['commit']}; {r['machine']}; {source}.",
        f"Load average (1, 5, 15 min): {_la(r['load_average_before'])} before, "
        f"{_la(r['load_average_after'])} after (2 cores: above 2 means waiting for a core).",
        "",
        "| stage | wall s | CPU s | peak MB | steps |",
        "|---|---:|---:|---:|---|",
    ]
    for s in r["stages"]:
        steps = ", ".join(x.split("_gx_")[-1] if "_gx_" in x else x for x in s["steps"])
        lines.append(
            f"| {s['stage']} | {s['wall_s']:.1f} | {_f(s['cpu_s'])} | {_f(s['peak_rss_mb'], 0)} | {steps} |"
        )
    lines += [
        f"| **end to end** | **{r['end_to_end_s']:.1f}** | {r['cpu_s']:.1f} | "
        f"**{r['peak_rss_mb']:,}** | |",
        "",
        f"dbt tests inside the dbt and marts stages: {r['dbt_tests_s']:.1f} s. Peak memory is the "
        "resident memory of the process tree (Python, DuckDB, the dbt subprocess).",
    ]
    if r["label"] == SIZES[-1]:
        lines += [
            "",
            f"Targets: end to end < {E2E_TARGET_S} s: {_ok(r['end_to_end_s'] < E2E_TARGET_S)}; "
            f"peak memory < {MEM_TARGET_MB:,} MB: {_ok(r['peak_rss_mb'] < MEM_TARGET_MB)}.",
        ]
    lines += ["", "| step | wall s | CPU s | peak MB |", "|---|---:|---:|---:|"]
    lines += [
        f"| {k} | {v['wall_s']:.1f} | {v['cpu_s']:.1f} | {v['peak_rss_mb']:,} |"
        for k, v in r["steps"].items()
    ]
    return "\n".join(lines) + "\n"


def _exp(a, b) -> str:
    if not a or not b or a <= 0 or b <= 0:
        return ""
    e = math.log(b / a) / math.log(10)
    return f"{e:.2f}" + (" ▲" if e > 1.1 else "")


def write_scaling(results: Path) -> None:
    runs = {}
    for s in SIZES:
        p = results / f"e2e_{s}.json"
        if p.exists() and "stages" in (d := json.loads(p.read_text())):
            runs[s] = d
    if not runs:
        return
    head = [s for s in SIZES if s in runs]

    def table(rows: dict[str, dict[str, float]]) -> list[str]:
        out = [
            "| | " + " | ".join(f"{int(s):,} s" for s in head) + " | exp. 100k→1M | exp. 1M→10M |",
            "|---|" + "---:|" * (len(head) + 2),
        ]
        for name, t in rows.items():
            cells = " | ".join(_f(t.get(s)) for s in head)
            out.append(
                f"| {name} | {cells} | {_exp(t.get(SIZES[0]), t.get(SIZES[1]))} | "
                f"{_exp(t.get(SIZES[1]), t.get(SIZES[2]))} |"
            )
        return out

    stages: dict[str, dict] = {}
    steps: dict[str, dict] = {}
    for s, d in runs.items():
        for row in d["stages"]:
            stages.setdefault(row["stage"], {})[s] = row["wall_s"]
        stages.setdefault("**end to end**", {})[s] = d["end_to_end_s"]
        for k, v in d["steps"].items():
            steps.setdefault(k, {})[s] = v["wall_s"]
    lines = [
        "# Scaling: wall time per stage against transaction lines",
        "",
        "Growth exponent = log(t_large / t_small) / log(10) for a 10x size step: 1 is linear, "
        "below 1 means fixed costs (start-up, dbt parsing) still dominate, ▲ marks above 1.1. "
        "Each size is a separate run; its load average (1, 5, 15 min):",
        "",
        *[
            f"* {int(s):,}: {runs[s]['date']}, {_la(runs[s]['load_average_before'])} before, "
            f"{_la(runs[s]['load_average_after'])} after; commit {runs[s]['commit']}"
            for s in head
        ],  # fmt: skip
        "",
        *table(stages),
        "",
        "Peak memory (MB): "
        + ", ".join(f"{int(s):,}: {runs[s]['peak_rss_mb']:,}" for s in head)
        + ".",
        "",
        "## Per step",
        "",
        *table(steps),
    ]
    (results / "scaling.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _merge(results: Path, new: dict) -> dict:
    path = results / "comparisons.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    merged = {**old, **{k: v for k, v in new.items() if k not in ("rfm", "clustering")}}
    for key in ("rfm", "clustering"):
        merged[key] = {**old.get(key, {}), **new.get(key, {})}
    return merged


RFM_ROWS = [
    ("dbt", "dbt run of the 6 models (parsed manifest, in process)"),
    ("dbt_parse", "dbt parse (once per run; not in the line above)"),
    ("dbt_models_execution", "of which the models' own execution (dbt's run_results)"),
    ("dbt_sql", "the SQL dbt compiled, run directly in DuckDB"),
    ("duckdb", "hand-written DuckDB query, same output"),
    ("pandas", "pandas read_parquet + drop_duplicates + groupby, same output"),
    ("polars", "Polars lazy query, same output"),
    ("duckdb_minimal", "DuckDB, textbook RFM (8 columns, no duplicate removal)"),
    ("pandas_minimal", "pandas, textbook RFM (8 columns, no duplicate removal)"),
]


def _rfm_lines(rfm: dict) -> list[str]:
    head = _sizes(rfm)
    lines = [
        "| implementation | " + " | ".join(f"{int(s):,} s" for s in head) + " | equal to dbt |",
        "|---|" + "---:|" * len(head) + "---|",
    ]
    for key, label in RFM_ROWS:
        cells = " | ".join(_f(rfm[s]["seconds"].get(key), 2) for s in head)
        checks = [rfm[s]["checks"].get(key) for s in head if rfm[s]["checks"].get(key)]
        eq = (
            "reference" if key == "dbt"
            else ("yes" if all(c["equal"] for c in checks) else "NO") if checks
            else ""
        )  # fmt: skip
        lines.append(f"| {label} | {cells} | {eq} |")
    big = rfm.get(SIZES[-1])
    if big:
        s = big["seconds"]
        lines += [
            "",
            f"At {int(SIZES[-1]):,} lines ({big['rows']:,}); best of {big['repeat']}:",
            "",
        ]
        if "pandas" in s:
            r = s["pandas"] / s["dbt"]
            lines.append(
                f"* pandas / dbt = {r:.2f} (target >= {RFM_VS_PANDAS:g}: {_ok(r >= RFM_VS_PANDAS)})"
            )
        for key in ("dbt_sql", "duckdb"):
            r = s["dbt"] / s[key]
            lines.append(
                f"* dbt / {key} = {r:.2f} (target <= {RFM_VS_SQL:g}: {_ok(r <= RFM_VS_SQL)})"
            )
        per_model = ", ".join(f"{k} {v:.1f}" for k, v in big.get("dbt_model_seconds", {}).items())
        lines.append(f"* dbt models (s): {per_model}")
    return lines


def _clustering_lines(cl: dict) -> list[str]:
    lines = [
        "| customers | algorithm | parameters | ours with search s | ours, fixed s | "
        "scikit-learn, all rows | ARI vs ours |",
        "|---:|---|---|---:|---:|---|---:|",
    ]
    for s in _sizes(cl):
        for alg, row in cl[s]["algorithms"].items():
            full = row["full"]
            shown = f"{full['seconds']:.1f} s" if full["status"] == "finished" else full["status"]
            params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in row["params"].items())  # fmt: skip
            lines.append(
                f"| {cl[s]['customers']:,} | {alg} | {params} | {row['ours_with_search_s']:.1f} | "
                f"{row['ours_fixed_s']:.1f} | {shown} | {_f(full.get('ari_vs_ours'), 3)} |"
            )
    return lines


def _btyd_lines(b: dict) -> list[str]:
    o, lt = b["ours"], b.get("lifetimes", {})
    lines = [
        f"{b['customers']:,} simulated customers ({b['repeat_buyers']:,} repeat buyers), days.",
        "",
        "| | BG/NBD fit s | Gamma-Gamma fit s | both s | BG/NBD r, alpha, a, b | Gamma-Gamma p, q, gamma |",
        "|---|---:|---:|---:|---|---|",
        f"| ours (ml/btyd/, median of 3) | {o['bgnbd_fit_s']:.2f} | {o['gamma_gamma_fit_s']:.2f} | "
        f"{o['fit_s']:.2f} | {', '.join(str(v) for v in o['bgnbd_params'].values())} | "
        f"{', '.join(str(v) for v in o['gamma_gamma_params'].values())} |",
    ]
    if "ours_1_thread" in b:
        o1 = b["ours_1_thread"]
        lines.append(
            f"| ours, 1 BLAS/OpenMP thread (median of 3) | {o1['bgnbd_fit_s']:.2f} | "
            f"{o1['gamma_gamma_fit_s']:.2f} | {o1['fit_s']:.2f} | same | same |"
        )
    if "speedup_fit" in b:
        bg, gg = lt["bgnbd"], lt["gamma_gamma"]
        lines += [
            f"| lifetimes 0.11.3 (one fit) | {bg['fit_s']:.2f} | {gg['fit_s']:.2f} | "
            f"{b['lifetimes_fit_s']:.2f} | {', '.join(str(v) for v in bg['params'].values())} | "
            f"{', '.join(str(v) for v in gg['params'].values())} |",
            "",
            f"Parameters equal (relative difference {b['max_param_rel_diff']:.1e}, tolerance 1e-3): "
            f"{'yes' if b['params_equal'] else 'NO'}. Speed-up {b['speedup_fit']:.1f}x "
            f"(target >= {BTYD_VS_LIFETIMES:g}x: {_ok(b['speedup_fit'] >= BTYD_VS_LIFETIMES)})"
            + (
                f"; with one thread {b['speedup_fit_1_thread']:.1f}x."
                if "speedup_fit_1_thread" in b
                else "."
            ),
        ]
    else:
        lines += ["", f"lifetimes: {json.dumps(lt) if lt else 'not run (no --compare-python)'}"]
    return lines


def write_comparisons(results: Path, new: dict) -> None:
    c = _merge(results, new)
    (results / "comparisons.json").write_text(json.dumps(c, indent=1) + "\n", encoding="utf-8")
    loads = {
        f"{sec} {s}": v.get("load_average_after")
        for sec in ("rfm", "clustering")
        for s, v in c.get(sec, {}).items()
    }
    lines = [
        "# Comparisons with what a user would otherwise write or use",
        "",
        f"Last run {c['run']['date']}, commit {c['run']['commit']}; {c['run']['machine']}. "
        "Load average (1, 5, 15 min) after each part: "
        + "; ".join(f"{k}: {_la(v)}" for k, v in loads.items())
        + (f"; btyd: {_la(c['btyd'].get('load_average_after'))}" if "btyd" in c else "")
        + ".",
        "",
        "## RFM features (seconds, same Parquet input, outputs checked equal)",
        "",
        *_rfm_lines(c.get("rfm", {})),
        "",
        "## Clustering: sample-and-assign vs scikit-learn on all rows",
        "",
        *_clustering_lines(c.get("clustering", {})),
    ]
    if "btyd" in c:
        lines += ["", "## BG/NBD + Gamma-Gamma fitting", "", *_btyd_lines(c["btyd"])]
    (results / "comparisons.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
