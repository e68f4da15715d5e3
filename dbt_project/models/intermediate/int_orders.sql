{{ config(
    materialized=transactions_materialization(),
    incremental_strategy='delete+insert',
    unique_key='order_id',
    on_schema_change='sync_all_columns',
    pre_hook='{{ delete_if_rebuilding() }}',
) }}

{#
    Every order (not limited by the as-of date); source of fct_orders, of the
    per-customer totals and of int_orders_as_of.

    Incremental (macros/incremental.sql): the orders with a line written to
    int_transactions_deduped since this table's newest row are aggregated again from
    all their lines and replace their old rows.
#}

{%- set state = load_state() %}

with

{% if state.mode == 'incremental' -%}

changed_orders as (

    select order_id
    from {{ ref('int_transactions_deduped') }}
    where load_seq > {{ state.since }}

),

lines as (

    select *
    from {{ ref('int_transactions_deduped') }}
    where order_id in (select order_id from changed_orders)

),

{%- else %}

lines as (

    select * from {{ ref('int_transactions_deduped') }}

),

{%- endif %}

orders as (

    {{ aggregate_orders('lines') }}

),

final as (

    select
        orders.*,
        {{ load_seq_literal(state) }} as load_seq

    from orders

)

select * from final
