{#
    One row per (segment_name, months_since_first): retention curves of the current
    segments (dim_customer.segment_name). Month m of a customer is the m-th calendar
    month after the month of their first purchase (non-return) order, as in
    mart_cohort_retention. A customer counts at month m only when that month ended
    before the as-of date, so young customers (and the partial month of the as-of
    date) do not pull the curve down; customers is therefore non-increasing in m.
    Orders before the as-of date only (int_orders_as_of).
#}

with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

orders as (

    select
        customer_id,
        {{ dbt.safe_cast(dbt.date_trunc('month', 'order_date'), 'date') }} as order_month,
        is_return_order

    from {{ ref('int_orders_as_of') }}

),

purchase_months as (

    select distinct
        customer_id,
        order_month

    from orders
    where not is_return_order

),

customers as (

    select
        dim_customer.customer_id,
        dim_customer.segment_name,
        min(purchase_months.order_month) as first_purchase_month

    from {{ ref('dim_customer') }} as dim_customer
    inner join purchase_months
        on dim_customer.customer_id = purchase_months.customer_id
    group by dim_customer.customer_id, dim_customer.segment_name

),

{# Complete calendar months before the as-of date (dim_date is contiguous). #}
complete_months as (

    select distinct
        {{ dbt.safe_cast(dbt.date_trunc('month', 'dim_date.date'), 'date') }} as month_start

    from {{ ref('dim_date') }} as dim_date
    cross join as_of
    where {{ dbt.safe_cast(
        dbt.dateadd('month', 1, dbt.date_trunc('month', 'dim_date.date')), 'date'
    ) }} <= as_of.as_of_date

),

customer_months as (

    select
        customers.customer_id,
        customers.segment_name,
        complete_months.month_start,
        {{ dbt.datediff('customers.first_purchase_month', 'complete_months.month_start', 'month') }}
            as months_since_first,
        case when purchase_months.customer_id is not null then 1 else 0 end as is_active

    from customers
    inner join complete_months
        on complete_months.month_start >= customers.first_purchase_month
    left join purchase_months
        on customers.customer_id = purchase_months.customer_id
        and complete_months.month_start = purchase_months.order_month

),

per_segment as (

    select
        segment_name,
        months_since_first,
        count(*) as customers,
        sum(is_active) as active_customers

    from customer_months
    group by segment_name, months_since_first

),

final as (

    select
        {{ dbt.safe_cast('segment_name', dbt.type_string()) }} as segment_name,
        {{ dbt.safe_cast('months_since_first', dbt.type_int()) }} as months_since_first,
        {{ dbt.safe_cast('customers', dbt.type_bigint()) }} as customers,
        {{ dbt.safe_cast('active_customers', dbt.type_bigint()) }} as active_customers,
        {{ dbt.safe_cast('active_customers', type_double()) }}
            / {{ dbt.safe_cast('customers', type_double()) }} as retention_rate

    from per_segment

)

select * from final
