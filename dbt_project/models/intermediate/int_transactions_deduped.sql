{{ config(materialized='table') }}

{#
    Exact duplicate lines (equal on every canonical column; the lineage columns
    source_file / source_row are ignored) are kept once: the first occurrence by
    file and row. Re-delivered files and copy-paste duplicates are the usual cause.
#}

{%- set canonical = transaction_canonical_columns() %}

with

transactions as (

    select * from {{ ref('stg_transactions') }}

),

ranked as (

    select
        transactions.*,
        row_number() over (
            partition by {{ canonical | join(', ') }}
            order by source_file nulls last, source_row nulls last
        ) as occurrence,
        count(*) over (partition by {{ canonical | join(', ') }}) as n_occurrences

    from transactions

),

deduped as (

    select
        transaction_line_key,
        customer_id,
        order_id,
        product_id,
        category,
        country,
        channel,
        quantity,
        unit_price,
        amount,
        is_cancellation,
        is_return,
        ordered_at,
        order_date,
        source_file,
        source_row,
        {{ dbt.safe_cast('n_occurrences', dbt.type_bigint()) }} as n_occurrences

    from ranked
    where occurrence = 1

)

select * from deduped
