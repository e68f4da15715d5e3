"""RFM features four or five ways on the same Parquet file, outputs checked equal.

The reference is dbt's ``intermediate.int_customer_order_summary`` (the RFM block of
``features.customer_features``: first/last order date, recency, frequency, monetary
total and average, tenure, 90-day spend windows, returns, product breadth), built by
``dbt run --full-refresh --select +int_customer_order_summary`` (staging view,
exact-duplicate removal, orders, per-customer totals, the as-of views and the as-of
projection). The same input, a Parquet copy of the canonical ``raw.transactions``, is
read by every implementation:

* ``dbt``: in-process ``dbtRunner`` on a parsed manifest, ``raw.transactions`` a view
  over the Parquet file; parse and run timed apart. ``--full-refresh``, because the
  transaction models are incremental: without it the second repetition would rebuild
  into the existing tables (there is no raw.load_log here), which is not what a full
  build costs;
* ``dbt_sql``: the SQL dbt compiled for those models, run directly in DuckDB;
* ``duckdb``: one hand-written aggregate query, as a user would write it;
* ``pandas``: ``read_parquet`` + ``drop_duplicates`` + ``groupby``, as a user would;
* ``polars`` (with ``--compare-python``): the same as a lazy Polars query.

Each is timed ``repeat`` times; the minimum is reported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from rfm_sql import CANONICAL, MINIMAL_SQL, PLAIN_SQL, WINDOW

from orchestration.dbt import DBT_PROJECT_DIR, invoke_dbt

HERE = Path(__file__).parent
COLUMNS = [
    "customer_id", "first_order_date", "last_order_date", "recency_days", "frequency",
    "monetary_total", "monetary_avg", "tenure_days", "spend_last_90d", "spend_prev_90d",
    "spend_trend_90d", "gross_sales", "returned_amount", "return_rate", "n_returns",
    "distinct_products",
]  # fmt: skip
MODEL = "int_customer_order_summary"

MINIMAL = COLUMNS[:8]


def rfm_pandas_minimal(path: Path) -> pd.DataFrame:
    """Recency, frequency, monetary as most tutorials write it: no duplicate removal,
    no order level (an order counts as a sale when any line of it is one), no windows."""
    df = pd.read_parquet(path, columns=["customer_id", "order_id", "ordered_at", "quantity",
                                        "amount", "is_cancellation"])  # fmt: skip
    df["order_date"] = df["ordered_at"].dt.floor("D")
    as_of = df["order_date"].max() + pd.Timedelta(days=1)
    sale = ~((df["quantity"] < 0) | (df["amount"] < 0) | df["is_cancellation"])
    df["sale_order"] = df["order_id"].where(sale)
    df["gross"] = df["amount"].where(sale, 0.0)
    c = df.groupby("customer_id").agg(
        first_order_date=("order_date", "min"),
        last_order_date=("order_date", "max"),
        frequency=("sale_order", "nunique"),
        monetary_total=("amount", "sum"),
        gross=("gross", "sum"),
    )
    c["recency_days"] = (as_of - c["last_order_date"]).dt.days
    c["tenure_days"] = (as_of - c["first_order_date"]).dt.days
    c["monetary_avg"] = (c["gross"] / c["frequency"]).where(c["frequency"] > 0, 0.0)
    return c.reset_index()[MINIMAL]


def rfm_pandas(path: Path) -> pd.DataFrame:
    """The same features as a pandas user would compute them."""
    df = pd.read_parquet(path, columns=CANONICAL).drop_duplicates()
    df["order_date"] = df["ordered_at"].dt.floor("D")
    as_of = df["order_date"].max() + pd.Timedelta(days=1)
    df = df[df["order_date"] < as_of]
    ret = (df["quantity"] < 0) | (df["amount"] < 0) | df["is_cancellation"]
    df = df.assign(
        is_return=ret,
        gross=df["amount"].where(~ret, 0.0),
        returned=(-df["amount"]).where(ret, 0.0),
    )
    orders = (
        df.groupby(["customer_id", "order_id"], sort=False)
        .agg(
            order_date=("order_date", "min"),
            net=("amount", "sum"),
            gross=("gross", "sum"),
            returned=("returned", "sum"),
            return_lines=("is_return", "sum"),
            is_return_order=("is_return", "all"),
        )
        .reset_index()
    )
    day = pd.Timedelta(days=1)
    last = orders["order_date"] >= as_of - WINDOW * day
    prev = (orders["order_date"] >= as_of - 2 * WINDOW * day) & ~last
    orders["last90"] = orders["net"].where(last, 0.0)
    orders["prev90"] = orders["net"].where(prev, 0.0)
    orders["sale_order"] = orders["order_id"].where(~orders["is_return_order"])
    c = orders.groupby("customer_id").agg(
        first_order_date=("order_date", "min"),
        last_order_date=("order_date", "max"),
        frequency=("sale_order", "nunique"),
        monetary_total=("net", "sum"),
        gross_sales=("gross", "sum"),
        returned_amount=("returned", "sum"),
        n_returns=("return_lines", "sum"),
        spend_last_90d=("last90", "sum"),
        spend_prev_90d=("prev90", "sum"),
    )
    products = df[~df["is_return"]].groupby("customer_id")["product_id"].nunique()
    c["distinct_products"] = products.reindex(c.index, fill_value=0)
    c["recency_days"] = (as_of - c["last_order_date"]).dt.days
    c["tenure_days"] = (as_of - c["first_order_date"]).dt.days
    c["monetary_avg"] = (c["gross_sales"] / c["frequency"]).where(c["frequency"] > 0, 0.0)
    c["spend_trend_90d"] = c["spend_last_90d"] - c["spend_prev_90d"]
    c["return_rate"] = (c["returned_amount"] / c["gross_sales"]).where(c["gross_sales"] > 0, 0.0)
    return c.reset_index()[COLUMNS]


def _raw_view(db: Path, parquet: Path) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute("set enable_progress_bar = false")
        con.execute("create schema if not exists raw")
        con.execute(
            f"create or replace view raw.transactions as select * from read_parquet('{parquet}')"
        )


def _best(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _as_reference(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = frame[columns].sort_values("customer_id", kind="stable").reset_index(drop=True)
    for col in ("first_order_date", "last_order_date"):
        out[col] = pd.to_datetime(out[col]).astype("datetime64[ns]")
    return out.astype({c: "float64" for c in columns[3:]})


def compare(ref: pd.DataFrame, other: pd.DataFrame, columns: list[str] = COLUMNS) -> dict:
    """Equal customers and dates, numbers within 1e-6 (money is exact decimal in dbt)."""
    a, b = _as_reference(ref, columns), _as_reference(other, columns)
    if len(a) != len(b) or not (a["customer_id"].to_numpy() == b["customer_id"].to_numpy()).all():
        return {"equal": False, "why": f"customers differ ({len(a)} vs {len(b)} rows)"}
    bad, worst = [], 0.0
    for col in columns[1:]:
        x, y = a[col].to_numpy(), b[col].to_numpy()
        if col.endswith("_date"):
            ok = (x == y).all()
        else:
            diff = np.abs(x - y)
            worst = max(worst, float(diff.max(initial=0.0)))
            ok = np.allclose(x, y, rtol=1e-9, atol=1e-6)
        if not ok:
            bad.append(col)
    return {"equal": not bad, "columns": len(columns), "rows": len(a),
            "max_abs_diff": worst, "mismatched": bad}  # fmt: skip


def run(warehouse: Path, work: Path, repeat: int = 2, compare_python: str | None = None) -> dict:
    """Time every implementation on ``warehouse``'s raw.transactions; returns the report."""
    work.mkdir(parents=True, exist_ok=True)
    parquet = (work / "transactions.parquet").resolve()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set enable_progress_bar = false")
        con.execute(f"copy raw.transactions to '{parquet}' (format parquet)")
        rows = con.execute("select count(*) from raw.transactions").fetchone()[0]
    report: dict = {"rows": rows, "repeat": repeat, "seconds": {}, "checks": {}}
    secs = report["seconds"]

    # dbt, in process: parse once, then run the models on the parsed manifest
    db = work / "dbt" / "rfm.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    _raw_view(db, parquet)
    dbt_vars = json.dumps({"warehouse_path": str(db.resolve()), "drop_exact_duplicates": True})
    common = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
              "--target-path", str(work / "dbt" / "target"), "--log-path", str(work / "dbt"),
              "--quiet", "--no-use-colors", "--no-version-check", "--vars", dbt_vars]  # fmt: skip
    t0 = time.perf_counter()
    parsed = invoke_dbt(["parse", *common])
    secs["dbt_parse"] = time.perf_counter() - t0
    if not parsed.success:
        raise RuntimeError(f"dbt parse failed: {parsed.error}")

    def dbt_run():
        res = invoke_dbt(["run", "--full-refresh", "--select", f"+{MODEL}", *common], parsed.result)
        if not res.success:
            raise RuntimeError(f"dbt run failed: {res.error}")
        return res.result.results

    secs["dbt"], results = _best(dbt_run, repeat)
    secs["dbt_models_execution"] = sum(r.execution_time for r in results)
    report["dbt_model_seconds"] = {r.node.name: round(r.execution_time, 2) for r in results}
    with duckdb.connect(str(db), read_only=True) as con:
        ref = con.sql(f"select * from intermediate.{MODEL}").df()

    # the SQL dbt compiled, run directly (a database file of the same name: same catalog)
    sql_db = work / "sql" / db.name
    sql_db.parent.mkdir(parents=True, exist_ok=True)
    _raw_view(sql_db, parquet)
    statements = []
    for r in results:
        kind = "view" if r.node.config.materialized == "view" else "table"
        schema = r.node.relation_name.rsplit(".", 1)[0]
        statements += [f"create schema if not exists {schema}",
                       f"create or replace {kind} {r.node.relation_name} as {r.node.compiled_code}"]  # fmt: skip

    def dbt_sql():
        with duckdb.connect(str(sql_db)) as con:
            con.execute("set enable_progress_bar = false")
            for s in statements:
                con.execute(s)
            return con.sql(f"select * from intermediate.{MODEL}").df()

    secs["dbt_sql"], out = _best(dbt_sql, repeat)
    report["checks"]["dbt_sql"] = compare(ref, out)

    def plain(sql: str):
        with duckdb.connect(str(work / "plain.duckdb")) as con:
            con.execute("set enable_progress_bar = false")
            con.execute(f"create or replace table rfm as {sql}", {"path": str(parquet)})
            return con.sql("select * from rfm").df()

    secs["duckdb"], out = _best(lambda: plain(PLAIN_SQL), repeat)
    report["checks"]["duckdb"] = compare(ref, out)
    secs["pandas"], out = _best(lambda: rfm_pandas(parquet), repeat)
    report["checks"]["pandas"] = compare(ref, out)
    # the textbook version (no duplicate removal, 8 columns): equal only on input
    # without exact duplicate lines, as the generated data is
    secs["duckdb_minimal"], out = _best(lambda: plain(MINIMAL_SQL), repeat)
    report["checks"]["duckdb_minimal"] = compare(ref, out, MINIMAL)
    secs["pandas_minimal"], out = _best(lambda: rfm_pandas_minimal(parquet), repeat)
    report["checks"]["pandas_minimal"] = compare(ref, out, MINIMAL)

    if compare_python:
        polars_out = work / "polars.parquet"
        proc = subprocess.run(
            [compare_python, str(HERE / "rfm_polars.py"), str(parquet), str(polars_out),
             str(repeat)], capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode == 0:
            secs["polars"] = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
            report["checks"]["polars"] = compare(ref, pd.read_parquet(polars_out))
        else:
            report["polars_error"] = proc.stderr.strip()[-400:]
    report["seconds"] = {k: round(v, 2) for k, v in secs.items()}
    shutil.rmtree(work, ignore_errors=True)
    return report
