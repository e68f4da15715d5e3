{#
    What each customer of customer_features did in the `churn_horizon_days` days
    from the as-of date on: the holdout outcome that CLV and churn models built on
    the features as of an earlier cut-off are evaluated against
    (orchestration/cutoffs.py builds this model as of such a cut-off).

    The lines on or after the as-of date are the complement of int_transactions_as_of,
    grouped into orders by the same macro as int_orders, and a purchase day is what it
    is for the lifetimes columns (macro customer_purchase_day_facts: a day with a
    non-return order, spend = gross sales of those orders), so features and outcomes
    split every line once and count days the same way. With the default as-of date (the day after the last
    transaction) no line qualifies and every horizon is incomplete.
#}

{%- set horizon_days = var('churn_horizon_days') | int %}
{%- if horizon_days < 1 %}
    {{ exceptions.raise_compiler_error(
        "var churn_horizon_days must be a whole number of days >= 1, got '"
        ~ var('churn_horizon_days') ~ "'"
    ) }}
{%- endif %}

with

customers as (

    select customer_id, as_of_date from {{ ref('customer_features') }}

),

transactions as (

    select * from {{ ref('int_transactions_deduped') }}

),

horizon as (

    select
        as_of_date,
        {{ add_days(horizon_days, 'as_of_date') }} as horizon_end_date,
        {# Exclusive end of the data: a horizon ending later is not fully observed. #}
        {{ add_days(1, 'last_transaction_date') }} as data_end_date

    from {{ ref('int_as_of_date') }}

),

lines_from_as_of as (

    select transactions.*

    from transactions
    cross join horizon
    where transactions.order_date >= horizon.as_of_date

),

orders_from_as_of as (

    {{ aggregate_orders('lines_from_as_of') }}

),

purchase_days as (

    select
        customer_id,
        order_date as purchase_date,
        {{ sum_money('gross_amount') }} as day_spend

    from orders_from_as_of
    where not is_return_order
    group by customer_id, order_date

),

per_customer as (

    select
        purchase_days.customer_id,
        min(purchase_days.purchase_date) as next_purchase_date,
        count(case when purchase_days.purchase_date < horizon.horizon_end_date then 1 end)
            as purchase_days_in_horizon,
        {{ sum_money(
            'case when purchase_days.purchase_date < horizon.horizon_end_date'
            ~ ' then purchase_days.day_spend else 0 end'
        ) }} as spend_in_horizon

    from purchase_days
    cross join horizon
    group by purchase_days.customer_id

),

final as (

    select
        customers.customer_id,
        customers.as_of_date,
        {{ dbt.safe_cast(horizon_days, dbt.type_int()) }} as churn_horizon_days,
        horizon.horizon_end_date,
        per_customer.next_purchase_date,
        {{ dbt.safe_cast('coalesce(per_customer.purchase_days_in_horizon, 0)', dbt.type_bigint()) }}
            as purchase_days_in_horizon,
        {{ dbt.safe_cast('coalesce(per_customer.spend_in_horizon, 0)', type_double()) }}
            as spend_in_horizon,
        horizon.horizon_end_date <= horizon.data_end_date as is_horizon_complete,
        case
            when horizon.horizon_end_date <= horizon.data_end_date
                then coalesce(per_customer.purchase_days_in_horizon, 0) = 0
        end as churned

    from customers
    cross join horizon
    left join per_customer
        on customers.customer_id = per_customer.customer_id

)

select * from final
