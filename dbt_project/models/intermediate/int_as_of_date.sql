{#
    The as-of date of every feature and score: the dbt var `as_of_date`
    ('YYYY-MM-DD') when given, else the day after the last transaction date.
    Transactions on or after it are excluded from the features.
#}

{%- set as_of_var = var('as_of_date', none) %}

with

transactions as (

    select * from {{ ref('int_transactions_deduped') }}

),

bounds as (

    select
        min(order_date) as first_transaction_date,
        max(order_date) as last_transaction_date

    from transactions

),

final as (

    select
        {% if as_of_var is not none and as_of_var | string | trim != '' -%}
        {{ date_literal(as_of_var | string | trim) }} as as_of_date,
        true as is_as_of_date_from_var,
        {%- else -%}
        {{ add_days(1, 'last_transaction_date') }} as as_of_date,
        false as is_as_of_date_from_var,
        {%- endif %}
        first_transaction_date,
        last_transaction_date

    from bounds

)

select * from final
