{#
    One row per customer and purchase day before the as-of date (a day with at
    least one non-return order): lifetimes' "period" at daily resolution.
#}

with

orders as (

    select * from {{ ref('int_orders_as_of') }}

),

purchase_days as (

    select
        customer_id,
        order_date as purchase_date,
        {{ sum_money('gross_amount') }} as day_spend,
        count(*) as purchase_orders

    from orders
    where not is_return_order
    group by customer_id, order_date

),

sequenced as (

    select
        customer_id,
        purchase_date,
        {{ dbt.safe_cast(
            'row_number() over (partition by customer_id order by purchase_date)',
            dbt.type_int()
        ) }} as purchase_day_number,
        day_spend,
        {{ dbt.safe_cast('purchase_orders', dbt.type_bigint()) }} as purchase_orders,
        lag(purchase_date) over (partition by customer_id order by purchase_date)
            as previous_purchase_date

    from purchase_days

),

final as (

    select
        customer_id,
        purchase_date,
        purchase_day_number,
        day_spend,
        purchase_orders,
        previous_purchase_date,
        {{ dbt.safe_cast(dbt.datediff('previous_purchase_date', 'purchase_date', 'day'), dbt.type_int()) }}
            as days_since_previous_purchase

    from sequenced

)

select * from final
