{#
    One row per segment: segment_type 'cluster' (ML clusters, by cluster_label)
    and 'rfm' (RFM segments). Shares are of all customers in dim_customer, so
    within each segment_type customer_share and revenue_share sum to 1.
#}

with

customers as (

    select * from {{ ref('dim_customer') }}

),

totals as (

    select
        count(*) as all_customers,
        sum(monetary_total) as all_revenue

    from customers

),

segmented as (

    select
        'cluster' as segment_type,
        cluster_label as segment_name,
        customer_id,
        recency_days,
        frequency,
        monetary_total
    from customers

    union all

    select
        'rfm' as segment_type,
        rfm_segment as segment_name,
        customer_id,
        recency_days,
        frequency,
        monetary_total
    from customers

),

per_segment as (

    select
        segment_type,
        segment_name,
        count(*) as customers,
        sum(monetary_total) as revenue,
        avg({{ dbt.safe_cast('recency_days', type_double()) }}) as mean_recency_days,
        avg({{ dbt.safe_cast('frequency', type_double()) }}) as mean_frequency,
        avg(monetary_total) as mean_monetary_total

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
            'case when totals.all_revenue <> 0 then per_segment.revenue / totals.all_revenue end',
            type_double()
        ) }} as revenue_share,
        {{ dbt.safe_cast('per_segment.mean_recency_days', type_double()) }} as mean_recency_days,
        {{ dbt.safe_cast('per_segment.mean_frequency', type_double()) }} as mean_frequency,
        {{ dbt.safe_cast('per_segment.mean_monetary_total', type_double()) }} as mean_monetary_total

    from per_segment
    cross join totals

)

select * from final
