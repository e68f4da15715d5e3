{#
    One row per (cohort_month, months_since_first): acquisition cohorts by the month
    of the customer's first purchase (non-return) order, and how many of them bought
    again in each later calendar month, up to the month of the day before the as-of
    date. Orders before the as-of date only (int_orders_as_of), so the cohorts are
    those of dim_customer. Every month of a cohort has a row, also months nobody
    bought in (active_customers 0).

    Money is summed exactly (macros/exact_aggregates.sql), so re-runs give identical bits.
#}

with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

orders as (

    select
        customer_id,
        {{ dbt.safe_cast(dbt.date_trunc('month', 'order_date'), 'date') }} as order_month,
        net_amount,
        is_return_order

    from {{ ref('int_orders_as_of') }}

),

first_purchase as (

    select
        customer_id,
        min(order_month) as cohort_month

    from orders
    where not is_return_order
    group by customer_id

),

cohorts as (

    select
        cohort_month,
        count(*) as cohort_customers

    from first_purchase
    group by cohort_month

),

{# Calendar months up to the month of the day before the as-of date (dim_date is contiguous). #}
months as (

    select distinct
        {{ dbt.safe_cast(dbt.date_trunc('month', 'dim_date.date'), 'date') }} as month_start

    from {{ ref('dim_date') }} as dim_date
    cross join as_of
    where dim_date.date < as_of.as_of_date

),

grid as (

    select
        cohorts.cohort_month,
        cohorts.cohort_customers,
        months.month_start,
        {{ dbt.datediff('cohorts.cohort_month', 'months.month_start', 'month') }} as months_since_first

    from cohorts
    inner join months
        on months.month_start >= cohorts.cohort_month

),

{# Orders of cohort customers from their cohort month on (a return before the first purchase is left out). #}
cohort_orders as (

    select
        first_purchase.cohort_month,
        orders.order_month,
        orders.customer_id,
        orders.net_amount,
        orders.is_return_order

    from orders
    inner join first_purchase
        on orders.customer_id = first_purchase.customer_id
    where orders.order_month >= first_purchase.cohort_month

),

activity as (

    select
        cohort_month,
        order_month,
        count(distinct case when not is_return_order then customer_id end) as active_customers,
        {{ sum_money('net_amount') }} as revenue

    from cohort_orders
    group by cohort_month, order_month

),

final as (

    select
        grid.cohort_month,
        {{ dbt.safe_cast('grid.months_since_first', dbt.type_int()) }} as months_since_first,
        {{ dbt.safe_cast('grid.cohort_customers', dbt.type_bigint()) }} as cohort_customers,
        {{ dbt.safe_cast('coalesce(activity.active_customers, 0)', dbt.type_bigint()) }}
            as active_customers,
        {{ dbt.safe_cast('coalesce(activity.active_customers, 0)', type_double()) }}
            / {{ dbt.safe_cast('grid.cohort_customers', type_double()) }} as retention_rate,
        {{ dbt.safe_cast('coalesce(activity.revenue, 0)', type_double()) }} as revenue

    from grid
    left join activity
        on grid.cohort_month = activity.cohort_month
        and grid.month_start = activity.order_month

)

select * from final
