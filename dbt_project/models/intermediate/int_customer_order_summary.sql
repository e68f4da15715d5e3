{#
    Order-based facts per customer as of the as-of date: RFM inputs, tenure,
    spend trend, returns, product breadth. One row per customer with at least
    one transaction line before the as-of date (customers with only returns too).
    Money columns are exact type_money() decimals (summed with sum_money, so re-runs
    are bit-identical); customer_features casts them to DOUBLE. The ratios
    (monetary_avg, return_rate) are one DOUBLE division of exact values.
#}

{%- set window_days = var('spend_trend_window_days', 90) | int %}

with

orders as (

    select * from {{ ref('int_orders_as_of') }}

),

lines as (

    select * from {{ ref('int_transactions_as_of') }}

),

as_of as (

    select
        as_of_date,
        {{ add_days(-window_days, 'as_of_date') }} as last_window_start,
        {{ add_days(-2 * window_days, 'as_of_date') }} as prev_window_start

    from {{ ref('int_as_of_date') }}

),

order_facts as (

    select
        orders.customer_id,
        min(orders.order_date) as first_order_date,
        max(orders.order_date) as last_order_date,
        count(distinct case when not orders.is_return_order then orders.order_id end) as frequency,
        {{ sum_money('orders.net_amount') }} as monetary_total,
        {{ sum_money('orders.gross_amount') }} as gross_sales,
        {{ sum_money('orders.returned_amount') }} as returned_amount,
        sum(orders.return_line_count) as n_returns,
        {{ sum_money(
            'case when orders.order_date >= as_of.last_window_start then orders.net_amount else 0 end'
        ) }} as spend_last_window,
        {{ sum_money(
            'case when orders.order_date >= as_of.prev_window_start'
            ~ ' and orders.order_date < as_of.last_window_start then orders.net_amount else 0 end'
        ) }} as spend_prev_window

    from orders
    cross join as_of
    group by orders.customer_id

),

line_facts as (

    select
        customer_id,
        count(distinct case when not is_return then product_id end) as distinct_products

    from lines
    group by customer_id

),

final as (

    select
        order_facts.customer_id,
        as_of.as_of_date,
        order_facts.first_order_date,
        order_facts.last_order_date,

        {{ dbt.safe_cast(dbt.datediff('order_facts.last_order_date', 'as_of.as_of_date', 'day'), dbt.type_int()) }}
            as recency_days,
        {{ dbt.safe_cast('order_facts.frequency', dbt.type_bigint()) }} as frequency,
        order_facts.monetary_total,
        {{ dbt.safe_cast(
            'case when order_facts.frequency > 0 then '
            ~ dbt.safe_cast('order_facts.gross_sales', type_double())
            ~ ' / order_facts.frequency else 0 end',
            type_double()
        ) }} as monetary_avg,
        {{ dbt.safe_cast(dbt.datediff('order_facts.first_order_date', 'as_of.as_of_date', 'day'), dbt.type_int()) }}
            as tenure_days,

        order_facts.spend_last_window as spend_last_90d,
        order_facts.spend_prev_window as spend_prev_90d,
        {{ dbt.safe_cast('order_facts.spend_last_window - order_facts.spend_prev_window', type_money()) }}
            as spend_trend_90d,

        order_facts.gross_sales,
        order_facts.returned_amount,
        {{ dbt.safe_cast(
            'case when order_facts.gross_sales > 0 then '
            ~ dbt.safe_cast('order_facts.returned_amount', type_double())
            ~ ' / ' ~ dbt.safe_cast('order_facts.gross_sales', type_double()) ~ ' else 0 end',
            type_double()
        ) }} as return_rate,
        {{ dbt.safe_cast('order_facts.n_returns', dbt.type_bigint()) }} as n_returns,
        {{ dbt.safe_cast('coalesce(line_facts.distinct_products, 0)', dbt.type_bigint()) }} as distinct_products

    from order_facts
    cross join as_of
    left join line_facts
        on order_facts.customer_id = line_facts.customer_id

)

select * from final
