{{ config(materialized='view') }}

{#
    Orders built from the lines before the as-of date only; source of the features
    as of an earlier date and of the retention marts.

    A view over int_orders: an order whose last line is before the as-of date is
    its int_orders row as it is. Only an order that straddles the date (first line
    before it, a later one on or after it) is aggregated again from its lines before
    the date. With the default as-of date (the day after the last transaction) every
    order is of the first kind.
#}

with

orders as (

    select * from {{ ref('int_orders') }}

),

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

complete_orders as (

    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_date,
        orders.net_amount,
        orders.gross_amount,
        orders.returned_amount,
        orders.item_count,
        orders.line_count,
        orders.return_line_count,
        orders.distinct_products,
        orders.is_return_order,
        orders.last_line_date

    from orders
    cross join as_of
    where orders.last_line_date < as_of.as_of_date

),

straddling_orders as (

    select orders.order_id, orders.customer_id

    from orders
    cross join as_of
    where orders.order_date < as_of.as_of_date
        and orders.last_line_date >= as_of.as_of_date

),

straddling_lines as (

    select lines.*

    from {{ ref('int_transactions_as_of') }} as lines
    inner join straddling_orders
        on lines.order_id = straddling_orders.order_id
        and lines.customer_id = straddling_orders.customer_id

),

straddling_orders_before_as_of as (

    {{ aggregate_orders('straddling_lines') }}

),

final as (

    select * from complete_orders
    union all
    select * from straddling_orders_before_as_of

)

select * from final
