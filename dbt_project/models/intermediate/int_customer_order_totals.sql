{{ config(
    materialized=transactions_materialization(),
    incremental_strategy='delete+insert',
    unique_key='customer_id',
    on_schema_change='sync_all_columns',
    pre_hook='{{ delete_if_rebuilding() }}',
) }}

{#
    One row per customer with a transaction line (any date): the per-customer
    aggregates that do not depend on the as-of date: first / last order, frequency,
    money, returns, product breadth, and lifetimes' purchase days summarised
    (macros customer_order_facts / customer_purchase_day_facts). With the default
    as-of date every line counts, and int_customer_order_summary and
    int_customer_lifetimes only add the as-of-dependent columns (recency, tenure, T,
    the spend windows) to these rows.

    Incremental (macros/incremental.sql): the customers with an order written to
    int_orders since this table's newest row are aggregated again from all their
    orders and lines and replace their old rows.
#}

{%- set state = load_state() %}

with

{% if state.mode == 'incremental' -%}

changed_customers as (

    select customer_id
    from {{ ref('int_orders') }}
    where load_seq > {{ state.since }}

),

orders as (

    select *
    from {{ ref('int_orders') }}
    where customer_id in (select customer_id from changed_customers)

),

lines as (

    select *
    from {{ ref('int_transactions_deduped') }}
    where customer_id in (select customer_id from changed_customers)

),

{%- else %}

orders as (

    select * from {{ ref('int_orders') }}

),

lines as (

    select * from {{ ref('int_transactions_deduped') }}

),

{%- endif %}

order_facts as (

    {{ customer_order_facts('orders', 'lines') }}

),

purchase_day_facts as (

    {{ customer_purchase_day_facts('orders') }}

),

final as (

    select
        order_facts.customer_id,
        order_facts.first_order_date,
        order_facts.last_order_date,
        order_facts.frequency,
        order_facts.monetary_total,
        order_facts.gross_sales,
        order_facts.returned_amount,
        order_facts.n_returns,
        order_facts.distinct_products,
        {{ dbt.safe_cast('coalesce(purchase_day_facts.n_purchase_days, 0)', dbt.type_bigint()) }}
            as n_purchase_days,
        purchase_day_facts.first_purchase_date,
        purchase_day_facts.last_purchase_date,
        purchase_day_facts.repeat_spend,
        purchase_day_facts.gap_mean,
        purchase_day_facts.gap_std,
        {{ load_seq_literal(state) }} as load_seq

    from order_facts
    left join purchase_day_facts
        on order_facts.customer_id = purchase_day_facts.customer_id

)

select * from final