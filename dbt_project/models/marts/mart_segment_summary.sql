{#
    One row per segment: segment_type 'cluster' (ML clusters, by segment_name)
    and 'rfm' (RFM segments). Shares are of all customers in dim_customer, so
    within each segment_type customer_share and revenue_share sum to 1.

    Every sum and mean is exact (macros/exact_aggregates.sql), so re-runs give
    identical bits: a DOUBLE sum would depend on how DuckDB's threads split the rows.
#}

with

customers as (

    select
        customer_id,
        segment_name,
        rfm_segment,
        recency_days,
        frequency,
        {#
            dim_customer.monetary_total is the DOUBLE image of an exact type_money()
            sum (4 decimals); casting it back recovers that decimal exactly for any
            |value| below ~4e11, so the money sums below are exact.
        #}
        {{ dbt.safe_cast('monetary_total', type_money()) }} as monetary_total,
        {# Same round trip for the scores (4 decimals money, 10 decimals probability). #}
        {{ dbt.safe_cast('clv', type_money()) }} as clv,
        clv_horizon_days,
        {{ dbt.safe_cast('revenue_at_risk', type_money()) }} as revenue_at_risk,
        {{ dbt.safe_cast('churn_probability', type_probability()) }} as churn_probability

    from {{ ref('dim_customer') }}

),

totals as (

    select
        count(*) as all_customers,
        {{ sum_money('monetary_total') }} as all_revenue,
        {# One run, one horizon: the same on every row. #}
        max(clv_horizon_days) as clv_horizon_days

    from customers

),

segmented as (

    select
        'cluster' as segment_type,
        segment_name,
        customer_id,
        recency_days,
        frequency,
        monetary_total,
        clv,
        revenue_at_risk,
        churn_probability
    from customers

    union all

    select
        'rfm' as segment_type,
        rfm_segment as segment_name,
        customer_id,
        recency_days,
        frequency,
        monetary_total,
        clv,
        revenue_at_risk,
        churn_probability
    from customers

),

per_segment as (

    select
        segment_type,
        segment_name,
        count(*) as customers,
        {{ sum_money('monetary_total') }} as revenue,
        {{ exact_avg('recency_days') }} as mean_recency_days,
        {{ exact_avg('frequency') }} as mean_frequency,
        {{ exact_avg('monetary_total') }} as mean_monetary_total,
        {{ sum_money('clv') }} as clv,
        {{ exact_avg('clv') }} as mean_clv,
        {{ sum_money('revenue_at_risk') }} as revenue_at_risk,
        {{ exact_avg('churn_probability') }} as mean_churn_probability

    from segmented
    group by segment_type, segment_name

),

final as (

    select
        {{ dbt.safe_cast('per_segment.segment_type', dbt.type_string()) }} as segment_type,
        {{ dbt.safe_cast('per_segment.segment_name', dbt.type_string()) }} as segment_name,
        {{ dbt.safe_cast('per_segment.customers', dbt.type_bigint()) }} as customers,
        {{ dbt.safe_cast('per_segment.customers', type_double()) }}
            / {{ dbt.safe_cast('totals.all_customers', type_double()) }} as customer_share,
        {{ dbt.safe_cast('per_segment.revenue', type_double()) }} as revenue,
        {{ dbt.safe_cast(
            'case when totals.all_revenue <> 0 then '
            ~ dbt.safe_cast('per_segment.revenue', type_double()) ~ ' / '
            ~ dbt.safe_cast('totals.all_revenue', type_double()) ~ ' end',
            type_double()
        ) }} as revenue_share,
        {{ dbt.safe_cast('per_segment.mean_recency_days', type_double()) }} as mean_recency_days,
        {{ dbt.safe_cast('per_segment.mean_frequency', type_double()) }} as mean_frequency,
        {{ dbt.safe_cast('per_segment.mean_monetary_total', type_double()) }} as mean_monetary_total,
        {{ dbt.safe_cast('per_segment.clv', type_double()) }} as clv,
        {{ dbt.safe_cast('per_segment.mean_clv', type_double()) }} as mean_clv,
        {{ dbt.safe_cast('per_segment.mean_churn_probability', type_double()) }} as mean_churn_probability,
        {{ dbt.safe_cast('per_segment.revenue_at_risk', type_double()) }} as revenue_at_risk,
        {{ dbt.safe_cast('totals.clv_horizon_days', dbt.type_int()) }} as clv_horizon_days

    from per_segment
    cross join totals

)

select * from final
