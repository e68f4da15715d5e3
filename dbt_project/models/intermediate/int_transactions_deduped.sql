{{ config(materialized='table') }}

{#
    Exact duplicate lines (equal on every canonical column; the lineage columns
    source_file / source_row are ignored) are kept once: the first occurrence by
    file and row. Re-delivered files and copy-paste duplicates are the usual cause.

    With var drop_exact_duplicates = false (set from the project config, e.g. for
    CDNOW, whose file lists separate same-day purchases that look identical) every
    line is kept, and later occurrences get the occurrence number in their key.
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
        {% if var('drop_exact_duplicates', true) -%}
        transaction_line_key,
        {%- else -%}
        case
            when occurrence = 1 then transaction_line_key
            else transaction_line_key || '-' || {{ dbt.safe_cast('occurrence', dbt.type_string()) }}
        end as transaction_line_key,
        {%- endif %}
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
    {% if var('drop_exact_duplicates', true) -%}
    where occurrence = 1
    {%- endif %}

)

select * from deduped
