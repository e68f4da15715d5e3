{#
    lifetimes-style summary (Fader & Hardie; lifetimes.utils.summary_data_from_transaction_data
    with freq='D') as of the as-of date. One row per customer with at least one
    purchase day; returns-only customers have no row.
      lt_frequency      number of repeat purchase days (distinct purchase days - 1)
      lt_recency_days   last purchase day - first purchase day
      lt_t_days         as-of date - first purchase day
      lt_monetary_value mean spend of the repeat purchase days (first day excluded), 0 without repeats
#}

with

purchase_days as (

    select * from {{ ref('int_customer_purchase_days') }}

),

as_of as (

    select as_of_date from {{ ref('int_as_of_date') }}

),

per_customer as (

    select
        customer_id,
        count(*) as n_purchase_days,
        min(purchase_date) as first_purchase_date,
        max(purchase_date) as last_purchase_date,
        {# Exact sums only (macros/exact_aggregates.sql): re-runs give identical bits. #}
        {{ sum_money('case when purchase_day_number > 1 then day_spend else 0 end') }} as repeat_spend,
        {{ exact_avg('days_since_previous_purchase') }} as gap_mean,
        {{ exact_stddev_samp_int('days_since_previous_purchase') }} as gap_std

    from purchase_days
    group by customer_id

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
