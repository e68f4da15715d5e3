"""The RFM features of benchmarks/rfm.py as a Polars user would compute them.

Runs in the comparison venv (polars is not a project dependency):

    python rfm_polars.py TRANSACTIONS.parquet OUT.parquet [REPEAT]

Prints {"seconds": best of REPEAT} (read + compute) as the last line; writes the result.
"""

from __future__ import annotations

import json
import sys
import time

import polars as pl

CANONICAL = [
    "customer_id", "order_id", "product_id", "category", "country", "channel",
    "quantity", "unit_price", "amount", "is_cancellation", "ordered_at",
]  # fmt: skip
WINDOW = 90


def rfm(path: str) -> pl.DataFrame:
    lines = (
        pl.scan_parquet(path)
        .select(CANONICAL)
        .unique()
        .with_columns(
            order_date=pl.col("ordered_at").dt.date(),
            is_return=(pl.col("quantity") < 0) | (pl.col("amount") < 0) | pl.col("is_cancellation"),
        )
    )
    as_of = lines.select(pl.col("order_date").max() + pl.duration(days=1)).collect().item()
    lines = lines.filter(pl.col("order_date") < as_of)
    orders = lines.group_by("customer_id", "order_id").agg(
        order_date=pl.col("order_date").min(),
        net=pl.col("amount").sum(),
        gross=pl.when(pl.col("is_return")).then(0.0).otherwise(pl.col("amount")).sum(),
        returned=pl.when(pl.col("is_return")).then(-pl.col("amount")).otherwise(0.0).sum(),
        return_lines=pl.col("is_return").sum(),
        is_return_order=pl.col("is_return").all(),
    )
    last = pl.col("order_date") >= pl.lit(as_of) - pl.duration(days=WINDOW)
    prev = (pl.col("order_date") >= pl.lit(as_of) - pl.duration(days=2 * WINDOW)) & ~last
    customers = orders.group_by("customer_id").agg(
        first_order_date=pl.col("order_date").min(),
        last_order_date=pl.col("order_date").max(),
        frequency=pl.col("order_id").filter(~pl.col("is_return_order")).n_unique(),
        monetary_total=pl.col("net").sum(),
        gross_sales=pl.col("gross").sum(),
        returned_amount=pl.col("returned").sum(),
        n_returns=pl.col("return_lines").sum(),
        spend_last_90d=pl.col("net").filter(last).sum(),
        spend_prev_90d=pl.col("net").filter(prev).sum(),
    )
    products = (
        lines.filter(~pl.col("is_return"))
        .group_by("customer_id")
        .agg(distinct_products=pl.col("product_id").n_unique())
    )
    out = customers.join(products, on="customer_id", how="left").with_columns(
        distinct_products=pl.col("distinct_products").fill_null(0),
        recency_days=(pl.lit(as_of) - pl.col("last_order_date")).dt.total_days(),
        tenure_days=(pl.lit(as_of) - pl.col("first_order_date")).dt.total_days(),
        monetary_avg=pl.when(pl.col("frequency") > 0)
        .then(pl.col("gross_sales") / pl.col("frequency"))
        .otherwise(0.0),
        spend_trend_90d=pl.col("spend_last_90d") - pl.col("spend_prev_90d"),
        return_rate=pl.when(pl.col("gross_sales") > 0)
        .then(pl.col("returned_amount") / pl.col("gross_sales"))
        .otherwise(0.0),
    )
    return out.collect()


def main() -> None:
    path, out, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1
    best, frame = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        frame = rfm(path)
        best = min(best, time.perf_counter() - t0)
    frame.write_parquet(out)
    print(json.dumps({"seconds": best, "polars": pl.__version__}))


if __name__ == "__main__":
    main()
