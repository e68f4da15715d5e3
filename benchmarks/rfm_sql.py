"""The SQL of benchmarks/rfm.py: the RFM block as a user would write it for DuckDB.

``PLAIN_SQL`` gives the same output as dbt's int_customer_order_summary (exact
duplicate lines removed, order level, 90-day windows, returns, product breadth);
``MINIMAL_SQL`` is the textbook recency / frequency / monetary aggregate (8 columns, no
duplicate removal). Both read the Parquet file given as ``$path``.
"""

CANONICAL = [
    "customer_id", "order_id", "product_id", "category", "country", "channel",
    "quantity", "unit_price", "amount", "is_cancellation", "ordered_at",
]  # fmt: skip
WINDOW = 90  # days of the "last" and "previous" spend windows (dbt var spend_trend_window_days)

PLAIN_SQL = f"""
with lines as (
    select distinct {", ".join(CANONICAL)} from read_parquet($path)
),
flagged as (
    select *, cast(ordered_at as date) as order_date,
        (quantity < 0 or amount < 0 or is_cancellation) as is_return
    from lines
),
as_of as (select max(order_date) + 1 as as_of from flagged),
kept as (select flagged.* from flagged, as_of where order_date < as_of),
orders as (
    select customer_id, order_id, min(order_date) as order_date, sum(amount) as net,
        sum(case when is_return then 0 else amount end) as gross,
        sum(case when is_return then -amount else 0 end) as returned,
        count(*) filter (where is_return) as return_lines, bool_and(is_return) as is_return_order
    from kept group by customer_id, order_id
),
customers as (
    select customer_id, min(order_date) as first_order_date, max(order_date) as last_order_date,
        count(distinct order_id) filter (where not is_return_order) as frequency,
        sum(net) as monetary_total, sum(gross) as gross_sales, sum(returned) as returned_amount,
        sum(return_lines) as n_returns,
        sum(net) filter (where order_date >= as_of - {WINDOW}) as spend_last_90d,
        sum(net) filter (where order_date >= as_of - {2 * WINDOW}
                          and order_date < as_of - {WINDOW}) as spend_prev_90d
    from orders, as_of group by customer_id
),
products as (
    select customer_id, count(distinct product_id) as distinct_products
    from kept where not is_return group by customer_id
)
select customers.customer_id, first_order_date, last_order_date,
    date_diff('day', last_order_date, as_of) as recency_days, frequency, monetary_total,
    case when frequency > 0 then gross_sales / frequency else 0 end as monetary_avg,
    date_diff('day', first_order_date, as_of) as tenure_days,
    coalesce(spend_last_90d, 0) as spend_last_90d, coalesce(spend_prev_90d, 0) as spend_prev_90d,
    coalesce(spend_last_90d, 0) - coalesce(spend_prev_90d, 0) as spend_trend_90d,
    gross_sales, returned_amount,
    case when gross_sales > 0 then returned_amount / gross_sales else 0 end as return_rate,
    n_returns, coalesce(distinct_products, 0) as distinct_products
from customers cross join as_of left join products using (customer_id)
"""


MINIMAL_SQL = """
with lines as (
    select customer_id, order_id, cast(ordered_at as date) as order_date, amount,
        (quantity < 0 or amount < 0 or is_cancellation) as is_return
    from read_parquet($path)
),
as_of as (select max(order_date) + 1 as as_of from lines),
customers as (
    select customer_id, min(order_date) as first_order_date, max(order_date) as last_order_date,
        count(distinct order_id) filter (where not is_return) as frequency,
        sum(amount) as monetary_total, sum(amount) filter (where not is_return) as gross
    from lines group by customer_id
)
select customer_id, first_order_date, last_order_date,
    date_diff('day', last_order_date, as_of) as recency_days, frequency, monetary_total,
    case when frequency > 0 then gross / frequency else 0 end as monetary_avg,
    date_diff('day', first_order_date, as_of) as tenure_days
from customers cross join as_of
"""
