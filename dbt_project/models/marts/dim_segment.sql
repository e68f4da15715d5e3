{#
    One row per segment of the production segmentation (ml.customer_clusters):
    name, size, shares, a one-line profile and the recommended action from the
    editable playbook seed segment_actions (action, channel, priority, message, assumed
    save rate, whether the segment enters mart_campaign_targets).
#}

with

segments as (

    select
        cluster_id,
        {# One label and one noise flag per id (tested on stg_ml__customer_clusters). #}
        min(segment_name) as segment_name,
        {{ dbt.bool_or('cluster_is_noise') }} as is_noise

    from {{ ref('dim_customer') }}
    group by cluster_id

),

{# Sizes, shares and means: the cluster rows of mart_segment_summary (one per name). #}
summary as (

    select * from {{ ref('mart_segment_summary') }}
    where segment_type = 'cluster'

),

per_segment as (

    select
        segments.cluster_id,
        segments.segment_name,
        segments.is_noise,
        summary.customers,
        summary.customer_share,
        summary.revenue_share,
        summary.mean_recency_days,
        summary.mean_frequency,
        summary.mean_monetary_total

    from segments
    inner join summary
        on segments.segment_name = summary.segment_name

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
        per_segment.customer_share,
        per_segment.revenue_share,
        {{ dbt.concat([
            "'Mean recency '",
            dbt.safe_cast(dbt.safe_cast('round(per_segment.mean_recency_days)', dbt.type_bigint()), dbt.type_string()),
            "' days, '",
            dbt.safe_cast('round(per_segment.mean_frequency, 1)', dbt.type_string()),
            "' orders, spend '",
            dbt.safe_cast(dbt.safe_cast('round(per_segment.mean_monetary_total)', dbt.type_bigint()), dbt.type_string()),
            "' per customer'",
        ]) }} as description,
        actions.recommended_action,
        actions.channel,
        actions.campaign_priority,
        actions.message_idea,
        {{ dbt.safe_cast('actions.save_rate', type_double()) }} as save_rate,
        actions.in_campaign

    from per_segment
    inner join matched
        on per_segment.cluster_id = matched.cluster_id
    inner join actions
        on matched.priority = actions.priority

)

select * from final
