{#
    lifetimes-style summary (Fader & Hardie; lifetimes.utils.summary_data_from_transaction_data
    with freq='D') as of the as-of date. One row per customer with at least one
    purchase day; returns-only customers have no row.
      lt_frequency      number of repeat purchase days (distinct purchase days - 1)
      lt_recency_days   last purchase day - first purchase day
      lt_t_days         as-of date - first purchase day
      lt_monetary_value mean spend of the repeat purchase days (first day excluded), 0 without repeats
#}

-- depends_on: {{ ref('int_customer_order_totals') }}
-- depends_on: {{ ref('int_orders_as_of') }}

with

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

{# The purchase days as of the default date are all of them (int_customer_order_summary). #}
per_customer as (

    {% if as_of_date_is_default() -%}
    select
        customer_id,
        n_purchase_days,
        first_purchase_date,
        last_purchase_date,
        repeat_spend,
        gap_mean,
        gap_std

    from {{ ref('int_customer_order_totals') }}
    where n_purchase_days > 0
    {%- else -%}
    {{ customer_purchase_day_facts(ref('int_orders_as_of')) }}
    {%- endif %}

),

final as (

    select
        per_customer.customer_id,
        per_customer.first_purchase_date,
        per_customer.last_purchase_date,
        {{ dbt.safe_cast('per_customer.n_purchase_days', dbt.type_bigint()) }} as n_purchase_days,
        {{ dbt.safe_cast('per_customer.n_purchase_days - 1', dbt.type_bigint()) }} as lt_frequency,
        {{ dbt.safe_cast(
            dbt.datediff('per_customer.first_purchase_date', 'per_customer.last_purchase_date', 'day'),
            dbt.type_int()
        ) }} as lt_recency_days,
        {{ dbt.safe_cast(
            dbt.datediff('per_customer.first_purchase_date', 'as_of.as_of_date', 'day'),
            dbt.type_int()
        ) }} as lt_t_days,
        {{ dbt.safe_cast(
            'case when per_customer.n_purchase_days > 1'
            ~ ' then ' ~ dbt.safe_cast('per_customer.repeat_spend', type_double())
            ~ ' / (per_customer.n_purchase_days - 1) else 0 end',
            type_double()
        ) }} as lt_monetary_value,
        {{ dbt.safe_cast(
            'case when per_customer.n_purchase_days >= 2 then per_customer.gap_mean end', type_double()
        ) }} as inter_purchase_days_mean,
        {{ dbt.safe_cast(
            'case when per_customer.n_purchase_days >= 3 then per_customer.gap_std end', type_double()
        ) }} as inter_purchase_days_std

    from per_customer
    cross join as_of

)

select * from final
