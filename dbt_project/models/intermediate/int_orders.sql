{{ config(materialized='table') }}

{# Every order (not limited by the as-of date); source of fct_orders. #}

with

orders as (

    {{ aggregate_orders(ref('int_transactions_deduped')) }}

)

select * from orders
