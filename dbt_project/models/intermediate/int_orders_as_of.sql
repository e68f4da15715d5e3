{# Orders built from the lines before the as-of date only; source of the features. #}

with

orders as (

    {{ aggregate_orders(ref('int_transactions_as_of')) }}

)

select * from orders
