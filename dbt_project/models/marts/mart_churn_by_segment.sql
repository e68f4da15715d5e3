{#
    One row per (snapshot_date, segment_name) of fct_customer_snapshot: size, mean
    churn probability and revenue at risk as scored at that date, and the churn that
    actually followed: customers with no purchase (non-return) order in
    [snapshot_date, snapshot_date + churn_horizon_days), from all orders (fct_orders).
    The observed churn is NULL until the horizon is complete, i.e. while its end is
    after the day after the last order date in the data.

    Sums and means are exact (macros/exact_aggregates.sql), so re-runs give identical bits.
#}

{%- set horizon = var('churn_horizon_days') | int %}
{%- if horizon <= 0 %}
    {{ exceptions.raise_compiler_error("var churn_horizon_days must be a positive number of days") }}
{%- endif %}

with

snapshot as (

    select
        snapshot_date,
        customer_id,
        {#
            Rows written before fct_customer_snapshot had segment_name have none; they
            are named by their cluster id rather than dropped or merged.
        #}
        coalesce(
            segment_name,
            {{ dbt.concat([
                "'(unnamed cluster '",
                dbt.safe_cast('cluster_id', dbt.type_string()),
                "')'",
            ]) }}
        ) as segment_name,
        {# DOUBLE images of exact decimals (see mart_segment_summary): the round trip is exact. #}
        {{ dbt.safe_cast('churn_probability', type_probability()) }} as churn_probability,
        {{ dbt.safe_cast('revenue_at_risk', type_money()) }} as revenue_at_risk,
        {{ add_days(horizon, 'snapshot_date') }} as horizon_end

    from {{ ref('fct_customer_snapshot') }}

),

purchases as (

    select
        customer_id,
        order_date

    from {{ ref('fct_orders') }}
    where not is_return_order

),

data_end as (

    {# The day after the last order date: the horizon [start, end) is complete when end <= it. #}
    select {{ add_days(1, 'max(order_date)') }} as observed_until

    from {{ ref('fct_orders') }}

),

{# Snapshot rows with at least one purchase in their horizon (a join, not a correlated subquery, for portability). #}
retained as (

    select distinct
        snapshot.snapshot_date,
        snapshot.customer_id

    from snapshot
    inner join purchases
        on snapshot.customer_id = purchases.customer_id
        and purchases.order_date >= snapshot.snapshot_date
        and purchases.order_date < snapshot.horizon_end

),

outcomes as (

    select
        snapshot.snapshot_date,
        snapshot.customer_id,
        snapshot.segment_name,
        snapshot.churn_probability,
        snapshot.revenue_at_risk,
        snapshot.horizon_end <= data_end.observed_until as is_horizon_complete,
        case when retained.customer_id is null then 1 else 0 end as is_churned

    from snapshot
    cross join data_end
    left join retained
        on snapshot.snapshot_date = retained.snapshot_date
        and snapshot.customer_id = retained.customer_id

),

per_segment as (

    select
        snapshot_date,
        segment_name,
        count(*) as customers,
        {{ exact_avg('churn_probability') }} as mean_churn_probability,
        {{ sum_money('revenue_at_risk') }} as revenue_at_risk,
        {# One snapshot date has one horizon, so the flag is the same on all its rows. #}
        min(case when is_horizon_complete then 1 else 0 end) as is_horizon_complete,
        sum(is_churned) as churned_customers

    from outcomes
    group by snapshot_date, segment_name

),

final as (

    select
        snapshot_date,
        {{ dbt.safe_cast('segment_name', dbt.type_string()) }} as segment_name,
        {{ dbt.safe_cast('customers', dbt.type_bigint()) }} as customers,
        {{ dbt.safe_cast('mean_churn_probability', type_double()) }} as mean_churn_probability,
        {{ dbt.safe_cast('revenue_at_risk', type_double()) }} as revenue_at_risk,
        {{ dbt.safe_cast(
            'case when is_horizon_complete = 1 then churned_customers end', dbt.type_bigint()
        ) }} as churned_customers,
        {{ dbt.safe_cast(
            'case when is_horizon_complete = 1 then '
            ~ dbt.safe_cast('churned_customers', type_double()) ~ ' / '
            ~ dbt.safe_cast('customers', type_double()) ~ ' end',
            type_double()
        ) }} as churned_share,
        {{ dbt.safe_cast(horizon, dbt.type_int()) }} as churn_horizon_days

    from per_segment

)

select * from final
