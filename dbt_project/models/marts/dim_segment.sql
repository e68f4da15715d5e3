{#
    One row per segment of the production segmentation (ml.customer_clusters):
    name, size, shares, a one-line profile and the recommended action from the
    editable seed segment_actions.
#}

with

customers as (

    select
        cluster_id,
        cluster_label,
        cluster_is_noise,
        recency_days,
        frequency,
        {{ dbt.safe_cast('monetary_total', type_money()) }} as monetary_total

    from {{ ref('dim_customer') }}

),

totals as (

    select
        count(*) as all_customers,
        {{ sum_money('monetary_total') }} as all_revenue

    from customers

),

per_segment as (

    select
        cluster_id,
        {# One label and one noise flag per id (tested on stg_ml__customer_clusters). #}
        min(cluster_label) as segment_name,
        {{ dbt.bool_or('cluster_is_noise') }} as is_noise,
        count(*) as customers,
        {{ sum_money('monetary_total') }} as revenue,
        {{ exact_avg('recency_days') }} as mean_recency_days,
        {{ exact_avg('frequency') }} as mean_frequency,
        {{ exact_avg('monetary_total') }} as mean_monetary_total

    from customers
    group by cluster_id

),

actions as (

    select * from {{ ref('segment_actions') }}

),

matched as (

    select
        per_segment.cluster_id,
        min(actions.priority) as priority

    from per_segment
    inner join actions
        on per_segment.segment_name like actions.name_pattern
    group by per_segment.cluster_id

),

final as (

    select
        {{ dbt.safe_cast('per_segment.cluster_id', dbt.type_int()) }} as cluster_id,
        {{ dbt.safe_cast('per_segment.segment_name', dbt.type_string()) }} as segment_name,
        per_segment.is_noise,
        {{ dbt.safe_cast('per_segment.customers', dbt.type_bigint()) }} as customers,
        {{ dbt.safe_cast('per_segment.customers', type_double()) }}
            / {{ dbt.safe_cast('totals.all_customers', type_double()) }} as customer_share,
        {{ dbt.safe_cast(
            'case when totals.all_revenue <> 0 then '
            ~ dbt.safe_cast('per_segment.revenue', type_double()) ~ ' / '
            ~ dbt.safe_cast('totals.all_revenue', type_double()) ~ ' end',
            type_double()
        ) }} as revenue_share,
        {{ dbt.concat([
            "'Mean recency '",
            dbt.safe_cast(dbt.safe_cast('round(per_segment.mean_recency_days)', dbt.type_bigint()), dbt.type_string()),
            "' days, '",
            dbt.safe_cast('round(per_segment.mean_frequency, 1)', dbt.type_string()),
            "' orders, spend '",
            dbt.safe_cast(dbt.safe_cast('round(per_segment.mean_monetary_total)', dbt.type_bigint()), dbt.type_string()),
            "' per customer'",
        ]) }} as description,
        actions.recommended_action

    from per_segment
    cross join totals
    inner join matched
        on per_segment.cluster_id = matched.cluster_id
    inner join actions
        on matched.priority = actions.priority

)

select * from final
