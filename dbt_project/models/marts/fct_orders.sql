{#
    One row per order, all orders (not limited by the as-of date).
    is_before_as_of_date marks the orders the features and segments were computed from.
#}

with

orders as (

    select * from {{ ref('int_orders') }}

),

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

final as (

    select
        ----------  ids
        orders.order_id,
        orders.customer_id,
        {{ date_key('orders.order_date') }} as date_key,

        ----------  timestamps
        orders.order_date,
        orders.ordered_at,

        ----------  measures
        {# Exact decimal sums upstream; DOUBLE for Power BI. #}
        {{ dbt.safe_cast('orders.net_amount', type_double()) }} as net_amount,
        {{ dbt.safe_cast('orders.gross_amount', type_double()) }} as gross_amount,
        {{ dbt.safe_cast('orders.returned_amount', type_double()) }} as returned_amount,
        {{ dbt.safe_cast('orders.item_count', type_double()) }} as item_count,
        orders.line_count,
        orders.distinct_products,

        ----------  flags
        orders.is_return_order,
        orders.order_date < as_of.as_of_date as is_before_as_of_date

    from orders
    cross join as_of

)

select * from final
